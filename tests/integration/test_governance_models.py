"""Promote and roll back by hand (fraudops.governance) on a real MLflow (SQLite store) and a real
lake under a temporary home: the champion moves, model_events records who and why, refusals
change nothing; the same through `fraudops models promote|rollback --json`."""

from __future__ import annotations

import getpass
import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops import governance, registry
from fraudops.cli import app
from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.lake import Lake
from fraudops.registry.events import ModelEvent
from fraudops.runtime import Runtime, mlflow_client
from tests.governance_support import SPEC, model_events, register


@pytest.fixture
def versions(settings: Settings, tmp_path: Path) -> Settings:
    """A home with an initialised lake and versions 1 and 2 registered, no champion yet."""
    with Lake.open(settings, SPEC) as lake:
        lake.init()
    assert [register(settings, seed, tmp_path) for seed in (1, 2)] == ["1", "2"]
    return settings


def promote(settings: Settings, version: str, *, actor: str, reason: str) -> ModelEvent:
    with Runtime(settings) as runtime:
        return governance.promote(runtime, version, actor=actor, reason=reason)


def rollback(settings: Settings, *, actor: str, reason: str) -> ModelEvent:
    with Runtime(settings) as runtime:
        return governance.rollback(runtime, actor=actor, reason=reason)


def champion(settings: Settings) -> str | None:
    row = registry.champion(mlflow_client(settings), settings)
    return None if row is None else str(row["version"])


def test_promote_and_rollback_move_the_champion_and_record_who_and_why(
    versions: Settings,
) -> None:
    settings = versions
    first = promote(settings, "1", actor="alice", reason="first champion")
    assert isinstance(first, ModelEvent)
    assert (first.event_type, first.trigger, first.actor) == ("manual_promote", "manual", "alice")
    assert (first.champion_before, first.champion_after, first.version) == (None, "1", "1")
    assert first.metrics == {"roc_auc": pytest.approx(0.81)}  # the version's tags
    assert champion(settings) == "1"

    second = promote(settings, "v2", actor="bob", reason="  better on March  ")
    assert (second.champion_before, second.champion_after, second.reason) == (
        "1",
        "2",
        "better on March",  # stripped
    )
    assert champion(settings) == "2"

    back = rollback(settings, actor="carol", reason="v2 flags too many")
    assert (back.event_type, back.trigger, back.actor) == ("rollback", "rollback", "carol")
    assert (back.champion_before, back.champion_after) == ("2", "1")
    assert champion(settings) == "1"

    events = model_events(settings, SPEC)
    assert events["actor"].tolist() == ["alice", "bob", "carol"]
    assert events["reason"].tolist() == ["first champion", "better on March", "v2 flags too many"]
    assert events["event_type"].tolist() == ["manual_promote", "manual_promote", "rollback"]
    assert events["event_id"].tolist() == [first.event_id, second.event_id, back.event_id]


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda s: promote(s, "1", actor="", reason="x"), "ActionInputError", "actor is required"),
        (lambda s: promote(s, "1", actor="a", reason=" \n"), "ActionInputError", "reason is"),
        (lambda s: promote(s, "1", actor="a" * 201, reason="x"), "ActionInputError", "at most"),
        (lambda s: rollback(s, actor="a", reason=""), "ActionInputError", "reason is required"),
        (
            lambda s: promote(s, "9", actor="a", reason="x"),
            "ActionTargetNotFound",
            r"no version or alias '9' \(versions: 2, 1\)",
        ),
        (
            lambda s: promote(s, "challenger", actor="a", reason="x"),
            "ActionTargetNotFound",
            "'challenger'",
        ),
        (lambda s: promote(s, "2", actor="a", reason="x"), "ActionConflict", "already the champ"),
        (lambda s: rollback(s, actor="a", reason="x"), "ActionConflict", "no previous champion"),
    ],
)
def test_refused_actions_change_and_record_nothing(
    versions: Settings, action: object, error: str, message: str
) -> None:
    settings = versions
    promote(settings, "2", actor="alice", reason="first")
    before = model_events(settings, SPEC)
    with pytest.raises(getattr(governance, error), match=message) as caught:
        action(settings)  # type: ignore[operator]
    assert isinstance(caught.value, governance.GovernanceError)
    assert champion(settings) == "2"
    assert model_events(settings, SPEC)["event_id"].tolist() == before["event_id"].tolist()


def test_an_uninitialised_lake_is_refused_before_the_alias_moves(
    settings: Settings, tmp_path: Path
) -> None:
    register(settings, 3, tmp_path)
    with pytest.raises(LakeError, match="lake init"):
        promote(settings, "1", actor="alice", reason="ship")
    assert champion(settings) is None


def test_the_cli_promotes_and_rolls_back_with_json(
    versions: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDOPS_HOME", str(versions.home_dir))
    runner = CliRunner()
    done = runner.invoke(
        app, ["models", "promote", "1", "--reason", "ship", "--by", "dave", "--json"]
    )
    assert done.exit_code == 0, done.output
    event = json.loads(done.stdout)
    assert (event["actor"], event["reason"], event["champion_after"]) == ("dave", "ship", "1")
    runner.invoke(app, ["models", "promote", "2", "--reason", "newer", "--json"])

    back = runner.invoke(app, ["models", "rollback", "--reason", "too noisy", "--json"])
    assert back.exit_code == 0, back.output
    event = json.loads(back.stdout)
    assert (event["champion_before"], event["champion_after"]) == ("2", "1")
    user = getpass.getuser()
    assert event["actor"] == user  # --by defaults to the OS user
    assert model_events(versions, SPEC)["actor"].tolist() == ["dave", user, user]

    unknown = runner.invoke(app, ["models", "promote", "7", "--reason", "x"])
    assert unknown.exit_code == 1 and "no version or alias '7'" in unknown.stderr
    same = runner.invoke(app, ["models", "promote", "1", "--reason", "x"])
    assert same.exit_code == 1 and "already the champion" in same.stderr
    empty = runner.invoke(app, ["models", "promote", "2", "--reason", " ", "--by", "dave"])
    assert empty.exit_code == 2 and "reason is required" in empty.stderr
    missing = runner.invoke(app, ["models", "rollback"])
    assert missing.exit_code == 2 and "--reason" in missing.stderr  # required by the CLI
    assert len(model_events(versions, SPEC)) == 3


# ---- simultaneous actions from several processes -----------------------------------------------

# A worker process: imports and opens everything first, says "ready", then runs each command
# it is sent ("promote V" / "rollback") the moment it arrives and answers one JSON line.
_WORKER = """
import json, sys
from fraudops import governance
from fraudops.config import load_settings
from fraudops.runtime import Runtime, mlflow_client

with Runtime(load_settings()) as runtime:
    runtime.lake(); runtime.mlflow.search_registered_models()
    print("ready", flush=True)
    for line in sys.stdin:
        verb, *args = line.split()
        try:
            if verb == "promote":
                event = governance.promote(runtime, args[0], actor=sys.argv[1], reason="race")
            else:
                event = governance.rollback(runtime, actor=sys.argv[1], reason="race")
            print(json.dumps({"ok": True, **event.to_dict()}, default=str), flush=True)
        except governance.GovernanceError as exc:
            print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
"""


def test_simultaneous_actions_from_two_processes_agree_with_the_alias(
    versions: Settings, tmp_path: Path
) -> None:
    """Two processes promote (then roll back) at the same instant, round after round: the
    model_events rows chain (each champion_before is the champion the one before left) and the
    newest row names the version MLflow's alias points at."""
    import subprocess
    import sys

    from tests.serving_support import env_for

    settings = versions
    assert register(settings, 3, tmp_path) == "3"
    promote(settings, "1", actor="setup", reason="start")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, name],
            env=env_for(settings.home_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("w1", "w2")
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        rounds = [("promote 2", "promote 3"), ("promote 1", "promote 2"), ("rollback", "rollback")]
        rounds += [("promote 3", "promote 1"), ("promote 2", "promote 3")]
        for commands in rounds:
            for worker, command in zip(workers, commands, strict=True):  # both, then read both
                assert worker.stdin is not None
                worker.stdin.write(command + "\n")
                worker.stdin.flush()
            answers = [json.loads(w.stdout.readline()) for w in workers]  # type: ignore[union-attr]
            assert any(a["ok"] for a in answers), answers
            events = model_events(settings, SPEC)
            chain = list(zip(events["champion_before"], events["champion_after"], strict=True))
            for (_, after), (before, _) in itertools.pairwise(chain):
                assert before == after, (commands, chain)  # no stale champion_before
            assert chain[-1][1] == champion(settings), (commands, chain)
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=60)
    assert len(model_events(settings, SPEC)) >= 1 + 2 * 4  # every promote round moved twice
