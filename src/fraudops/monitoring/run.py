"""A monitoring run's sequence, written once for every engine.

window → drift → performance → shadow → record → alert (the retrain decision after it:
``fraudops.monitoring.retraining.retrain_after_monitoring``). As of ``now`` (default: the current
time; ``--now`` lets a simulation evaluate the past):
- the engine's window backend (``open_window``: local frames, or partitions on a Dask cluster)
  reads the two windows; every statistic is computed here from what it returns (``check_window``);
- data drift of the predictions in the data window (``monitoring.data_window_days``) against the
  champion's reference profile, per feature and for the score;
- performance over the performance window (``monitoring.performance_window_days``) from each
  prediction's latest label known at ``now``, by prediction-day cohort, mature cohorts only
  deciding whether the model degraded against its training baseline; the champion against its
  shadow challenger on the same mature labelled rows;
- the fast signals (``fraudops.monitoring.signals``): recall on the frauds confirmed so far, CBPE
  per day and for the data window (provisional, beside the realized figures once mature), and
  whether concept drift is suspected (a warning alert);
- one ``monitoring_runs`` row and one ``feature_drift`` row per feature, one MLflow run with the
  seed's metric names and a JSON summary, Evidently HTML reports when configured (on drift or
  degradation by default), and an alert through the context's channels when something is found.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops import registry
from fraudops.alerting.channels import AlertChannel
from fraudops.alerting.dispatch import send_alert
from fraudops.alerting.skew import send_skew_alert
from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.labels.window import ID, read_window
from fraudops.models.calibration import Calibrator
from fraudops.models.profile import ReferenceProfile
from fraudops.monitoring.backend import (
    SHADOW_COLUMNS,
    DataSlice,
    PerformanceSlice,
    WindowBackend,
    WindowChecks,
    WindowRequest,
)
from fraudops.monitoring.context import MonitoringContext
from fraudops.monitoring.drift import DriftReport, compute_drift
from fraudops.monitoring.performance import PerformanceReport, cohort_performance
from fraudops.monitoring.record import log_mlflow, record, write_html_reports
from fraudops.monitoring.result import MonitoringResult, Status, Window
from fraudops.monitoring.shadow import compare_shadow
from fraudops.monitoring.signals import (
    FastSignals,
    fallback_calibrator,
    fast_signals,
    reference_calibrator,
)
from fraudops.monitoring.skew import check_skew
from fraudops.monitoring.summaries import crossing_rows, crossings, finish_drift
from fraudops.monitoring.window import LocalWindow
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

# Values gathered to integrate the crossing intervals exactly (8 bytes each); past it the
# normalised Wasserstein stays an estimate within its stated bound.
REFINE_MAX_ROWS = 2_000_000


def run_monitoring(
    ctx: MonitoringContext,
    *,
    now: datetime | None = None,
    window_days: int | None = None,
    html: bool | None = None,
    alert: bool = True,
    channels: Sequence[AlertChannel] | None = None,
    progress: Reporter | None = None,
) -> MonitoringResult:
    """Monitor the context's spec as of ``now``; alerts go to ``channels`` (default: the
    context's configured ``alert_channels``)."""
    progress = progress or Reporter()
    settings, spec, lake, client = ctx.settings, ctx.spec, ctx.lake, ctx.mlflow
    cfg = settings.monitoring
    as_of = as_utc(now)
    data_days = window_days or cfg.data_window_days
    perf_days = max(cfg.performance_window_days, data_days)
    run_id = f"mon-{as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with progress.step("Loading the champion's reference profile"):
        profile, version = registry.load_reference_profile(settings, spec, client=client)
    data_start = as_of - timedelta(days=data_days)
    perf_start = as_of - timedelta(days=perf_days)

    # window → drift → performance: the engine's backend reads, the statistics are computed here.
    request = WindowRequest(
        profile=profile,
        champion=str(version.version),
        data_start=data_start,
        perf_start=perf_start,
        as_of=as_of,
        # What a report needs is kept unless no report can be made.
        html=bool(html) if html is not None else cfg.html_reports != "never",
    )
    checks = check_window(open_window(ctx, request), settings, spec, progress)
    drift, performance = checks.drift, checks.performance
    # → shadow
    thresholds = _shadow_thresholds(settings, spec, client, checks.shadow_versions)
    attach_shadow(performance, checks.shadow_rows, settings, thresholds)
    # → fast signals (confirmed-fraud recall, CBPE, concept-drift suspicion)
    with progress.step("Estimating the fast signals"):
        signals = run_signals(ctx, str(version.version), checks.scored, data_start)

    data_drift = bool(drift and drift.data_drift_detected)
    model_drift = bool(performance.degraded)
    status: Status = (
        "drift" if data_drift or model_drift else ("ok" if drift else "insufficient_data")
    )
    result = MonitoringResult(
        run_id=run_id,
        spec=spec.name,
        model_name=ctx.model_name,
        model_version=str(version.version),
        as_of=as_of,
        data_window=Window(data_start, as_of, data_days, checks.current_rows),
        performance_window=Window(perf_start, as_of, perf_days, checks.window_rows),
        drift=drift,
        performance=performance,
        data_drift_detected=data_drift,
        model_drift_detected=model_drift,
        status=status,
        signals=signals,
    )
    # → skew (derived features only): logged online values against an offline recomputation
    if spec.derived:
        with progress.step("Checking training-serving skew"):
            result.skew = check_skew(
                lake, spec, start=data_start, end=as_of, alert_share=cfg.skew_alert_share
            )
        if result.skew.alert:
            log.warning("training-serving skew in %s: %s", spec.name, result.skew.to_dict())
    # → record
    make_html = (
        cfg.html_reports == "always"
        or (cfg.html_reports == "on_drift" and (data_drift or model_drift))
        if html is None
        else html
    )
    report_dir = settings.home_dir / "reports" / spec.name / run_id
    with progress.step("Writing the summary and reports"):
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "drift_summary.json").write_text(
            json.dumps(result.to_dict(), indent=2, default=str)
        )
        result.reports["summary"] = str(report_dir / "drift_summary.json")
        current = checks.html_current
        if make_html and current is not None and len(current):
            labelled = checks.labelled_for_html()
            result.reports.update(
                write_html_reports(lake, settings, spec, current, labelled, report_dir, drift)
            )
    with progress.step("Logging to MLflow"):
        result.mlflow_run_id = log_mlflow(settings, client, result, report_dir)
    with progress.step("Recording the run in the lake"):
        record(lake, result, started=as_of)
    # → alert
    if alert and (data_drift or model_drift or result.concept_drift_suspected):
        with progress.step("Alerting"):
            # channels: the caller's instead of the configured ones (a simulation's alert log).
            result.alert = send_alert(
                settings,
                lake,
                result.alert_summary(),
                channels=ctx.alert_channels if channels is None else channels,
                now=as_of,
            )
    if alert and result.skew is not None and result.skew.alert:
        with progress.step("Alerting on training-serving skew"):
            result.skew.sent = send_skew_alert(
                settings,
                lake,
                result.skew.alert_summary(
                    run_id=run_id,
                    as_of=as_of.isoformat(),
                    model_name=ctx.model_name,
                    model_version=str(version.version),
                ),
                channels=ctx.alert_channels if channels is None else channels,
                now=as_of,
            )
    result.timings = dict(progress.timings)
    return result


def open_window(ctx: MonitoringContext, request: WindowRequest) -> WindowBackend:
    """The window backend of the context's engine (by its name)."""
    if ctx.engine.name == "dask":
        from fraudops.compute.dask_engine import DaskEngine
        from fraudops.monitoring.dask_window import DaskWindow

        assert isinstance(ctx.engine, DaskEngine)
        return DaskWindow(ctx.engine.client, ctx.lake, ctx.spec, request)
    return LocalWindow(ctx.lake, ctx.spec, request)


def run_signals(
    ctx: MonitoringContext, version: str, scored: pd.DataFrame | None, data_start: datetime
) -> FastSignals | None:
    """The fast signals of the champion's rows (None: the backend gathered none). The
    probabilities are calibrated on the version's own mature labelled traffic before the data
    window once it holds ``monitoring.cbpe_reference_positives`` frauds (the reference period),
    else by the calibrator stored with the version, else by one fitted on the window's mature
    labelled rows (``signals.fallback_calibrator``)."""
    if scored is None:
        return None
    settings, cfg = ctx.settings, ctx.settings.monitoring
    manifest = registry.load_model(settings, ctx.spec, version, client=ctx.mlflow).manifest
    calibrator = reference_calibrator(
        scored,
        min_coverage=settings.labels.mature_coverage,
        before=data_start,
        min_positives=cfg.cbpe_reference_positives,
    )
    if calibrator is not None:
        source = "reference: isotonic on the version's mature labelled traffic before the window"
    elif manifest.calibration is not None:
        calibrator, source = Calibrator.from_dict(manifest.calibration), "manifest"
    else:
        calibrator, source = fallback_calibrator(
            scored, min_coverage=settings.labels.mature_coverage, before=data_start
        )
    return fast_signals(
        scored,
        calibrator,
        calibration_source=source,
        data_start=data_start,
        min_coverage=settings.labels.mature_coverage,
        alpha=cfg.concept_drift_alpha,
        min_confirmed=cfg.concept_drift_min_confirmed,
        draws=cfg.cbpe_draws,
    )


# ---- window → drift → performance ----------------------------------------------------------------


def check_window(
    backend: WindowBackend,
    settings: Settings,
    spec: FeatureSpec,
    progress: Reporter,
    *,
    refine_max_rows: int = REFINE_MAX_ROWS,
) -> WindowChecks:
    """The window's drift and performance from ``backend``'s slices; ``refine_max_rows``: at
    most so many values gathered to make the normalised Wasserstein exact where the ECDFs
    cross (past it, an estimate within ``WindowChecks.wasserstein_bounds``)."""
    request = backend.request
    with progress.step("Reading predictions and labels"):
        perf = backend.performance_slice()
    with progress.step("Measuring performance from labels"):
        performance, shadow_rows = window_performance(
            perf, request.profile, settings, as_of=request.as_of, champion=request.champion
        )
    with progress.step("Reading the data window"):
        data = backend.data_slice(settings.monitoring.min_samples)
    with progress.step("Checking data drift"):
        drift, bounds = window_drift(backend, data, settings, spec, refine_max_rows)
    checks = WindowChecks(
        current_rows=data.rows,
        window_rows=perf.rows,
        drift=drift,
        performance=performance,
        shadow_versions=perf.shadow_versions,
        shadow_rows=shadow_rows,
        wasserstein_bounds=bounds,
        notes=list(data.notes),
        scored=perf.scored,
    )
    if any(bounds.values()):
        checks.notes.append(
            "normalised Wasserstein estimated where the ECDFs cross (too many rows there to "
            "gather): each within its wasserstein_bounds"
        )
        log.info("Wasserstein bounds: %s", bounds)
    if request.html:
        checks.html_current, checks.html_labelled = data.html_current, perf.html_labelled
    return checks


def window_drift(
    backend: WindowBackend,
    data: DataSlice,
    settings: Settings,
    spec: FeatureSpec,
    refine_max_rows: int = REFINE_MAX_ROWS,
) -> tuple[DriftReport | None, dict[str, float]]:
    """The data window's drift report (None: fewer than ``monitoring.min_samples`` rows) and
    the bounds of its Wasserstein estimates (empty, or 0 where exact)."""
    cfg, profile = settings.monitoring, backend.request.profile
    if data.rows < cfg.min_samples:
        return None, {}
    if data.current is not None:
        current = data.current
        report = compute_drift(
            profile,
            current[spec.feature_names],
            cfg,
            scores=current["probability"].to_numpy(dtype=np.float64),
        )
        return report, {}
    assert data.summary is not None, "a data slice holds its rows or their summary"
    # Intervals where the two ECDFs cross: their own values make the Wasserstein exact, when
    # they are few enough to gather (else it stays an estimate within its bound).
    slots = crossings(profile, data.summary)
    inside = None
    if slots and crossing_rows(data.summary, slots) <= refine_max_rows:
        inside = backend.values_inside(slots)
    result = finish_drift(profile, data.summary, cfg, inside)
    return result.report, result.wasserstein_bounds


def window_performance(
    perf: PerformanceSlice,
    profile: ReferenceProfile,
    settings: Settings,
    *,
    as_of: datetime,
    champion: str | None,
) -> tuple[PerformanceReport, pd.DataFrame | None]:
    """The champion's performance report, and the mature labelled rows the shadow comparison
    needs (None: no shadow scores)."""
    report = cohort_performance(
        pd.Timestamp(as_utc(as_of)),
        perf.day_rows,
        perf.labelled,
        **performance_options(profile, settings),
    )
    report.model_version = champion
    report.other_versions_excluded = perf.excluded
    shadow_rows = None
    if perf.champion_shadow:  # labels.window.mature_labelled's rule
        labelled = perf.labelled
        known = labelled.groupby("day").size().reindex(perf.day_rows.index, fill_value=0)
        coverage = known / perf.day_rows
        mature = coverage.index[coverage >= settings.labels.mature_coverage]
        shadow_rows = labelled[labelled["day"].isin(mature)]
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
        "alerts_per_day": settings.training.alerts_per_day,
    }


def report_for_run(
    ctx: MonitoringContext, run_id: str, *, progress: Reporter | None = None
) -> dict[str, str]:
    """Evidently's HTML reports for a recorded monitoring run, on demand (same windows)."""
    progress = progress or Reporter()
    settings, spec, lake = ctx.settings, ctx.spec, ctx.lake
    with progress.step("Reading the run and its windows"):
        runs = lake.read_frame("monitoring_runs")
        found = runs[runs["run_id"] == run_id]
        if found.empty:
            raise FraudopsError(
                f"no monitoring run {run_id!r} in {spec.name}.monitoring_runs "
                "(`fraudops lake query 'SELECT run_id, as_of FROM monitoring_runs'`)"
            )
        row = found.iloc[0]
        as_of = as_utc(pd.Timestamp(row["as_of"]).to_pydatetime())
        start = as_utc(pd.Timestamp(row["window_start"]).to_pydatetime())
        perf_start = as_of - timedelta(
            days=max(settings.monitoring.performance_window_days, (as_of - start).days)
        )
        window = read_window(lake, spec, start=perf_start, end=as_of, columns=SHADOW_COLUMNS)
    predictions = window.predictions
    current = predictions[predictions["request_time"] > pd.Timestamp(start)]
    if current.empty:
        raise FraudopsError(f"monitoring run {run_id}: its window holds no predictions any more")
    directory = settings.home_dir / "reports" / spec.name / run_id
    directory.mkdir(parents=True, exist_ok=True)
    with progress.step("Rendering Evidently reports"):
        # The run's drift tests, again on its window against its version's profile.
        profile, _ = registry.load_reference_profile(
            settings, spec, str(row["model_version"]), client=ctx.mlflow
        )
        drift = None
        if len(current) >= settings.monitoring.min_samples:
            drift = compute_drift(
                profile,
                current[spec.feature_names],
                settings.monitoring,
                scores=current["probability"].to_numpy(dtype=np.float64),
            )
        labelled = predictions.merge(window.labels, on=ID, how="inner")
        return write_html_reports(lake, settings, spec, current, labelled, directory, drift)


# ---- the shadow comparison -----------------------------------------------------------------------


def attach_shadow(
    report: PerformanceReport,
    shadow_rows: pd.DataFrame | None,
    settings: Settings,
    thresholds: Mapping[str, float | None],
) -> None:
    """The champion against its shadow challenger (``compare_shadow``) on the mature labelled
    rows with a shadow score. ``thresholds``: each shadow version's decision threshold
    (``_shadow_thresholds``)."""
    if shadow_rows is None:
        return
    report.shadow = compare_shadow(
        shadow_rows,
        thresholds=thresholds,
        gate_metrics=settings.gate.champion_metrics,
        min_samples=settings.monitoring.min_samples,
        cost_fn=settings.training.cost_fn,
        cost_fp=settings.training.cost_fp,
    )


def _shadow_thresholds(
    settings: Settings, spec: FeatureSpec, client: MlflowClient, versions: Sequence[str]
) -> dict[str, float | None]:
    """The decision threshold of each shadow version (None: not in the registry any more —
    its recall/precision are then left out)."""
    out: dict[str, float | None] = {}
    for version in versions:
        try:
            out[version] = registry.version_threshold(settings, spec, version, client=client)
        except FraudopsError:
            out[version] = None
    return out
