"""The fast signals over a simulation: how soon each onset was seen and fixed, and whether CBPE's
95 % intervals held the figures the labels later gave.

Per onset (data drift, concept drift): days from the onset to the first monitoring run that saw
something (data drift, degradation or concept-drift suspicion) and to the first promotion after
it. Per weekly run: its data window's CBPE estimate beside the realized ROC-AUC and recall of the
same predictions against their true outcomes (known to the simulation once it ends), and CBPE's
ROC-AUC over the 30 days before each run (through the calibrator the run used) beside the
realized one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Scenario
from fraudops.lake import Lake
from fraudops.models.calibration import Calibrator
from fraudops.monitoring.cbpe import estimate
from fraudops.monitoring.signals import realized
from fraudops.simulation.results import SimulationResult
from fraudops.simulation.traffic import DAYS_PER_MONTH
from fraudops.training.gate import promotes


def onset_timings(result: SimulationResult, plan: Scenario) -> list[dict[str, Any]]:
    """Each onset's days to detection and to the promoted fix (None: never)."""
    start = datetime.fromisoformat(result.start)
    out = []
    for kind, month in (
        ("data_drift", plan.data_drift_month),
        ("concept_drift", plan.concept_drift_month),
    ):
        if month is None:
            continue
        onset = start + timedelta(days=(month - 1) * DAYS_PER_MONTH)
        runs = [r for r in result.monitoring_runs if datetime.fromisoformat(r.as_of) > onset]
        seen = next(
            (
                r
                for r in runs
                if r.data_drift_detected or r.model_drift_detected or r.concept_drift_suspected
            ),
            None,
        )
        fixes = [
            r
            for r in result.retrains
            if promotes(r.decision) and datetime.fromisoformat(r.as_of) > onset
        ]
        fix = fixes[0] if fixes else None
        out.append(
            {
                "kind": kind,
                "month": month,
                "onset": onset.isoformat(),
                "detected_as_of": None if seen is None else seen.as_of,
                "days_to_detection": _days(onset, seen.as_of if seen else None),
                "detected_by": None if seen is None else _found(seen),
                "fix_as_of": None if fix is None else fix.as_of,
                "fix_version": None if fix is None else fix.version,
                "days_to_fix": _days(onset, fix.as_of if fix else None),
            }
        )
    return out


def _days(onset: datetime, when: str | None) -> float | None:
    if when is None:
        return None
    return round((datetime.fromisoformat(when) - onset).total_seconds() / 86_400, 2)


def _found(run: Any) -> list[str]:
    return [
        name
        for name, hit in (
            ("data_drift", run.data_drift_detected),
            ("degradation", run.model_drift_detected),
            ("concept_drift", run.concept_drift_suspected),
        )
        if hit
    ]


def cbpe_check(
    lake: Lake, truth: pd.DataFrame, result: SimulationResult, data_days: int
) -> dict[str, Any]:
    """Per run, its window's CBPE estimate against the realized figures of the same predictions
    (the champion's of its data window) on their true outcomes; the shares inside the 95 %
    intervals; and the control's concept-drift suspicions (false alarms when no onset)."""
    served = lake.read_frame(
        "predictions",
        columns=["inference_id", "request_time", "probability", "prediction", "model_version"],
    )
    frame = served.drop_duplicates("inference_id").merge(
        truth[["inference_id", "label"]], on="inference_id", how="inner"
    )
    times = pd.to_datetime(frame["request_time"], utc=True)
    checked = []
    for run in result.monitoring_runs:
        window = (run.signals or {}).get("window")
        if not window:
            run.cbpe_check = None
            continue
        end = pd.Timestamp(datetime.fromisoformat(run.as_of))
        end = end.tz_localize("UTC") if end.tzinfo is None else end
        mask = (times > end - pd.Timedelta(days=data_days)) & (times <= end)
        rows = frame[mask.to_numpy() & (frame["model_version"].astype(str) == run.champion)]
        if rows.empty:
            run.cbpe_check = None
            continue
        real = realized(rows)
        check: dict[str, Any] = {"rows": len(rows), "frauds": real.positives}
        for name, value in (("roc_auc", real.roc_auc), ("recall", real.recall)):
            band = window.get(name) or {}
            low, high = band.get("low"), band.get("high")
            check[f"realized_{name}"] = value
            check[f"estimated_{name}"] = band.get("value")
            check[f"{name}_inside"] = (
                None if value is None or low is None or high is None else low <= value <= high
            )
        check.update(_thirty_days(frame, times, end, run))
        run.cbpe_check = check
        checked.append(check)

    def share(name: str) -> float | None:
        known = [c[f"{name}_inside"] for c in checked if c[f"{name}_inside"] is not None]
        return float(np.mean(known)) if known else None

    month = [c["roc_auc_30d_error"] for c in checked if c.get("roc_auc_30d_error") is not None]
    return {
        "runs_checked": len(checked),
        "roc_auc_inside_share": share("roc_auc"),
        "recall_inside_share": share("recall"),
        "roc_auc_30d_windows": len(month),
        "roc_auc_30d_within_003_share": (float(np.mean(np.abs(month) <= 0.03)) if month else None),
        "concept_drift_suspicions": sum(r.concept_drift_suspected for r in result.monitoring_runs),
    }


def _thirty_days(
    frame: pd.DataFrame, times: pd.Series, end: pd.Timestamp, run: Any
) -> dict[str, Any]:
    """CBPE's ROC-AUC over the champion's predictions of the 30 days before the run, through
    the calibrator the run used, beside the realized ROC-AUC of the same rows (None: the run
    stored no calibrator, or fewer than 30 days of that champion)."""
    raw = (run.signals or {}).get("calibration")
    mask = (times > end - pd.Timedelta(days=30)) & (times <= end)
    rows = frame[mask.to_numpy() & (frame["model_version"].astype(str) == run.champion)]
    first = pd.to_datetime(rows["request_time"], utc=True).min() if len(rows) else None
    if not raw or first is None or first > end - pd.Timedelta(days=29):
        return {"roc_auc_30d_error": None}
    p = Calibrator.from_dict(raw)(rows["probability"].to_numpy(np.float64))
    s = rows["probability"].to_numpy(np.float64)
    real = realized(rows)
    if real.roc_auc is None:
        return {"roc_auc_30d_error": None}
    estimated = estimate(p, s, rows["prediction"].to_numpy().astype(bool), draws=20).roc_auc.value
    return {
        "estimated_roc_auc_30d": estimated,
        "realized_roc_auc_30d": real.roc_auc,
        "roc_auc_30d_error": estimated - real.roc_auc,
    }
