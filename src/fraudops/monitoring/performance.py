"""Model performance from delayed labels, by prediction-day cohort with explicit label maturity.

Fraud is confirmed within days, legitimate transactions within weeks: a window measured before
its labels are in sees mostly the quick fraud confirmations and looks far better (or worse) than
it is. So every prediction day is a cohort with its label coverage as of the evaluation time
(a label counts only once ``confirmed_at <= as_of``); cohorts below ``min_coverage`` are
reported but marked immature, and only mature cohorts enter the figures that decide an alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

REQUIRED_COLUMNS = ("request_time", "probability", "prediction", "label", "confirmed_at")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    predictions: np.ndarray,
    *,
    cost_fn: float,
    cost_fp: float,
    high_confidence: float = 0.9,
) -> dict[str, float] | None:
    """The seed's figures on labelled rows; None when only one class is present."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(probabilities, dtype=np.float64)
    flagged = np.asarray(predictions).astype(bool)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return None
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = positives - tp
    tn = len(y) - positives - fp
    confident_fraud = p >= high_confidence
    confident_legit = p <= 1.0 - high_confidence
    confident = int(np.sum(confident_fraud | confident_legit))
    confident_wrong = int(np.sum(confident_fraud & ~y) + np.sum(confident_legit & y))
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / positives,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "fnr": fn / positives,
        "accuracy": (tp + tn) / len(y),
        "high_confidence_error_rate": confident_wrong / confident if confident else 0.0,
        "expected_cost": (cost_fn * fn + cost_fp * fp) / len(y),
        "n": float(len(y)),
        "positives": float(positives),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


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
) -> PerformanceReport:
    """Cohorts and the mature-only figures of predictions joined to their latest labels.

    ``min_positives``: fewer frauds among the mature labelled rows and the figures are reported
    but decide nothing (``degraded`` None) — with 50 frauds a ROC-AUC moves by ±0.05 by chance.

    ``frame``: one row per prediction in the window — request_time, probability, prediction,
    and label / confirmed_at of its latest label event (null when none yet).
    ``max_degradation`` is relative (0.05: alert at a ROC-AUC 5% below the baseline).
    """
    as_of_ts, data = _label_state(frame, as_of)

    cohorts: list[CohortPerformance] = []
    mature_rows: list[pd.DataFrame] = []
    for day, part in data.groupby("day", sort=True):
        labelled = part[part["known"]]
        coverage = len(labelled) / len(part)
        mature = coverage >= min_coverage
        metrics = (
            classification_metrics(
                labelled["label"].to_numpy(),
                labelled["probability"].to_numpy(),
                labelled["prediction"].to_numpy(),
                cost_fn=cost_fn,
                cost_fp=cost_fp,
                high_confidence=high_confidence,
            )
            if len(labelled)
            else None
        )
        cohorts.append(
            CohortPerformance(
                day=str(day),
                predictions=len(part),
                labelled=len(labelled),
                coverage=round(coverage, 6),
                mature=mature,
                positives=int(labelled["label"].sum()) if len(labelled) else 0,
                metrics=metrics,
            )
        )
        if mature:
            mature_rows.append(labelled)

    evaluated = pd.concat(mature_rows) if mature_rows else data.iloc[:0]
    metrics = None
    reason = ""
    if len(evaluated) < min_samples:
        reason = (
            f"{len(evaluated)} labelled predictions in mature cohorts (coverage ≥ "
            f"{min_coverage:.0%}), fewer than the {min_samples} needed"
        )
    else:
        metrics = classification_metrics(
            evaluated["label"].to_numpy(),
            evaluated["probability"].to_numpy(),
            evaluated["prediction"].to_numpy(),
            cost_fn=cost_fn,
            cost_fp=cost_fp,
            high_confidence=high_confidence,
        )
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
    n_known = int(data["known"].sum())
    return PerformanceReport(
        as_of=as_of_ts.isoformat(),
        min_coverage=min_coverage,
        predictions=len(data),
        labelled=n_known,
        coverage=round(n_known / len(data), 6) if len(data) else None,
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


def _label_state(frame: pd.DataFrame, as_of: datetime) -> tuple[pd.Timestamp, pd.DataFrame]:
    """``as_of`` as a UTC timestamp, and the rows served by then with ``known`` (a label
    confirmed by ``as_of``) and ``day`` (their cohort) added."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"performance frame lacks columns {missing}")
    as_of_ts = pd.Timestamp(as_of)
    as_of_ts = as_of_ts.tz_localize("UTC") if as_of_ts.tzinfo is None else as_of_ts
    data = frame.loc[_utc(frame["request_time"]) <= as_of_ts].copy()
    confirmed = _utc(data["confirmed_at"])
    # A label exists for this evaluation only once it was confirmed.
    known = data["label"].notna() & confirmed.notna() & (confirmed <= as_of_ts)
    data["known"] = known.to_numpy()
    data["day"] = _utc(data["request_time"]).dt.strftime("%Y-%m-%d")
    return as_of_ts, data


def mature_labelled(frame: pd.DataFrame, *, as_of: datetime, min_coverage: float) -> pd.DataFrame:
    """The labelled rows of the mature cohorts: exactly those ``evaluate_performance`` measures."""
    _, data = _label_state(frame, as_of)
    if data.empty:
        return data
    coverage = data.groupby("day")["known"].transform("mean")
    return data.loc[data["known"] & (coverage >= min_coverage)]


# ---- shadow scoring: champion and challenger on the same rows ---------------------------------

SHADOW_METRICS = ("roc_auc", "pr_auc", "recall", "precision", "f1")
SHADOW_COLUMNS = ("label", "probability", "prediction", "model_version", "shadow_version")
# Figures that need no decision threshold: all a challenger without a known threshold gets.
_THRESHOLD_FREE = frozenset({"roc_auc", "pr_auc", "high_confidence_error_rate"})
# Metrics where a smaller value is the better one (as in the training gate).
_LOWER_IS_BETTER = frozenset({"expected_cost", "total_cost", "fp", "fn", "fpr", "fnr"})


def compare_shadow(
    frame: pd.DataFrame,
    *,
    thresholds: Mapping[str, float | None],
    gate_metrics: Sequence[str],
    min_samples: int = 1,
    cost_fn: float = 1.0,
    cost_fp: float = 1.0,
) -> dict[str, Any] | None:
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
        entry: dict[str, Any] = {
            "champion_version": str(champion_version) or None,
            "challenger_version": str(challenger_version),
            "rows": len(part),
            "positives": int(y.sum()),
            "challenger_threshold": None if threshold is None else float(threshold),
            "champion": None,
            "challenger": None,
            "delta": {},
            "by_metric": {},
            "better": None,
            "reason": "",
        }
        comparisons.append(entry)
        if len(part) < min_samples:
            entry["reason"] = f"{len(part)} labelled rows, fewer than the {min_samples} needed"
            continue
        served = part["probability"].to_numpy(dtype=np.float64)
        shadow = part["shadow_probability"].to_numpy(dtype=np.float64)
        entry["champion"] = _side(y, served, part["prediction"].to_numpy(), keep, costs)
        flagged = None if threshold is None else shadow >= threshold
        entry["challenger"] = _side(y, shadow, flagged, keep, costs)
        if entry["champion"] is None:
            entry["reason"] = "the labels hold one class only"
            continue
        _judge(entry, gate_metrics)
    comparisons.sort(key=lambda c: (-c["rows"], -_number(c["challenger_version"])))
    return {"gate_metrics": list(gate_metrics), "rows": len(rows), "comparisons": comparisons}


def _side(
    y: np.ndarray,
    probabilities: np.ndarray,
    flagged: np.ndarray | None,
    keep: Sequence[str],
    costs: dict[str, float],
) -> dict[str, float | None] | None:
    decisions = np.zeros(len(y), dtype=bool) if flagged is None else flagged
    metrics = classification_metrics(y, probabilities, decisions, **costs)
    if metrics is None:
        return None
    return {
        k: (metrics[k] if flagged is not None or k in _THRESHOLD_FREE else None)
        if k in metrics
        else None
        for k in keep
    }


def _judge(entry: dict[str, Any], gate_metrics: Sequence[str]) -> None:
    champion, challenger = entry["champion"], entry["challenger"]
    wins: list[str | None] = []
    for metric in gate_metrics:
        a, b = champion.get(metric), (challenger or {}).get(metric)
        if a is None or b is None:
            entry["by_metric"][metric] = None
            wins.append(None)
            continue
        entry["delta"][metric] = b - a
        if a == b:
            winner = "tie"
        elif (b < a) == (metric in _LOWER_IS_BETTER):
            winner = "challenger"
        else:
            winner = "champion"
        entry["by_metric"][metric] = winner
        wins.append(winner)
    if not wins:
        entry["reason"] = "no gate metrics to compare on"
        return
    if None in wins:
        entry["reason"] = "no challenger figures for " + ", ".join(
            m for m, w in entry["by_metric"].items() if w is None
        )
        return
    if all(w == "tie" for w in wins):
        entry["better"] = "tie"
    elif "champion" not in wins:
        entry["better"] = "challenger"
    elif "challenger" not in wins:
        entry["better"] = "champion"
    else:
        entry["better"] = "mixed"
    entry["reason"] = ", ".join(
        f"{m} {champion[m]:.4f} → {challenger[m]:.4f}" for m in gate_metrics
    )


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return float("-inf")


def _utc(column: pd.Series) -> pd.Series:
    values = pd.to_datetime(column, utc=True)
    return values
