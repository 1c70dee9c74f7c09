"""The data-parallel part of a monitoring run: the window read, data drift and performance.

``WindowChecks`` is what an engine's ``check_window`` returns (``fraudops.compute``); the run
around it (shadow comparison, records, MLflow, alerts) is the same code for every engine
(``fraudops.orchestration.monitoring``). ``check_window_local`` is the local engine's: the whole
window as pandas frames in this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.labels.window import ID, LabelledWindow, mature_labelled, read_window
from fraudops.lake.catalog import Lake
from fraudops.models.profile import ReferenceProfile
from fraudops.monitoring.drift import DriftReport, compute_drift
from fraudops.monitoring.performance import PerformanceReport, evaluate_performance
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec

# The served version and the shadow challenger's score: what shadow scoring compares.
SHADOW_COLUMNS = ("model_version", "shadow_version", "shadow_probability")


@dataclass(frozen=True)
class WindowRequest:
    """What to check: the champion's profile and version, and the two windows (``start <
    request_time <= as_of``)."""

    profile: ReferenceProfile
    champion: str
    data_start: datetime
    perf_start: datetime
    as_of: datetime
    html: bool = False  # keep what the Evidently reports need (a bounded sample on Dask)


@dataclass
class WindowChecks:
    """Data drift over the data window and performance over the performance window."""

    current_rows: int  # predictions in the data window
    window_rows: int  # predictions in the performance window (every version)
    drift: DriftReport | None  # None: fewer than monitoring.min_samples predictions
    performance: PerformanceReport  # the champion's; its ``shadow`` is left to the caller
    shadow_versions: list[str]  # shadow challengers that scored in the performance window
    shadow_rows: pd.DataFrame | None  # mature labelled champion rows with a shadow score
    # For the HTML reports (only with ``WindowRequest.html``): the data window's rows, or a
    # uniform sample of them, and labelled (label, probability) rows, or the window they are
    # joined from when asked (``labelled_for_html``).
    html_current: pd.DataFrame | None = None
    html_labelled: pd.DataFrame | None = None
    window: LabelledWindow | None = None
    # Normalised Wasserstein values that are estimates: feature -> largest possible error.
    wasserstein_bounds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def labelled_for_html(self) -> pd.DataFrame:
        if self.html_labelled is not None:
            return self.html_labelled
        if self.window is not None:  # joined only when a report is made
            return self.window.predictions.merge(self.window.labels, on=ID, how="inner")
        return pd.DataFrame({"label": pd.Series(dtype=int), "probability": pd.Series(dtype=float)})


def check_window_local(
    lake: Lake,
    settings: Settings,
    spec: FeatureSpec,
    request: WindowRequest,
    progress: Reporter,
) -> WindowChecks:
    with progress.step("Reading predictions and labels"):
        window = read_window(
            lake, spec, start=request.perf_start, end=request.as_of, columns=SHADOW_COLUMNS
        )
    predictions = window.predictions
    current = predictions[predictions["request_time"] > pd.Timestamp(request.data_start)]
    with progress.step("Checking data drift"):
        drift = _drift(request.profile, current, spec, settings)
    with progress.step("Measuring performance from labels"):
        performance, shadow_rows = window_performance(
            window, request.profile, settings, request.champion
        )
    shadow_versions = (
        sorted(predictions["shadow_version"].dropna().astype(str).unique())
        if "shadow_version" in predictions.columns
        else []
    )
    checks = WindowChecks(
        current_rows=len(current),
        window_rows=len(predictions),
        drift=drift,
        performance=performance,
        shadow_versions=shadow_versions,
        shadow_rows=shadow_rows,
    )
    if request.html:
        checks.html_current, checks.window = current, window
    return checks


def _drift(
    profile: ReferenceProfile, current: pd.DataFrame, spec: FeatureSpec, settings: Settings
) -> DriftReport | None:
    if len(current) < settings.monitoring.min_samples:
        return None
    return compute_drift(
        profile,
        current[spec.feature_names],
        settings.monitoring,
        scores=current["probability"].to_numpy(dtype=np.float64),
    )


def window_performance(
    window: LabelledWindow, profile: ReferenceProfile, settings: Settings, champion: str | None
) -> tuple[PerformanceReport, pd.DataFrame | None]:
    """The champion's performance report, and the mature labelled rows the shadow comparison
    needs (None: no shadow scores).

    With ``champion`` (None: every version), only the predictions it answered count: the
    question is whether the model now serving has degraded, and the weeks a replaced model
    answered badly must not call for another retrain right after its successor took over."""
    predictions = window.predictions
    excluded = 0
    if champion is not None and "model_version" in predictions.columns:
        answered = (predictions["model_version"].astype(str) == champion).to_numpy()
        excluded = int((~answered).sum())
        predictions = predictions[answered]
    shadow_columns = [c for c in SHADOW_COLUMNS if c in predictions.columns]
    joined = predictions[[ID, "request_time", "probability", "prediction", *shadow_columns]].merge(
        window.labels, on=ID, how="left"
    )
    report = evaluate_performance(
        joined, as_of=window.end, **performance_options(profile, settings)
    )
    report.model_version = champion
    report.other_versions_excluded = excluded
    shadow_rows = None
    if len(shadow_columns) == len(SHADOW_COLUMNS) and joined["shadow_version"].notna().any():
        shadow_rows = mature_labelled(
            joined, as_of=window.end, min_coverage=settings.labels.mature_coverage
        )
    return report, shadow_rows


def performance_options(profile: ReferenceProfile, settings: Settings) -> dict[str, Any]:
    """The settings ``evaluate_performance`` / ``cohort_performance`` take, as keywords."""
    return {
        "min_coverage": settings.labels.mature_coverage,
        "min_samples": settings.monitoring.min_samples,
        "baseline_roc_auc": (profile.baseline_metrics or {}).get("roc_auc"),
        "max_degradation": settings.monitoring.roc_auc_degradation,
        "min_positives": settings.monitoring.min_positives,
        "cost_fn": settings.training.cost_fn,
        "cost_fp": settings.training.cost_fp,
    }
