"""Shadow scoring: the champion and a challenger judged on the same labelled rows.

A challenger under the shadow alias scores every request beside the champion (its score is
logged, never served); once the labels are in, both are measured on exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fraudops.metrics import improves
from fraudops.monitoring.performance import classification_metrics

SHADOW_METRICS = ("roc_auc", "pr_auc", "recall", "precision", "f1")
SHADOW_COLUMNS = ("label", "probability", "prediction", "model_version", "shadow_version")
# Figures that need no decision threshold: all a challenger without a known threshold gets.
_THRESHOLD_FREE = frozenset({"roc_auc", "pr_auc", "high_confidence_error_rate"})

Better = Literal["challenger", "champion", "tie", "mixed"]
Winner = Literal["challenger", "champion", "tie"]
Figures = dict[str, float | None]  # metric -> value (None: not measurable on this side)


@dataclass
class ShadowComparison:
    """One (champion version, challenger version) pair on the rows both scored."""

    champion_version: str | None
    challenger_version: str
    rows: int
    positives: int
    challenger_threshold: float | None
    champion: Figures | None = None  # None: too few rows, or one class only
    challenger: Figures | None = None
    delta: dict[str, float] = field(default_factory=dict)  # challenger - champion, per metric
    by_metric: dict[str, Winner | None] = field(default_factory=dict)
    better: Better | None = None  # None: no verdict (see ``reason``)
    reason: str = ""


@dataclass
class ShadowReport:
    gate_metrics: list[str]
    rows: int  # labelled rows with a shadow score
    comparisons: list[ShadowComparison]  # most rows first

    def find(self, *, champion: str, challenger: str) -> ShadowComparison | None:
        return next(
            (
                c
                for c in self.comparisons
                if c.challenger_version == challenger and c.champion_version == champion
            ),
            None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_shadow(
    frame: pd.DataFrame,
    *,
    thresholds: Mapping[str, float | None],
    gate_metrics: Sequence[str],
    min_samples: int = 1,
    cost_fn: float = 1.0,
    cost_fp: float = 1.0,
) -> ShadowReport | None:
    """Champion against shadow (challenger) on exactly the same labelled rows; None when no row
    has a shadow score.

    ``frame``: labelled rows (e.g. ``mature_labelled``) with label, probability and prediction
    (what was served), model_version, shadow_version and shadow_probability. One comparison per
    (champion version, challenger version) pair, most rows first. The champion's recall,
    precision and f1 come from its served decisions, the challenger's from
    ``shadow_probability >= thresholds[version]`` (None when its threshold is unknown).
    ``better`` weighs ``gate_metrics``: the side that wins at least one and loses none, "tie"
    when all are equal, "mixed" otherwise, None without figures.
    """
    missing = [c for c in (*SHADOW_COLUMNS, "shadow_probability") if c not in frame.columns]
    if missing:
        raise ValueError(f"shadow comparison frame lacks columns {missing}")
    rows = frame.loc[
        frame["shadow_version"].notna()
        & frame["shadow_probability"].notna()
        & frame["label"].notna()
    ]
    if rows.empty:
        return None
    keep = [*SHADOW_METRICS, *(m for m in gate_metrics if m not in SHADOW_METRICS)]
    costs = {"cost_fn": cost_fn, "cost_fp": cost_fp}
    comparisons = []
    champion_of = rows["model_version"].map(lambda v: "" if v is None or pd.isna(v) else str(v))
    pairs = rows.groupby([champion_of, rows["shadow_version"].astype(str)], sort=False)
    for (champion_version, challenger_version), part in pairs:
        y = part["label"].to_numpy().astype(int)
        threshold = thresholds.get(str(challenger_version))
        entry = ShadowComparison(
            champion_version=str(champion_version) or None,
            challenger_version=str(challenger_version),
            rows=len(part),
            positives=int(y.sum()),
            challenger_threshold=None if threshold is None else float(threshold),
        )
        comparisons.append(entry)
        if len(part) < min_samples:
            entry.reason = f"{len(part)} labelled rows, fewer than the {min_samples} needed"
            continue
        served = part["probability"].to_numpy(dtype=np.float64)
        shadow = part["shadow_probability"].to_numpy(dtype=np.float64)
        entry.champion = _side(y, served, part["prediction"].to_numpy(), keep, costs)
        flagged = None if threshold is None else shadow >= threshold
        entry.challenger = _side(y, shadow, flagged, keep, costs)
        if entry.champion is None:
            entry.reason = "the labels hold one class only"
            continue
        _judge(entry, entry.champion, gate_metrics)
    comparisons.sort(key=lambda c: (-c.rows, -_number(c.challenger_version)))
    return ShadowReport(gate_metrics=list(gate_metrics), rows=len(rows), comparisons=comparisons)


def _side(
    y: np.ndarray,
    probabilities: np.ndarray,
    flagged: np.ndarray | None,
    keep: Sequence[str],
    costs: dict[str, float],
) -> Figures | None:
    decisions = np.zeros(len(y), dtype=bool) if flagged is None else flagged
    metrics = classification_metrics(
        y, probabilities, decisions, cost_fn=costs["cost_fn"], cost_fp=costs["cost_fp"]
    )
    if metrics is None:
        return None
    return {
        k: (metrics[k] if flagged is not None or k in _THRESHOLD_FREE else None)
        if k in metrics
        else None
        for k in keep
    }


def _judge(entry: ShadowComparison, champion: Figures, gate_metrics: Sequence[str]) -> None:
    challenger = entry.challenger or {}
    wins: list[Winner | None] = []
    for metric in gate_metrics:
        a, b = champion.get(metric), challenger.get(metric)
        if a is None or b is None:
            entry.by_metric[metric] = None
            wins.append(None)
            continue
        entry.delta[metric] = b - a
        winner: Winner
        if a == b:
            winner = "tie"
        elif improves(metric, b, a):  # which way is better: fraudops.metrics, as the gate
            winner = "challenger"
        else:
            winner = "champion"
        entry.by_metric[metric] = winner
        wins.append(winner)
    if not wins:
        entry.reason = "no gate metrics to compare on"
        return
    if None in wins:
        entry.reason = "no challenger figures for " + ", ".join(
            m for m, w in entry.by_metric.items() if w is None
        )
        return
    if all(w == "tie" for w in wins):
        entry.better = "tie"
    elif "champion" not in wins:
        entry.better = "challenger"
    elif "challenger" not in wins:
        entry.better = "champion"
    else:
        entry.better = "mixed"
    entry.reason = ", ".join(f"{m} {champion[m]:.4f} → {challenger[m]:.4f}" for m in gate_metrics)


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return float("-inf")
