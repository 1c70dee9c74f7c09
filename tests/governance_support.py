"""Helpers for the governance tests: registered versions without a training run, alerts without
a monitoring run, and a home whose tables were made by the release before governance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyiceberg.schema import Schema

from fraudops.alerting import LogChannel, parse_summary, send_alert
from fraudops.config import LogRegParams, Settings
from fraudops.lake import Lake
from fraudops.lake.schemas import ALERTS, MODEL_EVENTS, table_schema
from fraudops.models.mlflow_model import save_model
from fraudops.registry import MODEL_ARTIFACT_PATH, register_version
from fraudops.registry.client import experiment_id
from fraudops.registry.events import ModelEvent, load_events, write_events
from fraudops.runtime import Runtime, mlflow_client
from fraudops.training.trainers import train_logreg

SPEC = "transactions30"
# The columns this release appended, per table: the tables of an older home lack them.
NEW_COLUMNS = {
    MODEL_EVENTS: ["actor"],
    ALERTS: ["acknowledged_at", "acknowledged_by", "ack_note", "incident_key"],
}
SUMMARY: dict[str, Any] = {
    "run_id": "run-1",
    "as_of": "2026-02-24T02:00:00+00:00",
    "model_name": "fraudops-transactions30",
    "model_version": "1",
    "features_analyzed": 30,
    "drifted_features": [("transaction_amount", 0.41, 0.001, "high")],
    "data_drift_detected": True,
    "model_drift_detected": False,
}


def register(settings: Settings, seed: int, tmp_path: Path) -> str:
    """A registered version (a small logistic regression, an MLflow Model) of the spec's model,
    with the tags the pipeline sets; no alias moved, no model_events written."""
    names = settings.feature_spec(SPEC).feature_names
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, len(names)))
    y = (X[:, 0] + rng.normal(size=400) > 1.5).astype(int)
    model = train_logreg(
        X, y, params=LogRegParams(smote=False), seed=seed, feature_names=names, spec_name=SPEC
    )
    client = mlflow_client(settings)
    run = client.create_run(
        experiment_id(client, settings, settings.mlflow.training_experiment), tags={"spec": SPEC}
    )
    save_model(model, tmp_path / f"m{seed}" / MODEL_ARTIFACT_PATH, settings.feature_spec(SPEC))
    client.log_artifacts(run.info.run_id, str(tmp_path / f"m{seed}"))
    client.set_terminated(run.info.run_id)
    mv = register_version(
        client,
        settings.registered_model_name(SPEC),
        run_id=run.info.run_id,
        spec_name=SPEC,
        tags={"trainer": "logreg", "roc_auc": f"{0.8 + seed / 100}"},
        description="test",
    )
    return str(mv.version)


def send_test_alert(settings: Settings, channels: int = 2) -> str:
    """One alert through ``channels`` log channels (one row each, no cooldown); its id."""
    with Runtime(settings) as runtime:
        outcome = send_alert(
            settings,
            runtime.lake(),
            parse_summary(SUMMARY),
            channels=[LogChannel() for _ in range(channels)],
            test=True,
        )
    assert outcome.alert_id is not None and outcome.recorded, outcome
    return outcome.alert_id


def make_old_home(settings: Settings) -> None:
    """The lake as the release before governance left it: model_events and alerts without the
    columns this one appended (every other table as now)."""
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        for name, columns in NEW_COLUMNS.items():
            schema = table_schema(name, lake.spec)
            old = Schema(*schema.fields[: -len(columns)])
            assert [f.name for f in schema.fields[-len(columns) :]] == columns
            lake.catalog.drop_table(lake.identifier(name))
            lake.catalog.create_table(lake.identifier(name), schema=old)


def model_events(settings: Settings, spec_name: str = SPEC) -> pd.DataFrame:
    """The spec's ``model_events``, oldest first, over a lake the runtime opens and closes."""
    with Runtime(settings, spec_name) as runtime:
        return load_events(runtime.lake())


def record_model_events(settings: Settings, spec_name: str, events: list[ModelEvent]) -> None:
    with Runtime(settings, spec_name) as runtime:
        write_events(runtime.lake(), events)
