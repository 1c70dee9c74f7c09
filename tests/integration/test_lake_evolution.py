"""`fraudops lake init` on a home made by the release before governance: model_events without
`actor`, alerts without the acknowledgement columns. Until then the automatic writes still land
and the governance actions are refused naming `lake init`; init adds the columns (nothing
dropped, no table recreated), after which everything writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyiceberg.schema import Schema
from typer.testing import CliRunner

from fraudops import governance, registry
from fraudops.alerting import list_alerts
from fraudops.cli import app
from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.lake import Lake
from fraudops.lake.schemas import ALERTS, MODEL_EVENTS, table_schema
from fraudops.registry.events import ModelEvent
from fraudops.runtime import Runtime, mlflow_client
from tests.governance_support import (
    NEW_COLUMNS,
    SPEC,
    make_old_home,
    model_events,
    record_model_events,
    register,
    send_test_alert,
)


def uuids(settings: Settings) -> dict[str, str]:
    with Lake.open(settings, SPEC) as lake:
        return {name: lake.table_uuid(name) for name in NEW_COLUMNS}


def test_an_old_home_keeps_working_and_lake_init_adds_the_columns(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_old_home(settings)
    register(settings, 1, tmp_path)
    name = settings.registered_model_name(SPEC)
    # What training and retraining write: still lands, without the actor.
    record_model_events(settings, SPEC, [ModelEvent(SPEC, name, "registered", "train", "old", "1")])
    old_alert = send_test_alert(settings)
    assert model_events(settings, SPEC)["actor"].tolist() == [None]
    with Lake.open(settings, SPEC) as lake:
        assert [r["acknowledged_by"] for r in list_alerts(lake)] == [None, None]

    # The governance actions, whose point is the who, are refused before anything moves.
    with Runtime(settings) as runtime:
        with pytest.raises(governance.SchemaOutdatedError) as caught:
            governance.promote(runtime, "1", actor="alice", reason="ship")
        assert str(caught.value).startswith(
            "lake table transactions30.model_events has no column(s) actor"
        )
        assert "run `fraudops lake init --spec transactions30`" in str(caught.value)
        with pytest.raises(LakeError, match="acknowledged_at, acknowledged_by, ack_note"):
            governance.acknowledge_alert(runtime, old_alert, actor="alice", note="seen")
    assert registry.champion(mlflow_client(settings), settings) is None

    before = uuids(settings)
    monkeypatch.setenv("FRAUDOPS_HOME", str(settings.home_dir))
    runner = CliRunner()
    done = runner.invoke(app, ["lake", "init", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["created"] == [] and result["columns_added"] == NEW_COLUMNS
    assert uuids(settings) == before  # the same tables, altered, not recreated
    with Lake.open(settings, SPEC) as lake:
        for table in (MODEL_EVENTS, ALERTS):
            assert lake.table(table).schema() == table_schema(table, lake.spec)
    again = runner.invoke(app, ["lake", "init"])
    assert again.exit_code == 0 and "0 created (none new)" in again.stdout
    assert "Added" not in again.stdout

    # The rows written before are all there; the new columns are null on them.
    with Runtime(settings) as runtime:
        governance.promote(runtime, "1", actor="alice", reason="ship")
        governance.acknowledge_alert(runtime, old_alert, actor="bob", note="seen")
    events = model_events(settings, SPEC)
    assert events["actor"].tolist() == [None, "alice"]
    assert events["reason"].tolist() == ["old", "ship"]
    with Lake.open(settings, SPEC) as lake:
        assert [r["acknowledged_by"] for r in list_alerts(lake)] == ["bob", "bob"]


def test_init_still_refuses_a_difference_it_cannot_add(settings: Settings) -> None:
    # model_events without `reason` (a column in the middle): not an upgrade, nothing altered.
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        schema = table_schema(MODEL_EVENTS, lake.spec)
        lake.catalog.drop_table(lake.identifier(MODEL_EVENTS))
        lake.catalog.create_table(
            lake.identifier(MODEL_EVENTS),
            schema=Schema(*(f for f in schema.fields if f.name not in ("reason", "actor"))),
        )
        fields = len(lake.table(MODEL_EVENTS).schema().fields)
        with pytest.raises(LakeError, match=r"model_events does not match.*adds: reason, actor"):
            lake.init()
        assert len(lake.table(MODEL_EVENTS).schema().fields) == fields
