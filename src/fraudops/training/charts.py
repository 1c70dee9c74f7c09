"""The six training charts logged with each run, drawn with matplotlib's Agg canvas.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state machine, no GUI backend)
and saved as small PNGs; big inputs are thinned first so all six take well under two seconds.
Margins are fixed rather than laid out by matplotlib's constrained layout, which drew each figure
twice (0.85 s for the six here, 0.5 s with fixed margins: it runs with every training).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudops.training.evaluation import Evaluation

DPI = 90
MARGINS = {"left": 0.14, "right": 0.97, "bottom": 0.11, "top": 0.86}
LABEL_CHAR_WIDTH = 0.0095  # of the figure's width, per character of a 7-point tick label
MAX_NEGATIVES_PLOTTED = 20_000
TOP_FEATURES = 20


def render_charts(
    directory: Path,
    *,
    labels: np.ndarray,
    scores: np.ndarray,
    evaluation: Evaluation,
    importance: Mapping[str, float],
    class_counts: Mapping[str, tuple[int, int]],
    title: str,
    seed: int = 0,
) -> list[Path]:
    """Write the six PNGs into ``directory`` and return their paths.

    ``class_counts`` maps a slice name to (negatives, positives).
    """
    directory.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    fpr, tpr, _ = roc_curve(y, s)
    precision, recall, _ = precision_recall_curve(y, s)
    drawers: dict[str, Callable[[Figure], None]] = {
        "roc_curve": lambda f: _roc(f, fpr, tpr, evaluation),
        "pr_curve": lambda f: _pr(f, recall, precision, evaluation),
        "confusion_matrix": lambda f: _confusion(f, evaluation),
        "feature_importance": lambda f: _importance(f, importance),
        "class_balance": lambda f: _balance(f, class_counts),
        "score_distribution": lambda f: _scores(f, y, s, evaluation.threshold, seed),
    }
    paths = []
    for name, draw in drawers.items():
        fig = Figure(figsize=(6, 4.5), dpi=DPI)
        fig.subplots_adjust(**MARGINS)
        draw(fig)
        fig.suptitle(title, fontsize=9)
        path = directory / f"{name}.png"
        fig.savefig(path)
        paths.append(path)
    return paths


def _roc(fig: Figure, fpr: np.ndarray, tpr: np.ndarray, ev: Evaluation) -> None:
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=1.5, label=f"ROC-AUC {ev.roc_auc:.4f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.scatter(
        [ev.fp / max(ev.fp + ev.tn, 1)],
        [ev.recall],
        c="red",
        zorder=3,
        label=_point(ev),
    )
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (holdout)")
    ax.legend(loc="lower right")


def _pr(fig: Figure, recall: np.ndarray, precision: np.ndarray, ev: Evaluation) -> None:
    ax = fig.subplots()
    ax.step(recall, precision, where="post", lw=1.5, label=f"PR-AUC {ev.pr_auc:.4f}")
    ax.axhline(ev.positives / ev.n, ls="--", c="grey", lw=0.8, label="fraud rate")
    ax.scatter([ev.recall], [ev.precision], c="red", zorder=3, label=_point(ev))
    ax.set(
        xlabel="Recall",
        ylabel="Precision",
        title="Precision-recall curve (holdout)",
        xlim=(0, 1.01),
        ylim=(0, 1.05),
    )
    ax.legend(loc="lower left")


def _confusion(fig: Figure, ev: Evaluation) -> None:
    ax = fig.subplots()
    matrix = np.array([[ev.tn, ev.fp], [ev.fn, ev.tp]])
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            f"{value:,}",
            ha="center",
            va="center",
            fontsize=12,
            color="white" if value > matrix.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], ["legit", "fraud"])
    ax.set_yticks([0, 1], ["legit", "fraud"])
    ax.set(
        xlabel="Predicted",
        ylabel="Actual",
        title=f"Confusion matrix at {_point(ev)}",
    )


def _importance(fig: Figure, importance: Mapping[str, float]) -> None:
    ax = fig.subplots()
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES][::-1]
    total = sum(importance.values()) or 1.0
    ax.barh([name for name, _ in top], [value / total for _, value in top])
    ax.tick_params(axis="y", labelsize=7)
    longest = max((len(name) for name, _ in top), default=0)
    fig.subplots_adjust(left=min(0.5, max(MARGINS["left"], 0.03 + LABEL_CHAR_WIDTH * longest)))
    ax.set(xlabel="Share of total importance", title=f"Feature importance (top {len(top)})")


def _balance(fig: Figure, class_counts: Mapping[str, tuple[int, int]]) -> None:
    ax = fig.subplots()
    names = list(class_counts)
    negatives = [class_counts[n][0] for n in names]
    positives = [class_counts[n][1] for n in names]
    x = np.arange(len(names))
    ax.bar(x - 0.2, negatives, 0.4, label="legit")
    ax.bar(x + 0.2, positives, 0.4, label="fraud", color="tab:red")
    for i, (neg, pos) in enumerate(zip(negatives, positives, strict=True)):
        ax.text(
            i + 0.2, pos, f"{pos / max(neg + pos, 1):.2%}", ha="center", va="bottom", fontsize=8
        )
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set(ylabel="Rows (log scale)", title="Class balance per slice")
    ax.legend()


def _point(ev: Evaluation) -> str:
    """The operating point as a label: its score cut (for expected_loss, the cut of the same
    alert volume on validation)."""
    return "the operating point" if ev.threshold is None else f"threshold {ev.threshold:.3f}"


def _scores(fig: Figure, y: np.ndarray, s: np.ndarray, threshold: float | None, seed: int) -> None:
    ax = fig.subplots()
    negatives = s[~y]
    if len(negatives) > MAX_NEGATIVES_PLOTTED:  # the shape survives a uniform sample
        negatives = np.random.default_rng(seed).choice(
            negatives, MAX_NEGATIVES_PLOTTED, replace=False
        )
    bins = np.linspace(0, 1, 51).tolist()
    ax.hist(negatives, bins=bins, alpha=0.6, density=True, label="legit")
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label="fraud", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, c="black", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_yscale("log")
    ax.set(
        xlabel="Fraud probability",
        ylabel="Density (log scale)",
        title="Score distribution (holdout)",
    )
    ax.legend()
