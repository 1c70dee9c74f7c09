"""The simulation's chart: recall and PR-AUC by month, with the drift onsets and the retrains."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fraudops.simulation.results import SimulationResult
from fraudops.simulation.traffic import DAYS_PER_MONTH

DECISION_COLOURS = {
    "promoted": "tab:green",
    "promoted_below_floor": "tab:orange",
    "rejected": "tab:red",
}  # the others: grey


def render_chart(result: SimulationResult, path: Path) -> Path:
    """Recall and PR-AUC by month, with the drift onsets and the retrains, as a PNG."""
    # Imported here: pyplot takes ~0.8 s to import, and the backend must be set before it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.month_rows
    months = [r.month for r in rows]
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    ax.plot(months, [_gap(r.recall) for r in rows], marker="o", label="recall")
    ax.plot(months, [_gap(r.pr_auc) for r in rows], marker="s", label="PR-AUC")
    for month, what, color in (
        (result.data_drift_month, "data drift", "tab:orange"),
        (result.concept_drift_month, "concept drift", "tab:red"),
    ):
        if month is not None:
            ax.axvline(month - 0.5, color=color, linestyle="--", label=f"{what} onset")
    start = datetime.fromisoformat(result.start)
    for retrain in result.retrains:
        at = (datetime.fromisoformat(retrain.as_of) - start).total_seconds()
        x = 0.5 + at / (DAYS_PER_MONTH * 86_400)
        decision = retrain.decision
        color = DECISION_COLOURS.get(decision, "tab:gray")
        label = {
            "promoted": f"v{retrain.version}",
            "promoted_below_floor": f"v{retrain.version}!",
            "rejected": "rejected",
        }.get(decision, "kept")
        ax.axvline(x, color=color, alpha=0.6)
        ax.annotate(label, (x, 0.02), rotation=90, fontsize=8, color=color)
    ax.set_xticks(months)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("simulated month")
    ax.set_title(
        f"fraudops simulate · {result.scenario} · {result.tx_per_day:,} tx/day "
        "(retrains: green promoted, grey lost, red rejected)"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _gap(value: float | None) -> float:
    return float("nan") if value is None else value  # a month of one class: a gap in the line
