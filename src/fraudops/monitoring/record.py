"""Where a monitoring run is recorded: the MLflow run (the seed's metric names), the
``monitoring_runs`` and ``feature_drift`` rows, and Evidently's HTML reports."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.monitoring.drift import TABLE_COLUMNS, DriftReport
from fraudops.monitoring.evidently_drift import run_drift_preset
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.shadow import ShadowReport
from fraudops.registry.client import experiment_id
from fraudops.spec import FeatureKind, FeatureSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

# The mature cohorts' figures logged as current_<metric>.
CURRENT_METRICS = (
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
    "fpr",
    "fnr",
    "high_confidence_error_rate",
    "expected_cost",
)


def seed_metrics(result: MonitoringResult) -> dict[str, float]:
    """The seed's MLflow metric names (drifted_columns_*, drift_score_<f>, current_roc_auc…)."""
    metrics: dict[str, float] = {
        "data_drift_detected": float(result.data_drift_detected),
        "model_drift_detected": float(result.model_drift_detected),
        "n_current": float(result.data_window.predictions),
    }
    drift = result.drift
    if drift:
        metrics["drifted_columns_count"] = float(drift.drifted_count)
        metrics["drifted_columns_share"] = float(drift.drifted_share)
        for key in ("mean_psi", "max_psi", "median_psi", "score_psi"):
            value = getattr(drift, key)
            if value is not None and math.isfinite(value):
                metrics[key] = float(value)
        for row in drift.features:
            if math.isfinite(row.psi):
                metrics[f"drift_score_{row.feature}"] = float(row.psi)
    perf = result.performance
    if perf.metrics:
        for key in CURRENT_METRICS:
            metrics[f"current_{key}"] = float(perf.metrics[key])
    if perf.degradation_pct is not None:
        metrics["roc_auc_degradation_pct"] = float(perf.degradation_pct)
    if perf.coverage is not None:
        metrics["label_coverage"] = float(perf.coverage)
    metrics.update(shadow_metrics(perf.shadow))
    return metrics


def shadow_metrics(shadow: ShadowReport | None) -> dict[str, float]:
    """shadow_<metric> (the challenger) and shadow_champion_<metric> on the same rows, for the
    comparison with the most rows (the first)."""
    if shadow is None or not shadow.comparisons:
        return {}
    first = shadow.comparisons[0]
    metrics = {"shadow_rows": float(first.rows), "shadow_positives": float(first.positives)}
    if first.challenger_version.isdigit():  # registry versions are; else summary only
        metrics["shadow_version"] = float(first.challenger_version)
    for prefix, side in (("shadow_", first.challenger), ("shadow_champion_", first.champion)):
        for key, value in (side or {}).items():
            if value is not None:
                metrics[prefix + key] = float(value)
    for key, delta in first.delta.items():
        metrics[f"shadow_delta_{key}"] = float(delta)
    return metrics


def log_mlflow(
    settings: Settings, client: MlflowClient, result: MonitoringResult, report_dir: Path
) -> str:
    from mlflow.entities import Metric, Param  # MLflow's import costs ~1.7 s

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
            metrics=[Metric(k, v, now, 0) for k, v in seed_metrics(result).items()],
            params=[
                Param("as_of", result.as_of.isoformat()),
                Param("data_window_days", str(result.data_window.days)),
                Param("performance_window_days", str(result.performance_window.days)),
            ],
        )
        client.log_artifacts(mlflow_run, str(report_dir), "reports")
    except BaseException:
        client.set_terminated(mlflow_run, status="FAILED")
        raise
    client.set_terminated(mlflow_run, status="FINISHED")
    return str(mlflow_run)


def record(lake: Lake, result: MonitoringResult, *, started: datetime) -> None:
    """One ``monitoring_runs`` row, and one ``feature_drift`` row per feature."""
    drift = result.drift
    perf = result.performance.metrics or {}
    row = {
        "run_id": result.run_id,
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "as_of": result.as_of,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "window_start": result.data_window.start,
        "window_end": result.data_window.end,
        "n_current": result.data_window.predictions,
        "n_labelled": result.performance.labelled,
        "drifted_count": drift.drifted_count if drift else None,
        "drifted_share": drift.drifted_share if drift else None,
        "mean_psi": drift.mean_psi if drift else None,
        "max_psi": drift.max_psi if drift else None,
        "median_psi": drift.median_psi if drift else None,
        "score_psi": drift.score_psi if drift else None,
        "roc_auc": perf.get("roc_auc"),
        "pr_auc": perf.get("pr_auc"),
        "precision": perf.get("precision"),
        "recall": perf.get("recall"),
        "f1": perf.get("f1"),
        "roc_auc_degradation_pct": result.performance.degradation_pct,
        "data_drift_detected": result.data_drift_detected,
        "model_drift_detected": result.model_drift_detected,
        "status": result.status,
        "report_path": result.reports.get("summary"),
        "summary": json.dumps(result.summary(), default=str),
    }
    lake.append("monitoring_runs", pa.Table.from_pylist([row]))
    # The features as JSON (non-finite figures null), the score distribution's row left out.
    features = drift.to_dict()["features"] if drift else []
    rows = [
        {
            **{k: v for k, v in feature.items() if k in TABLE_COLUMNS},
            "run_id": result.run_id,
            "as_of": result.as_of,
        }
        for feature in features
    ]
    if rows:
        lake.append("feature_drift", pa.Table.from_pylist(rows))


def write_html_reports(
    lake: Lake,
    settings: Settings,
    spec: FeatureSpec,
    current: pd.DataFrame,
    labelled: pd.DataFrame,
    directory: Path,
    drift: DriftReport | None = None,
) -> dict[str, str]:
    """Evidently's data-drift and classification HTML reports (seconds each: made on drift or
    degradation, or on demand). The reference is a sample of the lake's `transactions` (with
    their derived features computed, for a spec that has them);
    ``current``: the data window's predictions (or a sample); ``labelled``: labelled predictions
    (label, probability). ``drift``: the run's drift report, whose per-column tests and verdict
    the drift report then carries (``monitoring.evidently_drift``; its JSON beside the HTML)."""
    # Evidently's import costs seconds: only runs that make reports pay it.
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    sample = settings.monitoring.html_sample_rows
    numeric = [f.name for f in spec.model_features if f.kind is FeatureKind.numeric]
    categorical = [f.name for f in spec.model_features if f.kind is not FeatureKind.numeric]
    if spec.derived:  # `transactions` holds the raw columns: the features are computed
        from fraudops.features.lake_source import derive_from_lake

        reference = derive_from_lake(lake, spec)[spec.feature_names]
    else:
        reference = lake.read_frame("transactions", columns=spec.feature_names)
    reference = reference.sample(min(sample, len(reference)), random_state=0)
    current_rows = current[spec.feature_names].sample(min(sample, len(current)), random_state=0)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    reports: dict[str, str] = {}
    preset = DataDriftPreset() if drift is None else run_drift_preset(drift)
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current_rows, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    path = directory / "data_drift.html"
    snapshot.save_html(str(path))
    reports["data_drift"] = str(path)
    snapshot.save_json(str(directory / "data_drift.json"))
    reports["data_drift_json"] = str(directory / "data_drift.json")

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
