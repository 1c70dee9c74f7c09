"""One monitoring run: data drift, performance with delayed labels, records, MLflow, alerts.

As of ``now`` (default: the current time; ``--now`` lets a simulation evaluate the past):
- data drift of the predictions in the data window (``monitoring.data_window_days``) against the
  champion's reference profile, per feature and for the score;
- performance over the performance window (``monitoring.performance_window_days``) from each
  prediction's latest label known at ``now``, by prediction-day cohort, mature cohorts only
  deciding whether the model degraded against its training baseline;
- one ``monitoring_runs`` row and one ``feature_drift`` row per feature, one MLflow run with the
  seed's metric names and a JSON summary, Evidently HTML reports when configured (on drift or
  degradation by default), and an alert through the configured channels when something is found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec


@dataclass
class MonitoringResult:
    run_id: str
    spec: str
    model_name: str
    model_version: str
    as_of: str
    data_window: dict[str, Any]
    performance_window: dict[str, Any]
    drift: dict[str, Any] | None
    performance: dict[str, Any]
    data_drift_detected: bool
    model_drift_detected: bool
    status: str
    reports: dict[str, str]
    alert: dict[str, Any] | None
    mlflow_run_id: str | None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """What the alert message and the `monitoring_runs.summary` column carry."""
        drift = self.drift or {}
        perf = self.performance.get("metrics") or {}
        return {
            "run_id": self.run_id,
            "as_of": self.as_of,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "features_analyzed": drift.get("features_analyzed", 0),
            "drifted_features": [
                {
                    "feature": f["feature"],
                    "psi": f["psi"],
                    "ks_pvalue": f.get("ks_pvalue"),
                    "severity": f["severity"],
                }
                for f in drift.get("features", [])
                if f.get("drifted")
            ],
            "drifted_count": drift.get("drifted_count", 0),
            "drifted_share": drift.get("drifted_share", 0.0),
            "performance": {
                "roc_auc": perf.get("roc_auc"),
                "pr_auc": perf.get("pr_auc"),
                "recall": perf.get("recall"),
                "precision": perf.get("precision"),
                "baseline_roc_auc": self.performance.get("baseline_roc_auc"),
                "degradation_pct": self.performance.get("degradation_pct"),
            },
            "shadow": _shadow_summary(self.performance.get("shadow")),
            "data_drift_detected": self.data_drift_detected,
            "model_drift_detected": self.model_drift_detected,
            "reports": self.reports,
            "mlflow_run_id": self.mlflow_run_id,
        }


def _shadow_summary(shadow: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """Each champion/challenger comparison, without the per-metric details."""
    if not shadow:
        return None
    keys = ("champion_version", "challenger_version", "rows", "positives", "better")
    return [
        {
            **{k: c.get(k) for k in keys},
            "champion": c.get("champion"),
            "challenger": c.get("challenger"),
        }
        for c in shadow.get("comparisons", [])
    ]


def run_monitoring(
    settings: Settings,
    *,
    spec_name: str | None = None,
    now: datetime | None = None,
    window_days: int | None = None,
    html: bool | None = None,
    alert: bool = True,
    progress: Reporter | None = None,
) -> MonitoringResult:
    from fraudops import registry
    from fraudops.lake import Lake
    from fraudops.registry.client import mlflow_client

    progress = progress or Reporter()
    spec = settings.feature_spec(spec_name)
    cfg = settings.monitoring
    as_of = _utc(now or datetime.now(UTC))
    data_days = window_days or cfg.data_window_days
    perf_days = max(cfg.performance_window_days, data_days)
    run_id = f"mon-{as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with progress.step("Loading the champion's reference profile"):
        client = mlflow_client(settings)
        profile, version = registry.load_reference_profile(settings, spec, client=client)
    model_name = settings.registered_model_name(spec.name)
    data_start = as_of - timedelta(days=data_days)
    perf_start = as_of - timedelta(days=perf_days)

    with progress.step("Reading predictions and labels"), Lake.open(settings, spec.name) as lake:
        lake.init()
        window = _predictions(lake, spec, perf_start, as_of)
        labels = _latest_labels(lake, as_of, perf_start)
    current = window[window["request_time"] > pd.Timestamp(data_start)]

    with progress.step("Checking data drift"):
        drift = _drift(profile, current, spec, settings)
    with progress.step("Measuring performance from labels"):
        thresholds = _shadow_thresholds(settings, spec, client, window)
        performance = _performance(
            window, labels, profile, settings, as_of, thresholds, champion=str(version.version)
        )

    data_drift = bool(drift and drift.get("data_drift_detected"))
    model_drift = bool(performance.get("degraded"))
    status = "drift" if data_drift or model_drift else ("ok" if drift else "insufficient_data")
    result = MonitoringResult(
        run_id=run_id,
        spec=spec.name,
        model_name=model_name,
        model_version=str(version.version),
        as_of=as_of.isoformat(),
        data_window={
            "start": data_start.isoformat(),
            "end": as_of.isoformat(),
            "days": data_days,
            "predictions": len(current),
        },
        performance_window={
            "start": perf_start.isoformat(),
            "end": as_of.isoformat(),
            "days": perf_days,
            "predictions": len(window),
        },
        drift=drift,
        performance=performance,
        data_drift_detected=data_drift,
        model_drift_detected=model_drift,
        status=status,
        reports={},
        alert=None,
        mlflow_run_id=None,
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
        if make_html and len(current):
            result.reports.update(
                write_html_reports(settings, spec, current, window, labels, report_dir)
            )
    with progress.step("Logging to MLflow"):
        result.mlflow_run_id = _log_mlflow(settings, client, result, report_dir)
    with progress.step("Recording the run in the lake"), Lake.open(settings, spec.name) as lake:
        _record(lake, result, started=as_of)
    if alert and (data_drift or model_drift):
        from fraudops.alerting.dispatch import send_alert

        with progress.step("Alerting"):
            outcome = send_alert(settings, spec.name, result.summary(), now=as_of)
            result.alert = outcome.to_dict()
    result.timings = dict(progress.timings)
    return result


def report_for_run(
    settings: Settings,
    run_id: str,
    *,
    spec_name: str | None = None,
    progress: Reporter | None = None,
) -> dict[str, str]:
    """Evidently's HTML reports for a recorded monitoring run, on demand (same windows)."""
    from fraudops.errors import FraudopsError
    from fraudops.lake import Lake

    progress = progress or Reporter()
    spec = settings.feature_spec(spec_name)
    with progress.step("Reading the run and its windows"), Lake.open(settings, spec.name) as lake:
        runs = lake.read_frame("monitoring_runs")
        found = runs[runs["run_id"] == run_id]
        if found.empty:
            raise FraudopsError(
                f"no monitoring run {run_id!r} in {spec.name}.monitoring_runs "
                "(`fraudops lake query 'SELECT run_id, as_of FROM monitoring_runs'`)"
            )
        row = found.iloc[0]
        as_of = _utc(pd.Timestamp(row["as_of"]).to_pydatetime())
        start = _utc(pd.Timestamp(row["window_start"]).to_pydatetime())
        perf_start = as_of - timedelta(
            days=max(settings.monitoring.performance_window_days, (as_of - start).days)
        )
        window = _predictions(lake, spec, perf_start, as_of)
        labels = _latest_labels(lake, as_of, perf_start)
    current = window[window["request_time"] > pd.Timestamp(start)]
    if current.empty:
        raise FraudopsError(f"monitoring run {run_id}: its window holds no predictions any more")
    directory = settings.home_dir / "reports" / spec.name / run_id
    directory.mkdir(parents=True, exist_ok=True)
    with progress.step("Rendering Evidently reports"):
        return write_html_reports(settings, spec, current, window, labels, directory)


# ---- inputs --------------------------------------------------------------------------------------


def _predictions(lake: Any, spec: FeatureSpec, start: datetime, end: datetime) -> pd.DataFrame:
    """The predictions served in ``start < request_time <= end``, the window pushed into the
    Iceberg scan (files and rows outside it are not read)."""
    columns = [
        "inference_id",
        "request_time",
        "probability",
        "prediction",
        "model_version",
        "shadow_version",
        "shadow_probability",
        *spec.feature_names,
    ]
    where = (
        f"request_time > '{_utc(start).isoformat()}' and request_time <= '{_utc(end).isoformat()}'"
    )
    frame = lake.read_frame("predictions", columns=columns, row_filter=where)
    frame["request_time"] = pd.to_datetime(frame["request_time"], utc=True)
    return frame.reset_index(drop=True)


def _latest_labels(lake: Any, as_of: datetime, since: datetime) -> pd.DataFrame:
    """The labels known at ``as_of`` of predictions made after ``since``."""
    from fraudops.labels.ingest import latest_labels

    frame = latest_labels(lake, as_of=as_of, confirmed_after=since)
    return (
        frame[["inference_id", "label", "confirmed_at"]]
        if len(frame)
        else pd.DataFrame(columns=["inference_id", "label", "confirmed_at"])
    )


def _drift(
    profile: Any, current: pd.DataFrame, spec: FeatureSpec, settings: Settings
) -> dict[str, Any] | None:
    from fraudops.monitoring.drift import compute_drift

    if len(current) < settings.monitoring.min_samples:
        return None
    report = compute_drift(
        profile,
        current[spec.feature_names],
        settings.monitoring,
        scores=current["probability"].to_numpy(dtype=np.float64),
    )
    result: dict[str, Any] = report.to_dict()
    return result


def _performance(
    window: pd.DataFrame,
    labels: pd.DataFrame,
    profile: Any,
    settings: Settings,
    as_of: datetime,
    shadow_thresholds: Mapping[str, float | None] | None = None,
    *,
    champion: str | None = None,
) -> dict[str, Any]:
    """The champion's performance report; with a ``shadow`` entry (see ``compare_shadow``) when
    mature labelled rows carry a shadow score. ``shadow_thresholds``: each shadow version's
    decision threshold (``_shadow_thresholds``).

    With ``champion``, only the predictions that version answered count: the question is
    whether the model now serving has degraded, and the weeks a replaced model answered badly
    must not call for another retrain right after its successor took over."""
    excluded = 0
    if champion is not None and "model_version" in window.columns:
        answered = (window["model_version"].astype(str) == champion).to_numpy()
        excluded = int((~answered).sum())
        window = window[answered]
    from fraudops.monitoring.performance import (
        compare_shadow,
        evaluate_performance,
        mature_labelled,
    )

    shadow_columns = [c for c in _SHADOW_COLUMNS if c in window.columns]
    joined = window[
        ["inference_id", "request_time", "probability", "prediction", *shadow_columns]
    ].merge(labels, on="inference_id", how="left")
    report = evaluate_performance(
        joined,
        as_of=as_of,
        min_coverage=settings.labels.mature_coverage,
        min_samples=settings.monitoring.min_samples,
        baseline_roc_auc=(profile.baseline_metrics or {}).get("roc_auc"),
        max_degradation=settings.monitoring.roc_auc_degradation,
        min_positives=settings.monitoring.min_positives,
        cost_fn=settings.training.cost_fn,
        cost_fp=settings.training.cost_fp,
    )
    out = report.to_dict()
    out["model_version"] = champion
    out["other_versions_excluded"] = excluded
    if len(shadow_columns) == len(_SHADOW_COLUMNS) and joined["shadow_version"].notna().any():
        shadow = compare_shadow(
            mature_labelled(joined, as_of=as_of, min_coverage=settings.labels.mature_coverage),
            thresholds=shadow_thresholds or {},
            gate_metrics=settings.gate.champion_metrics,
            min_samples=settings.monitoring.min_samples,
            cost_fn=settings.training.cost_fn,
            cost_fp=settings.training.cost_fp,
        )
        if shadow is not None:
            out["shadow"] = shadow
    return out


_SHADOW_COLUMNS = ("model_version", "shadow_version", "shadow_probability")


def _shadow_thresholds(
    settings: Settings, spec: FeatureSpec, client: Any, window: pd.DataFrame
) -> dict[str, float | None]:
    """The decision threshold of each shadow version in the window (None: not in the registry
    any more — its recall/precision are then left out)."""
    from fraudops import registry
    from fraudops.errors import FraudopsError

    if "shadow_version" not in window.columns:
        return {}
    out: dict[str, float | None] = {}
    for version in sorted(window["shadow_version"].dropna().astype(str).unique()):
        try:
            out[version] = registry.version_threshold(settings, spec, version, client=client)
        except FraudopsError:
            out[version] = None
    return out


# ---- outputs -------------------------------------------------------------------------------------


def _seed_metrics(result: MonitoringResult) -> dict[str, float]:
    """The seed's MLflow metric names (drifted_columns_*, drift_score_<f>, current_roc_auc…)."""
    metrics: dict[str, float] = {
        "data_drift_detected": float(result.data_drift_detected),
        "model_drift_detected": float(result.model_drift_detected),
        "n_current": float(result.data_window["predictions"]),
    }
    drift = result.drift
    if drift:
        metrics["drifted_columns_count"] = float(drift["drifted_count"])
        metrics["drifted_columns_share"] = float(drift["drifted_share"])
        for key in ("mean_psi", "max_psi", "median_psi", "score_psi"):
            if drift.get(key) is not None:
                metrics[key] = float(drift[key])
        for row in drift["features"]:
            if row.get("psi") is not None:
                metrics[f"drift_score_{row['feature']}"] = float(row["psi"])
    perf = result.performance
    if perf.get("metrics"):
        for key in (
            "roc_auc",
            "pr_auc",
            "precision",
            "recall",
            "f1",
            "fpr",
            "fnr",
            "high_confidence_error_rate",
            "expected_cost",
        ):
            metrics[f"current_{key}"] = float(perf["metrics"][key])
    if perf.get("degradation_pct") is not None:
        metrics["roc_auc_degradation_pct"] = float(perf["degradation_pct"])
    if perf.get("coverage") is not None:
        metrics["label_coverage"] = float(perf["coverage"])
    metrics.update(_shadow_metrics(perf.get("shadow")))
    return metrics


def _shadow_metrics(shadow: dict[str, Any] | None) -> dict[str, float]:
    """shadow_<metric> (the challenger) and shadow_champion_<metric> on the same rows, for the
    comparison with the most rows (the first)."""
    comparisons = (shadow or {}).get("comparisons") or []
    if not comparisons:
        return {}
    first = comparisons[0]
    metrics = {"shadow_rows": float(first["rows"]), "shadow_positives": float(first["positives"])}
    if str(first["challenger_version"]).isdigit():  # registry versions are; else summary only
        metrics["shadow_version"] = float(first["challenger_version"])
    for prefix, side in (("shadow_", "challenger"), ("shadow_champion_", "champion")):
        for key, value in (first.get(side) or {}).items():
            if value is not None:
                metrics[prefix + key] = float(value)
    for key, value in (first.get("delta") or {}).items():
        metrics[f"shadow_delta_{key}"] = float(value)
    return metrics


def _log_mlflow(settings: Settings, client: Any, result: MonitoringResult, report_dir: Path) -> str:
    from mlflow.entities import Metric, Param

    from fraudops.registry.client import experiment_id

    experiment = experiment_id(client, settings, settings.mlflow.monitoring_experiment)
    run = client.create_run(
        experiment,
        run_name=result.run_id,
        tags={
            "spec": result.spec,
            "model_name": result.model_name,
            "model_version": result.model_version,
            "status": result.status,
            "monitoring_run_id": result.run_id,
            "pipeline": "monitoring",
        },
    )
    mlflow_run = run.info.run_id
    try:
        now = int(datetime.now(UTC).timestamp() * 1000)
        client.log_batch(
            mlflow_run,
            metrics=[Metric(k, v, now, 0) for k, v in _seed_metrics(result).items()],
            params=[
                Param("as_of", result.as_of),
                Param("data_window_days", str(result.data_window["days"])),
                Param("performance_window_days", str(result.performance_window["days"])),
            ],
        )
        client.log_artifacts(mlflow_run, str(report_dir), "reports")
    except BaseException:
        client.set_terminated(mlflow_run, status="FAILED")
        raise
    client.set_terminated(mlflow_run, status="FINISHED")
    return str(mlflow_run)


def _record(lake: Any, result: MonitoringResult, *, started: datetime) -> None:
    import pyarrow as pa

    from fraudops.monitoring.drift import TABLE_COLUMNS

    drift = result.drift or {}
    perf = result.performance.get("metrics") or {}
    finished = datetime.now(UTC)
    row = {
        "run_id": result.run_id,
        "started_at": started,
        "finished_at": finished,
        "as_of": _utc(datetime.fromisoformat(result.as_of)),
        "model_name": result.model_name,
        "model_version": result.model_version,
        "window_start": _utc(datetime.fromisoformat(result.data_window["start"])),
        "window_end": _utc(datetime.fromisoformat(result.data_window["end"])),
        "n_current": result.data_window["predictions"],
        "n_labelled": result.performance.get("labelled"),
        "drifted_count": drift.get("drifted_count"),
        "drifted_share": drift.get("drifted_share"),
        "mean_psi": drift.get("mean_psi"),
        "max_psi": drift.get("max_psi"),
        "median_psi": drift.get("median_psi"),
        "score_psi": drift.get("score_psi"),
        "roc_auc": perf.get("roc_auc"),
        "pr_auc": perf.get("pr_auc"),
        "precision": perf.get("precision"),
        "recall": perf.get("recall"),
        "f1": perf.get("f1"),
        "roc_auc_degradation_pct": result.performance.get("degradation_pct"),
        "data_drift_detected": result.data_drift_detected,
        "model_drift_detected": result.model_drift_detected,
        "status": result.status,
        "report_path": result.reports.get("summary"),
        "summary": json.dumps(result.summary(), default=str),
    }
    lake.append("monitoring_runs", pa.Table.from_pylist([row]))
    rows = [
        {
            **{k: v for k, v in feature.items() if k in TABLE_COLUMNS},
            "run_id": result.run_id,
            "as_of": row["as_of"],
        }
        for feature in drift.get("features", [])
    ]
    if rows:
        lake.append("feature_drift", pa.Table.from_pylist(rows))


def write_html_reports(
    settings: Settings,
    spec: FeatureSpec,
    current: pd.DataFrame,
    window: pd.DataFrame,
    labels: pd.DataFrame,
    directory: Path,
) -> dict[str, str]:
    """Evidently's data-drift and classification HTML reports (seconds each: made on drift or
    degradation, or on demand). The reference is a sample of the lake's `transactions`."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    from fraudops.lake import Lake
    from fraudops.spec import FeatureKind

    sample = settings.monitoring.html_sample_rows
    numeric = [f.name for f in spec.features if f.kind is FeatureKind.numeric]
    categorical = [f.name for f in spec.features if f.kind is not FeatureKind.numeric]
    with Lake.open(settings, spec.name) as lake:
        reference = lake.read_frame("transactions", columns=spec.feature_names)
    reference = reference.sample(min(sample, len(reference)), random_state=0)
    current_rows = current[spec.feature_names].sample(min(sample, len(current)), random_state=0)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    reports: dict[str, str] = {}
    drift = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current_rows, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    path = directory / "data_drift.html"
    drift.save_html(str(path))
    reports["data_drift"] = str(path)

    labelled = window.merge(labels, on="inference_id", how="inner")
    if len(labelled) and labelled["label"].nunique() == 2:
        frame = pd.DataFrame(
            {
                "label": labelled["label"].astype(int).to_numpy(),
                "probability": labelled["probability"].to_numpy(dtype=float),
            }
        )
        classification = DataDefinition(
            numerical_columns=["probability"],
            classification=[
                BinaryClassification(target="label", prediction_probas="probability", pos_label=1)
            ],
        )
        snapshot = Report([ClassificationPreset()]).run(
            Dataset.from_pandas(frame, data_definition=classification), None
        )
        path = directory / "classification.html"
        snapshot.save_html(str(path))
        reports["classification"] = str(path)
    return reports


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
