"""One monitoring run: data drift, performance with delayed labels, records, MLflow, alerts.

As of ``now`` (default: the current time; ``--now`` lets a simulation evaluate the past):
- data drift of the predictions in the data window (``monitoring.data_window_days``) against the
  champion's reference profile, per feature and for the score;
- performance over the performance window (``monitoring.performance_window_days``) from each
  prediction's latest label known at ``now``, by prediction-day cohort, mature cohorts only
  deciding whether the model degraded against its training baseline;
- one ``monitoring_runs`` row and one ``feature_drift`` row per feature, one MLflow run with the
  seed's metric names and a JSON summary, Evidently HTML reports when configured (on drift or
  degradation by default), and an alert through the runtime's channels when something is found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from fraudops import registry
from fraudops.alerting.channels import AlertChannel
from fraudops.alerting.dispatch import send_alert
from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.labels.window import ID, LabelledWindow, read_window
from fraudops.models.profile import ReferenceProfile
from fraudops.monitoring.performance import PerformanceReport
from fraudops.monitoring.shadow import compare_shadow
from fraudops.monitoring.window import SHADOW_COLUMNS, WindowRequest, window_performance
from fraudops.orchestration.monitoring_record import log_mlflow, record, write_html_reports
from fraudops.orchestration.monitoring_result import MonitoringResult, Status, Window
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.runtime import Runtime


def run_monitoring(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    window_days: int | None = None,
    html: bool | None = None,
    alert: bool = True,
    channels: Sequence[AlertChannel] | None = None,
    progress: Reporter | None = None,
) -> MonitoringResult:
    """Monitor the runtime's spec as of ``now``; alerts go to ``channels`` (default: the
    runtime's configured ``alert_channels``)."""
    progress = progress or Reporter()
    settings, spec = runtime.settings, runtime.spec
    cfg = settings.monitoring
    as_of = as_utc(now)
    data_days = window_days or cfg.data_window_days
    perf_days = max(cfg.performance_window_days, data_days)
    run_id = f"mon-{as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with progress.step("Loading the champion's reference profile"):
        client = runtime.mlflow
        profile, version = registry.load_reference_profile(settings, spec, client=client)
    data_start = as_of - timedelta(days=data_days)
    perf_start = as_of - timedelta(days=perf_days)

    lake = runtime.lake()
    # The engine reads the windows and computes drift and performance (in this process, or
    # over partitions on a Dask cluster); everything after is the same for both.
    checks = runtime.engine.check_window(
        runtime,
        WindowRequest(
            profile=profile,
            champion=str(version.version),
            data_start=data_start,
            perf_start=perf_start,
            as_of=as_of,
            # What a report needs is kept unless no report can be made.
            html=bool(html) if html is not None else cfg.html_reports != "never",
        ),
        progress,
    )
    drift, performance = checks.drift, checks.performance
    thresholds = _shadow_thresholds(settings, spec, client, checks.shadow_versions)
    attach_shadow(performance, checks.shadow_rows, settings, thresholds)

    data_drift = bool(drift and drift.data_drift_detected)
    model_drift = bool(performance.degraded)
    status: Status = (
        "drift" if data_drift or model_drift else ("ok" if drift else "insufficient_data")
    )
    result = MonitoringResult(
        run_id=run_id,
        spec=spec.name,
        model_name=runtime.model_name,
        model_version=str(version.version),
        as_of=as_of,
        data_window=Window(data_start, as_of, data_days, checks.current_rows),
        performance_window=Window(perf_start, as_of, perf_days, checks.window_rows),
        drift=drift,
        performance=performance,
        data_drift_detected=data_drift,
        model_drift_detected=model_drift,
        status=status,
    )
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
                write_html_reports(lake, settings, spec, current, labelled, report_dir)
            )
    with progress.step("Logging to MLflow"):
        result.mlflow_run_id = log_mlflow(settings, client, result, report_dir)
    with progress.step("Recording the run in the lake"):
        record(lake, result, started=as_of)
    if alert and (data_drift or model_drift):
        with progress.step("Alerting"):
            # channels: the caller's instead of the configured ones (a simulation's alert log).
            result.alert = send_alert(
                settings,
                lake,
                result.alert_summary(),
                channels=runtime.alert_channels if channels is None else channels,
                now=as_of,
            )
    result.timings = dict(progress.timings)
    return result


def report_for_run(
    runtime: Runtime, run_id: str, *, progress: Reporter | None = None
) -> dict[str, str]:
    """Evidently's HTML reports for a recorded monitoring run, on demand (same windows)."""
    progress = progress or Reporter()
    settings, spec = runtime.settings, runtime.spec
    lake = runtime.lake()
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
        labelled = predictions.merge(window.labels, on=ID, how="inner")
        return write_html_reports(lake, settings, spec, current, labelled, directory)


# ---- the shadow comparison -----------------------------------------------------------------------


def _performance(
    window: LabelledWindow,
    profile: ReferenceProfile,
    settings: Settings,
    shadow_thresholds: Mapping[str, float | None] | None = None,
    *,
    champion: str | None = None,
) -> PerformanceReport:
    """The performance report of a window in this process, with the shadow comparison."""
    report, shadow_rows = window_performance(window, profile, settings, champion)
    attach_shadow(report, shadow_rows, settings, shadow_thresholds or {})
    return report


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
