"""A collapsing champion is replaced by a better challenger even under the gate's floors: the
decision is ``promoted_below_floor``, the alias moves, model_events and MLflow say so, and a
critical alert goes out (issue 20, point 3). Real registry, server app, spool, lake, labels."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudops import registry
from fraudops.alerting.channels import LogChannel
from fraudops.config import Settings
from fraudops.inference_log.writer import SpoolWriter
from fraudops.lake import Lake
from fraudops.monitoring.retraining import retrain_after_monitoring
from fraudops.monitoring.run import run_monitoring
from fraudops.registry.events import ModelEvent
from fraudops.runtime import Runtime, mlflow_client
from fraudops.serving.app import create_app
from fraudops.training.pipeline import run_training
from tests.governance_support import model_events
from tests.labels_support import chargebacks, ingest
from tests.serving_support import fraud_first, train_champion

pytestmark = pytest.mark.integration

SPEC = "transactions30"


def _weak_champion(settings: Settings) -> tuple[str, str]:
    """(strong, weak): a two-stump model registered past lowered floors and made champion."""
    client = mlflow_client(settings)
    name = settings.registered_model_name(SPEC)
    strong = registry.champion_version(client, settings, name)
    assert strong is not None
    xgb = settings.training.xgboost.model_copy(
        update={"n_estimators": 2, "max_depth": 1, "early_stopping_rounds": 0}
    )
    weak_settings = settings.model_copy(
        update={
            "gate": settings.gate.model_copy(update={"min_roc_auc": 0.0, "min_pr_auc": 0.0}),
            "training": settings.training.model_copy(update={"xgboost": xgb}),
        }
    )
    with Runtime(weak_settings, SPEC) as runtime:
        weak = run_training(runtime.training_context(), raise_on_gate=False).version
    assert weak is not None
    event = ModelEvent(SPEC, name, "manual_promote", "manual", "test", weak, None, strong)
    with Runtime(settings, SPEC) as runtime:
        registry.move_champion(settings, client, SPEC, weak, event=event, lake=runtime.lake())
    return strong, weak


def _serve_and_label(settings: Settings) -> datetime:
    """600 transactions (every fraud of 4,000 among them) served by the champion, their real
    labels a day later; returns a time a month on, when they are all mature."""
    bodies, fraud = fraud_first(settings, 4000, seed=31)
    app = create_app(Runtime(settings, SPEC))
    app.state.start()
    served_at = datetime.now(UTC)
    try:
        responses = asyncio.run(_post(app, [bodies[i : i + 50] for i in range(0, 600, 50)]))
    finally:
        app.state.stop()
    assert all(r.status_code == 200 for r in responses)
    writer = SpoolWriter(settings, SPEC, open_lake=Runtime(settings, SPEC).lake_factory())
    try:
        writer.drain()
    finally:
        writer.close()
    with Lake.open(settings, SPEC) as lake:
        rows = lake.read_frame("predictions", columns=["inference_id", "transaction_id"])
    events = chargebacks(
        zip(rows["inference_id"], rows["transaction_id"], strict=True), fraud, served_at
    )
    later = served_at + timedelta(days=35)
    ingest(settings, SPEC, events, now=later)
    return later


async def _post(app: Any, bodies: list[Any]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fraudops") as client:
        return await asyncio.gather(*(client.post("/v1/predict", json=b) for b in bodies))


def test_a_better_challenger_replaces_a_collapsing_champion_below_the_floors(
    tmp_path: Path,
) -> None:
    settings = train_champion(tmp_path / "home")
    _, weak = _weak_champion(settings)
    later = _serve_and_label(settings)
    # Floors no model reaches here; a retrain due by the champion's age.
    strict = settings.model_copy(
        update={
            "gate": settings.gate.model_copy(update={"min_roc_auc": 0.9999, "min_pr_auc": 0.9999}),
            "retrain": settings.retrain.model_copy(
                update={"every_days": 1.0, "min_holdout_positives": 5, "on_drifted_features": 0}
            ),
        }
    )
    records: list[logging.LogRecord] = []
    logger = logging.Logger("below-floor-test")
    logger.addHandler(_Collect(records))
    with Runtime(strict, SPEC) as runtime:
        ctx = runtime.monitoring_context()
        result = run_monitoring(ctx, now=later, window_days=40, alert=False, html=False)
        check = retrain_after_monitoring(
            ctx, result, html_report=False, channels=[LogChannel(logger)]
        )
    assert check.training is not None, check.blocked
    training = check.training
    assert training.decision == "promoted_below_floor", training.reason
    assert training.exit_code == 0
    challenger, champion = training.metrics.roc_auc, training.gate.champion_metrics["roc_auc"]
    assert challenger > champion  # judged on the same holdout
    client = mlflow_client(settings)
    name = settings.registered_model_name(SPEC)
    assert registry.champion_version(client, settings, name) == training.version
    assert client.get_model_version(name, training.version).tags["decision"] == (
        "promoted_below_floor"
    )
    events = model_events(settings, SPEC)
    mine = events[events["run_id"] == training.run_id]
    assert mine["event_type"].tolist() == ["registered", "promoted_below_floor"]
    assert mine.iloc[-1]["champion_before"] == weak
    # The critical alert: delivered, recorded, naming the missed floors and both models.
    assert check.alert is not None and check.alert.severity == "critical"
    assert check.alert.status == "sent", check.alert.reason
    [record] = records
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert "CRITICAL promoted below the gate's floors" in text
    assert f"version {training.version}" in text and f"v{weak}" in text
    assert "roc_auc" in text and "< 0.9999" in text


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)
