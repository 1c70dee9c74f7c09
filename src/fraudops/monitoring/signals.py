"""The fast signals of a monitoring run: what the early labels and the probabilities say before
the legitimate labels mature.

Per prediction day of the performance window, and for the run's data window:

- **recall on confirmed frauds**: of the frauds confirmed by the run's time (whichever the day's
  maturity: fraud is confirmed in days, legitimate traffic in weeks), the share the operating
  point flagged, with its Wilson 95 % interval (``cbpe.confirmed_recall``);
- **CBPE** (``cbpe.estimate``): the expected confusion matrix and ROC-AUC, PR-AUC, recall and
  precision at the operating point from the champion's calibrated probabilities, each with its
  95 % interval. Provisional while the day is immature; once it is mature the realized figures
  of its labelled rows are set beside it (``realized``);
- **concept drift suspected**: over the data window's days, the confirmed frauds flagged
  improbably less often than CBPE expects for the same days (one-sided binomial test; the
  expectation is each day's expected recall weighted by its confirmed frauds).

The flags are the served decisions (``prediction``: the operating point of the version that
answered, since only the champion's rows are read); the probabilities are its scores through the
calibrator stored with it (``ModelManifest.calibration``) or, on a version without one, an
isotonic fit on the window's mature labelled rows (``calibration_source`` says which).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.errors import ValidationError
from fraudops.models.calibration import Calibrator
from fraudops.monitoring.cbpe import (
    ConfirmedRecall,
    Estimate,
    confirmed_recall,
    estimate,
)

# What a signal needs of each of the champion's predictions (``PerformanceSlice.scored``).
SCORED_COLUMNS = ("day", "request_time", "probability", "prediction", "known", "label")


@dataclass(frozen=True)
class Realized:
    """The figures of a set of labelled rows at the operating point (None: one class only)."""

    labelled: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    recall: float | None
    precision: float | None


@dataclass(frozen=True)
class DaySignals:
    day: str
    predictions: int
    coverage: float  # share of its predictions with a label known at the run's time
    mature: bool  # coverage ≥ labels.mature_coverage: ``realized`` is set beside ``estimate``
    confirmed: ConfirmedRecall  # recall on the frauds confirmed so far
    estimate: Estimate | None  # CBPE (None: fewer than two predictions)
    realized: Realized | None  # mature days only

    @property
    def provisional(self) -> bool:
        return not self.mature


@dataclass(frozen=True)
class FastSignals:
    calibration_source: str  # "manifest", or the fallback fitted here
    days: list[DaySignals]
    window: Estimate | None  # CBPE over the data window (provisional)
    window_confirmed: ConfirmedRecall | None  # its confirmed frauds against CBPE's expectation
    matured: Estimate | None  # CBPE over the mature days of the performance window...
    matured_realized: Realized | None  # ...beside their realized figures
    concept_drift_suspected: bool
    reason: str
    notes: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None  # the calibrator's knots (Calibrator.to_dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for day, raw in zip(self.days, out["days"], strict=True):
            raw["provisional"] = day.provisional
        return finite(out)

    def summary(self) -> dict[str, Any]:
        """What ``monitoring_runs.summary`` carries: the window's signals and, per day, the
        confirmed recall and the CBPE figures beside the realized ones (no confusion matrix)."""
        return finite(
            {
                "calibration_source": self.calibration_source,
                "calibration": self.calibration,
                "concept_drift_suspected": self.concept_drift_suspected,
                "reason": self.reason,
                "window": _asdict(self.window),
                "window_confirmed": _asdict(self.window_confirmed),
                "matured": _asdict(self.matured),
                "matured_realized": _asdict(self.matured_realized),
                "days": [
                    {
                        "day": d.day,
                        "predictions": d.predictions,
                        "mature": d.mature,
                        "confirmed": d.confirmed.confirmed,
                        "confirmed_recall": asdict(d.confirmed.recall),
                        "estimate": None
                        if d.estimate is None
                        else {k: asdict(getattr(d.estimate, k)) for k in FIGURES},
                        "realized": _asdict(d.realized),
                    }
                    for d in self.days
                ],
            }
        )


FIGURES = ("roc_auc", "pr_auc", "recall", "precision")


def _asdict(value: Any) -> dict[str, Any] | None:
    return None if value is None else asdict(value)


def finite(value: Any) -> Any:
    """NaN → None all through a JSON-bound structure (JSON has no NaN)."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def realized(rows: pd.DataFrame) -> Realized:
    """Labelled rows' ROC-AUC and PR-AUC of the scores, recall and precision of the flags."""
    y = rows["label"].to_numpy().astype(bool)
    flags = rows["prediction"].to_numpy().astype(bool)
    s = rows["probability"].to_numpy(dtype=np.float64)
    positives = int(y.sum())
    both = 0 < positives < len(y)
    tp, flagged = int((y & flags).sum()), int(flags.sum())
    return Realized(
        labelled=len(y),
        positives=positives,
        roc_auc=float(roc_auc_score(y, s)) if both else None,
        pr_auc=float(average_precision_score(y, s)) if both else None,
        recall=tp / positives if positives else None,
        precision=tp / flagged if flagged else None,
    )


def reference_calibrator(
    scored: pd.DataFrame, *, min_coverage: float, before: datetime, min_positives: int
) -> Calibrator | None:
    """NannyML's reference period: an isotonic fit on the version's own mature labelled rows
    served before ``before`` (the data window's start), when they hold at least
    ``min_positives`` frauds (None: not yet). Traffic unlike the training holdout (another
    mix, another season) leaves the stored calibrator confident where the served rows are not."""
    if min_positives <= 0:
        return None
    coverage = scored.groupby("day")["known"].transform("mean")
    mature = scored[scored["known"].astype(bool) & (coverage >= min_coverage)]
    rows = mature[pd.to_datetime(mature["request_time"], utc=True) <= pd.Timestamp(before)]
    labels = rows["label"].to_numpy()
    if labels.sum() < min_positives or labels.sum() == len(rows):
        return None
    return Calibrator.fit(rows["probability"].to_numpy(np.float64), labels)


def fallback_calibrator(
    scored: pd.DataFrame, *, min_coverage: float, before: datetime | None
) -> tuple[Calibrator | None, str]:
    """For a version stored without its calibrator: an isotonic fit on the mature labelled rows
    of the window served before ``before`` (the data window's start), else of the whole window
    (then its mature days are estimated in-sample). None: no such rows with both classes."""
    coverage = scored.groupby("day")["known"].transform("mean")
    mature = scored[scored["known"].astype(bool) & (coverage >= min_coverage)]
    tries = []
    if before is not None:
        older = mature[pd.to_datetime(mature["request_time"], utc=True) <= pd.Timestamp(before)]
        tries.append((older, "fallback: isotonic on the mature labelled days before the window"))
    tries.append((mature, "fallback: isotonic on the mature labelled days (in-sample)"))
    for rows, source in tries:
        labels = rows["label"].to_numpy()
        if len(rows) and 0 < labels.sum() < len(rows):
            return Calibrator.fit(rows["probability"].to_numpy(np.float64), labels), source
    return None, "none: no calibrator stored and no mature labelled rows with both classes"


def fast_signals(
    scored: pd.DataFrame,
    calibrator: Calibrator | None,
    *,
    calibration_source: str,
    data_start: datetime,
    min_coverage: float,
    alpha: float,
    min_confirmed: int,
    draws: int,
    seed: int = 0,
) -> FastSignals:
    """The fast signals of the champion's rows ``scored`` (``SCORED_COLUMNS``: every prediction
    of the performance window, ``known`` when its label is confirmed by the run's time)."""
    missing = [c for c in SCORED_COLUMNS if c not in scored.columns]
    if missing:
        raise ValidationError(f"fast signals: the scored rows lack columns {missing}")
    notes: list[str] = []
    if calibrator is None:
        return FastSignals(
            calibration_source, [], None, None, None, None, False, calibration_source, notes
        )
    frame = scored.assign(
        p=calibrator(scored["probability"].to_numpy(np.float64)),
        flag=scored["prediction"].to_numpy().astype(bool),
        fraud=scored["known"].astype(bool) & (scored["label"].fillna(0).astype(int) == 1),
    )
    days: list[DaySignals] = []
    for day, rows in frame.groupby("day", sort=True):
        coverage = float(rows["known"].mean())
        mature = coverage >= min_coverage
        days.append(
            DaySignals(
                day=str(day),
                predictions=len(rows),
                coverage=round(coverage, 6),
                mature=mature,
                confirmed=confirmed_recall(
                    rows.loc[rows["fraud"], "flag"].to_numpy(),
                    expected_recall(rows),
                    alpha=alpha,
                    min_confirmed=min_confirmed,
                ),
                estimate=_estimate(rows, draws, seed),
                realized=realized(rows[rows["known"].astype(bool)]) if mature else None,
            )
        )
    in_window = pd.to_datetime(frame["request_time"], utc=True) > pd.Timestamp(data_start)
    current = frame[in_window]
    window = _estimate(current, draws, seed)
    window_confirmed = None
    suspected, reason = False, "no predictions in the data window"
    if len(current):
        # Each day's expectation weighted by its confirmed frauds: older days of the window
        # have more of theirs confirmed.
        weights = current.groupby("day")["fraud"].sum()
        expectations = pd.Series({d: expected_recall(r) for d, r in current.groupby("day")})
        expected = float((weights * expectations).sum() / weights.sum()) if weights.sum() else 0.0
        window_confirmed = confirmed_recall(
            current.loc[current["fraud"], "flag"].to_numpy(),
            expected,
            alpha=alpha,
            min_confirmed=min_confirmed,
        )
        suspected = window_confirmed.concept_drift_suspected
        reason = _reason(window_confirmed, alpha, min_confirmed)
    mature_days = {d.day for d in days if d.mature}
    matured_rows = frame[frame["day"].isin(mature_days)]
    matured = _estimate(matured_rows, draws, seed)
    labelled = matured_rows[matured_rows["known"].astype(bool)]
    return FastSignals(
        calibration_source=calibration_source,
        days=days,
        window=window,
        window_confirmed=window_confirmed,
        matured=matured,
        matured_realized=realized(labelled) if len(labelled) else None,
        concept_drift_suspected=suspected,
        reason=reason,
        notes=notes,
        calibration=calibrator.to_dict(),
    )


def expected_recall(rows: pd.DataFrame) -> float:
    """Under the calibrated probabilities, the chance a fraud among ``rows`` is flagged."""
    p = rows["p"].to_numpy(np.float64)
    total = float(p.sum())
    return float((p * rows["flag"].to_numpy()).sum() / total) if total > 0 else 0.0


def _estimate(rows: pd.DataFrame, draws: int, seed: int) -> Estimate | None:
    if len(rows) < 2:
        return None
    return estimate(
        rows["p"].to_numpy(np.float64),
        rows["probability"].to_numpy(np.float64),
        rows["flag"].to_numpy(),
        draws=draws,
        seed=seed,
    )


def _reason(c: ConfirmedRecall, alpha: float, min_confirmed: int) -> str:
    if c.confirmed < min_confirmed:
        return (
            f"{c.confirmed} frauds confirmed in the data window, fewer than the "
            f"{min_confirmed} the concept-drift test needs"
        )
    verdict = "below" if c.concept_drift_suspected else "not below"
    return (
        f"{c.flagged} of {c.confirmed} confirmed frauds flagged (recall {c.recall.value:.3f}, "
        f"95% {c.recall.low:.3f}–{c.recall.high:.3f}) vs {c.expected_recall:.3f} expected by "
        f"CBPE: p={c.pvalue:.2g}, {verdict} alpha {alpha:g}"
    )
