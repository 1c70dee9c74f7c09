"""Model performance from delayed labels, by prediction-day cohort with explicit label maturity.

Fraud is confirmed within days, legitimate transactions within weeks: a window measured before
its labels are in sees mostly the quick fraud confirmations and looks far better (or worse) than
it is. So every prediction day is a cohort with its label coverage as of the evaluation time
(a label counts only once ``confirmed_at <= as_of``); cohorts below ``min_coverage`` are
reported but marked immature, and only mature cohorts enter the figures that decide an alert.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.labels.window import label_state
from fraudops.metrics import compute_metrics

if TYPE_CHECKING:  # shadow.py builds on this module's classification_metrics
    from fraudops.monitoring.shadow import ShadowReport


@dataclass
class CohortPerformance:
    day: str
    predictions: int
    labelled: int
    coverage: float
    mature: bool
    positives: int
    metrics: dict[str, float] | None  # None when the cohort's labels hold one class only


@dataclass
class PerformanceReport:
    as_of: str
    min_coverage: float
    predictions: int
    labelled: int
    coverage: float | None
    mature_cohorts: int
    immature_cohorts: int
    evaluated_rows: int  # labelled rows of the mature cohorts
    metrics: dict[str, float] | None
    baseline_roc_auc: float | None
    degradation_pct: float | None
    degraded: bool | None  # None: not enough mature labelled data to say
    reason: str
    cohorts: list[CohortPerformance] = field(default_factory=list)
    # Set by a monitoring run: the version measured (only the predictions it answered count),
    # how many predictions of other versions were left out, and the champion against its
    # shadow challenger on the same mature labelled rows (None: no shadow scores).
    model_version: str | None = None
    other_versions_excluded: int = 0
    shadow: ShadowReport | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.shadow is None:  # the key is there only when shadow scores were compared
            del out["shadow"]
        return out


# The optional columns of the labelled rows that give the fraud team's figures: the amount
# (money caught and missed) and the card (card precision@k); the day is the cohort's.
AMOUNT, CARD = "amount", "customer_id"


def classification_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    predictions: np.ndarray,
    *,
    cost_fn: float,
    cost_fp: float,
    high_confidence: float = 0.9,
    amounts: np.ndarray | None = None,
    days: np.ndarray | None = None,
    cards: np.ndarray | None = None,
    k: int | None = None,
) -> dict[str, float] | None:
    """The figures of labelled rows (``fraudops.metrics.compute_metrics``, the one formula
    training's evaluation uses too) plus accuracy and the high-confidence error rate; None when
    only one class is present. ``Metrics.from_dict`` reads it back."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(probabilities, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return None
    figures = compute_metrics(
        y,
        p,
        np.asarray(predictions).astype(bool),
        cost_fn=cost_fn,
        cost_fp=cost_fp,
        amounts=amounts,
        days=days,
        cards=cards,
        k=k,
    )
    confident_fraud = p >= high_confidence
    confident_legit = p <= 1.0 - high_confidence
    confident = int(np.sum(confident_fraud | confident_legit))
    confident_wrong = int(np.sum(confident_fraud & ~y) + np.sum(confident_legit & y))
    return {
        **figures.to_dict(),
        "accuracy": (figures.tp + figures.tn) / len(y),
        "high_confidence_error_rate": confident_wrong / confident if confident else 0.0,
    }


def labelled_metrics(
    part: pd.DataFrame, alerts_per_day: int | None = None, **options: Any
) -> dict[str, float] | None:
    """``classification_metrics`` of labelled rows (label, probability, prediction), with their
    amounts (``AMOUNT``), days (``day``) and cards (``CARD``) when the frame holds them;
    ``alerts_per_day`` is the k of precision@k per day."""
    k = alerts_per_day
    amounts = part[AMOUNT].to_numpy(dtype=np.float64) if AMOUNT in part.columns else None
    if amounts is not None and np.isnan(amounts).any():
        amounts = None  # a version logged without amounts: no money figures
    cards = part[CARD].astype(str).to_numpy() if CARD in part.columns else None
    return classification_metrics(
        part["label"].to_numpy(),
        part["probability"].to_numpy(),
        part["prediction"].to_numpy(),
        amounts=amounts,
        days=part["day"].to_numpy() if "day" in part.columns else None,
        cards=cards,
        k=k,
        **options,
    )


def evaluate_performance(
    frame: pd.DataFrame,
    *,
    as_of: datetime,
    min_coverage: float,
    min_samples: int,
    baseline_roc_auc: float | None,
    max_degradation: float,
    cost_fn: float,
    cost_fp: float,
    high_confidence: float = 0.9,
    min_positives: int = 1,
    alerts_per_day: int | None = None,
) -> PerformanceReport:
    """Cohorts and the mature-only figures of predictions joined to their latest labels.

    ``min_positives``: fewer frauds among the mature labelled rows and the figures are reported
    but decide nothing (``degraded`` None) — with 50 frauds a ROC-AUC moves by ±0.05 by chance.

    ``frame``: one row per prediction in the window — request_time, probability, prediction,
    and label / confirmed_at of its latest label event (null when none yet).
    ``max_degradation`` is relative (0.05: alert at a ROC-AUC 5% below the baseline).
    """
    as_of_ts, data = label_state(frame, as_of)
    return cohort_performance(
        as_of_ts,
        data.groupby("day", sort=True).size(),
        data[data["known"]],
        min_coverage=min_coverage,
        min_samples=min_samples,
        baseline_roc_auc=baseline_roc_auc,
        max_degradation=max_degradation,
        cost_fn=cost_fn,
        cost_fp=cost_fp,
        high_confidence=high_confidence,
        min_positives=min_positives,
        alerts_per_day=alerts_per_day,
    )


def cohort_performance(
    as_of_ts: pd.Timestamp,
    day_rows: pd.Series,
    labelled: pd.DataFrame,
    *,
    min_coverage: float,
    min_samples: int,
    baseline_roc_auc: float | None,
    max_degradation: float,
    cost_fn: float,
    cost_fp: float,
    high_confidence: float = 0.9,
    min_positives: int = 1,
    alerts_per_day: int | None = None,
) -> PerformanceReport:
    """``evaluate_performance`` from its parts: the predictions per cohort day (``day_rows``,
    indexed by day) and the labelled rows (day, label, probability, prediction; amount and
    customer_id when the window read them: the money figures and card precision@k, with
    ``alerts_per_day`` the k of precision@k per day) — what a window
    too large for one process is reduced to (``fraudops.monitoring.dask_window``)."""
    options = {"cost_fn": cost_fn, "cost_fp": cost_fp, "high_confidence": high_confidence}
    cohorts: list[CohortPerformance] = []
    mature_rows: list[pd.DataFrame] = []
    by_day: dict[Any, pd.DataFrame] = dict(iter(labelled.groupby("day", sort=True)))
    for day, rows in day_rows.sort_index().items():
        part = by_day.get(day, labelled.iloc[:0])
        coverage = len(part) / int(rows)
        mature = coverage >= min_coverage
        metrics = labelled_metrics(part, alerts_per_day, **options) if len(part) else None
        cohorts.append(
            CohortPerformance(
                day=str(day),
                predictions=int(rows),
                labelled=len(part),
                coverage=round(coverage, 6),
                mature=mature,
                positives=int(part["label"].sum()) if len(part) else 0,
                metrics=metrics,
            )
        )
        if mature:
            mature_rows.append(part)

    evaluated = pd.concat(mature_rows) if mature_rows else labelled.iloc[:0]
    metrics = None
    reason = ""
    if len(evaluated) < min_samples:
        reason = (
            f"{len(evaluated)} labelled predictions in mature cohorts (coverage ≥ "
            f"{min_coverage:.0%}), fewer than the {min_samples} needed"
        )
    else:
        metrics = labelled_metrics(evaluated, alerts_per_day, **options)
        if metrics is None:
            reason = "the mature cohorts' labels hold one class only"
    degradation = degraded = None
    positives = int(evaluated["label"].sum()) if len(evaluated) else 0
    if metrics is not None and positives < min_positives:
        reason = (
            f"{positives} frauds among the mature labelled predictions, fewer than the "
            f"{min_positives} a verdict needs (monitoring.min_positives)"
        )
    elif metrics is not None and baseline_roc_auc:
        degradation = (baseline_roc_auc - metrics["roc_auc"]) / baseline_roc_auc * 100
        degraded = degradation > max_degradation * 100
        reason = (
            f"ROC-AUC {metrics['roc_auc']:.4f} vs baseline {baseline_roc_auc:.4f}: "
            f"{degradation:+.2f}% {'above' if degraded else 'within'} the "
            f"{max_degradation:.0%} limit"
        )
    elif metrics is not None:
        reason = "no baseline ROC-AUC to compare with"
    n_known, n_rows = len(labelled), int(day_rows.sum())
    return PerformanceReport(
        as_of=as_of_ts.isoformat(),
        min_coverage=min_coverage,
        predictions=n_rows,
        labelled=n_known,
        coverage=round(n_known / n_rows, 6) if n_rows else None,
        mature_cohorts=sum(c.mature for c in cohorts),
        immature_cohorts=sum(not c.mature for c in cohorts),
        evaluated_rows=len(evaluated),
        metrics=metrics,
        baseline_roc_auc=baseline_roc_auc,
        degradation_pct=None if degradation is None else round(degradation, 4),
        degraded=degraded,
        reason=reason,
        cohorts=cohorts,
    )
