"""Acknowledging alerts (fraudops.governance) on a real lake: who, when and the note land on
every row of the alert in one commit, the feed shows them, a second acknowledgement and bad
input are refused with nothing written; the same through `fraudops alerts ack|list --json`."""

from __future__ import annotations

import getpass
import json
import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from typer.testing import CliRunner

from fraudops import governance
from fraudops.alerting import list_alerts
from fraudops.cli import app
from fraudops.cli._common import out as cli_out
from fraudops.config import Settings
from fraudops.lake import Lake
from fraudops.lake.rewrite import ConcurrentChangeError, rewrite_rows
from fraudops.lake.schemas import ALERTS
from fraudops.runtime import Runtime
from tests.governance_support import SPEC, send_test_alert


@pytest.fixture
def lake_settings(settings: Settings) -> Settings:
    with Lake.open(settings, SPEC) as lake:
        lake.init()
    return settings


def ack(settings: Settings, alert_id: str, *, actor: str, note: str) -> governance.AlertAck:
    with Runtime(settings) as runtime:
        return governance.acknowledge_alert(runtime, alert_id, actor=actor, note=note)


def feed(settings: Settings) -> list[dict[str, object]]:
    with Lake.open(settings, SPEC) as lake:
        return list_alerts(lake)


def snapshot(settings: Settings) -> int | None:
    with Lake.open(settings, SPEC) as lake:
        current = lake.table(ALERTS).current_snapshot()
        return None if current is None else current.snapshot_id


def test_an_acknowledgement_lands_on_every_row_of_the_alert_once(lake_settings: Settings) -> None:
    settings = lake_settings
    first, other = send_test_alert(settings, channels=2), send_test_alert(settings, channels=1)
    assert [r["acknowledged_at"] for r in feed(settings)] == [None, None, None]

    start = datetime.now(UTC)
    done = ack(settings, f"  {first} ", actor="alice", note="known: the March promo")
    assert isinstance(done, governance.AlertAck)
    assert (done.alert_id, done.acknowledged_by, done.note) == (
        first,
        "alice",
        "known: the March promo",
    )
    assert start <= done.acknowledged_at <= datetime.now(UTC)
    assert done.channels == ("log", "log") and done.severity == "warning"

    rows = {(r["alert_id"], r["acknowledged_by"], r["ack_note"]) for r in feed(settings)}
    assert rows == {(first, "alice", "known: the March promo"), (other, None, None)}
    acked = [r for r in feed(settings) if r["alert_id"] == first]
    assert len(acked) == 2 and all(r["acknowledged_at"] == done.acknowledged_at for r in acked)
    assert all(r["delivered"] is True and r["subject"] for r in acked)  # the rest kept

    before = snapshot(settings)
    with pytest.raises(governance.ActionConflict, match=f"alert {first} was already acknowledged"):
        ack(settings, first, actor="bob", note="me too")
    assert snapshot(settings) == before
    assert {r["acknowledged_by"] for r in feed(settings) if r["alert_id"] == first} == {"alice"}


@pytest.mark.parametrize(
    ("alert_id", "actor", "note", "error", "message"),
    [
        ("nope", "alice", "x", governance.ActionTargetNotFound, "no alert 'nope'"),
        ("", "alice", "x", governance.ActionInputError, "alert_id is required"),
        (None, " ", "x", governance.ActionInputError, "actor is required"),
        (None, "alice", "", governance.ActionInputError, "note is required"),
        (None, "alice", "n" * 2001, governance.ActionInputError, "note is 2001 characters"),
    ],
)
def test_bad_acknowledgements_write_nothing(
    lake_settings: Settings,
    alert_id: str | None,
    actor: str,
    note: str,
    error: type[Exception],
    message: str,
) -> None:
    real = send_test_alert(lake_settings)
    before = snapshot(lake_settings)
    with pytest.raises(error, match=message):
        ack(lake_settings, real if alert_id is None else alert_id, actor=actor, note=note)
    assert snapshot(lake_settings) == before


def test_a_concurrent_change_to_the_same_rows_wins_and_the_late_one_writes_nothing(
    lake_settings: Settings,
) -> None:
    settings = lake_settings
    alert_id = send_test_alert(settings)

    def late(rows: pa.Table) -> pa.Table:
        # Between this writer's read and its commit, someone acknowledges the same alert.
        ack(settings, alert_id, actor="alice", note="first")
        return rows.set_column(
            rows.schema.get_field_index("ack_note"), "ack_note", pa.array(["late"] * rows.num_rows)
        )

    with Lake.open(settings, SPEC) as lake, pytest.raises(ConcurrentChangeError, match="nothing"):
        rewrite_rows(lake, ALERTS, EqualTo(term="alert_id", value=alert_id), late)
    assert {(r["acknowledged_by"], r["ack_note"]) for r in feed(settings)} == {("alice", "first")}
    assert len(feed(settings)) == 2


def test_of_simultaneous_acknowledgements_exactly_one_is_recorded(lake_settings: Settings) -> None:
    settings = lake_settings
    alert_id = send_test_alert(settings)
    people = ["alice", "bob", "carol"]
    start = threading.Barrier(len(people))
    outcomes: dict[str, object] = {}

    def attempt(person: str) -> None:
        with Runtime(settings) as runtime:
            runtime.lake().table(ALERTS)  # connected before the race starts
            start.wait()
            try:
                outcomes[person] = governance.acknowledge_alert(
                    runtime, alert_id, actor=person, note=f"{person} on it"
                )
            except governance.ActionConflict as exc:
                outcomes[person] = exc

    threads = [threading.Thread(target=attempt, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [p for p, o in outcomes.items() if isinstance(o, governance.AlertAck)]
    losers = [p for p, o in outcomes.items() if isinstance(o, governance.ActionConflict)]
    assert len(winners) == 1 and sorted(winners + losers) == people, outcomes
    rows = feed(settings)
    assert {(r["acknowledged_by"], r["ack_note"]) for r in rows} == {
        (winners[0], f"{winners[0]} on it")
    }
    assert len(rows) == 2


def test_the_cli_acknowledges_and_lists_with_json(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDOPS_HOME", str(lake_settings.home_dir))
    alert_id = send_test_alert(lake_settings)
    runner = CliRunner()
    done = runner.invoke(app, ["alerts", "ack", alert_id, "--note", "looking into it", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["alert_id"], result["acknowledged_by"]) == (alert_id, getpass.getuser())
    assert result["note"] == "looking into it" and result["channels"] == ["log", "log"]

    listed = runner.invoke(app, ["alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {(r["acknowledged_by"], r["ack_note"]) for r in rows} == {
        (getpass.getuser(), "looking into it")
    }
    assert {r["acknowledged_at"] for r in rows} == {result["acknowledged_at"]}
    # The table whole, not cut to 80 columns. COLUMNS alone is not enough: Rich fixes a
    # console's width when the console is built, when COLUMNS was set then (under pytest-xdist).
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(cli_out, "width", 400)
    text = runner.invoke(app, ["alerts", "list"])
    assert text.exit_code == 0 and alert_id in text.stdout and "looking into it" in text.stdout

    again = runner.invoke(app, ["alerts", "ack", alert_id, "--note", "x", "--by", "bob"])
    assert again.exit_code == 1 and "already acknowledged by" in again.stderr
    unknown = runner.invoke(app, ["alerts", "ack", "abc", "--note", "x"])
    assert unknown.exit_code == 1 and "no alert 'abc'" in unknown.stderr
    nobody = runner.invoke(app, ["alerts", "ack", "abc", "--note", "x", "--by", ""])
    assert nobody.exit_code == 2 and "actor is required" in nobody.stderr  # not the OS user
    no_note = runner.invoke(app, ["alerts", "ack", alert_id])
    assert no_note.exit_code == 2 and "--note" in no_note.stderr
