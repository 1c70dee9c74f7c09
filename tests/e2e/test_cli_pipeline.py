"""generate → lake load → train → gate → register, through the CLI, on ~20K rows.

Also the refusals: bad files leave the lake unchanged, a failed gate exits 3, a worse challenger is
registered but not promoted (exit 4), and `model_events` tells both stories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app

ROWS = 20_000


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return {
        "FRAUDOPS_HOME": str(workdir / "home"),
        "MPLBACKEND": "Agg",
        "GIT_PYTHON_REFRESH": "quiet",
    }


def run(
    env: dict[str, str], *args: str, code: int = 0, extra_env: dict[str, str] | None = None
) -> Any:
    result = CliRunner().invoke(app, list(args), env={**env, **(extra_env or {})})
    assert result.exit_code == code, (
        f"fraudops {' '.join(args)} exited {result.exit_code}, wanted {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def run_json(
    env: dict[str, str], *args: str, code: int = 0, extra_env: dict[str, str] | None = None
) -> Any:
    return json.loads(run(env, *args, "--json", code=code, extra_env=extra_env).stdout)


def count(env: dict[str, str]) -> int:
    return int(run_json(env, "lake", "query", "SELECT count(*) AS n FROM transactions")[0]["n"])


@pytest.fixture(scope="module")
def loaded(env: dict[str, str], workdir: Path) -> Path:
    """Generated data, loaded into a fresh lake."""
    out = workdir / "data"
    summary = run_json(
        env, "data", "generate", "--rows", str(ROWS), "--seed", "11", "--out", str(out)
    )
    assert summary["rows"] == ROWS
    created = run_json(env, "lake", "init")["created"]
    assert "transactions" in created and "model_events" in created
    assert run_json(env, "lake", "init")["created"] == []  # idempotent
    report = run_json(env, "lake", "load", str(out / "transactions.parquet"))
    assert report["rows"] == ROWS
    assert count(env) == ROWS
    return out


def test_bad_files_are_refused_and_change_nothing(
    env: dict[str, str], loaded: Path, workdir: Path
) -> None:
    frame = pd.read_parquet(loaded / "transactions.parquet").head(300)
    frame["transaction_id"] = "bad-" + frame["transaction_id"]  # fresh ids: only the flaw differs

    cases: dict[str, tuple[pd.DataFrame | str, list[str]]] = {
        "missing.csv": (frame.drop(columns=["credit_limit"]), ["credit_limit", "missing"]),
        "wrongtype.csv": (
            frame.astype({"customer_age": object}).assign(
                customer_age=lambda f: f["customer_age"].where(f.index != f.index[3], "old")
            ),
            ["customer_age", "4"],
        ),
        "range.csv": (
            frame.assign(
                available_credit_ratio=lambda f: f["available_credit_ratio"].where(
                    f.index != f.index[7], 3.5
                )
            ),
            ["available_credit_ratio", "8", "3.5"],
        ),
        "unreadable.parquet": ("this is not parquet", ["unreadable.parquet"]),
    }
    for name, (content, expected) in cases.items():
        path = workdir / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            content.to_csv(path, index=False)
        result = run(env, "lake", "load", str(path), code=2)
        for needle in expected:
            assert needle in result.stderr, f"{name}: {needle!r} not in {result.stderr!r}"
        assert count(env) == ROWS, f"{name} changed the table"

    result = run(
        env, "lake", "load", str(loaded / "transactions.parquet"), "--spec", "nope", code=2
    )
    assert "unknown spec 'nope'" in result.stderr
    assert count(env) == ROWS


def test_train_gate_register_and_champion_story(env: dict[str, str], loaded: Path) -> None:
    first = run_json(env, "train")
    assert first["decision"] == "promoted"
    assert first["metrics"]["roc_auc"] >= 0.85 and first["metrics"]["pr_auc"] >= 0.5

    # A threshold the model cannot reach: rejected, not registered, exit 3, check named.
    rejected = run(env, "train", code=3, extra_env={"FRAUDOPS_GATE__MIN_ROC_AUC": "0.999"})
    assert "roc_auc" in rejected.stdout + rejected.stderr

    # A much weaker model that passes lowered thresholds: registered, not promoted, exit 4.
    weak_env = {
        "FRAUDOPS_TRAINING__XGBOOST__N_ESTIMATORS": "2",
        "FRAUDOPS_TRAINING__XGBOOST__MAX_DEPTH": "1",
        "FRAUDOPS_GATE__MIN_ROC_AUC": "0.5",
        "FRAUDOPS_GATE__MIN_PR_AUC": "0.0",
    }
    second = run_json(env, "train", code=4, extra_env=weak_env)
    assert second["decision"] == "not_promoted"
    assert second["version"] and second["version"] != first["version"]

    versions = run_json(env, "models", "list")
    champion = [v for v in versions if "champion" in (v.get("aliases") or [])]
    assert [str(v["version"]) for v in champion] == [str(first["version"])]
    assert {str(v["version"]) for v in versions} == {str(first["version"]), str(second["version"])}

    events = run_json(
        env,
        "lake",
        "query",
        "SELECT version, event_type, reason FROM model_events ORDER BY event_time",
    )
    kinds = [e["event_type"] for e in events]
    assert "promoted" in kinds and "rejected" in kinds and "not_promoted" in kinds
    not_promoted = next(e for e in events if e["event_type"] == "not_promoted")
    assert str(not_promoted["version"]) == str(second["version"])
    assert "champion" in not_promoted["reason"]
    assert all(e["reason"] for e in events)

    runs = run_json(env, "pipeline", "runs")
    assert len(runs) >= 3

    # By hand: promote the weak one, then roll back to the first champion.
    run_json(env, "models", "promote", str(second["version"]), "--reason", "test")
    back = run_json(env, "models", "rollback", "--reason", "weak model")
    assert str(back.get("champion_after") or back.get("version")) == str(first["version"])
    shown = run_json(env, "models", "show", "champion")
    assert str(shown["version"]) == str(first["version"])
