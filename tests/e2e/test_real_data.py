"""The real ULB credit-card set through `lake load --spec ulb` and `train --spec ulb`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from tests.conftest import SHARED_DATA

CREDITCARD = SHARED_DATA / "creditcard.parquet"


@pytest.mark.skipif(not CREDITCARD.is_file(), reason=f"real data set absent: {CREDITCARD}")
def test_ulb_time_ordered_holdout_meets_the_bar(tmp_path: Path) -> None:
    env = {
        "FRAUDOPS_HOME": str(tmp_path / "home"),
        "GIT_PYTHON_REFRESH": "quiet",
        "MPLBACKEND": "Agg",
    }
    runner = CliRunner()
    # `lake load` needs the tables: only `lake init` creates them.
    initialised = runner.invoke(app, ["lake", "init", "--spec", "ulb"], env=env)
    assert initialised.exit_code == 0, initialised.stderr
    loaded = runner.invoke(
        app, ["lake", "load", str(CREDITCARD), "--spec", "ulb", "--json"], env=env
    )
    assert loaded.exit_code == 0, loaded.stderr
    assert json.loads(loaded.stdout)["rows"] == 284_807

    trained = runner.invoke(app, ["train", "--spec", "ulb", "--json"], env=env)
    assert trained.exit_code == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["decision"] == "promoted"
    assert result["metrics"]["roc_auc"] >= 0.97
    assert result["metrics"]["pr_auc"] >= 0.78
    # The holdout is the latest 20% in time: ~57K rows with ~75-100 frauds.
    assert 50_000 < result["metrics"]["n"] < 60_000
