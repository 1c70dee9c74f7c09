"""A generated raw file goes into the lake through the CLI (the README's raw path)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from fraudops.cli import app as cli_app
from fraudops.config import load_settings
from fraudops.data.raw import RawConfig, generate_raw
from fraudops.lake import Lake
from fraudops.lake.schemas import TRANSACTIONS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_generate_raw_then_lake_load_with_spec_cards(
    home: Path, tmp_path: Path, suffix: str
) -> None:
    env = {"FRAUDOPS_HOME": str(home)}
    runner = CliRunner()
    path = tmp_path / f"cards.{suffix}"
    sizes = ["--customers", "120", "--terminals", "240", "--days", "21", "--seed", "5"]
    made = runner.invoke(
        cli_app, ["data", "generate", "--raw", *sizes, "--out", str(path), "--json"], env=env
    )
    assert made.exit_code == 0, made.output
    generated = json.loads(made.stdout)
    assert generated["spec"] == "cards" and path.exists()

    init = runner.invoke(cli_app, ["lake", "init", "--spec", "cards", "--json"], env=env)
    assert init.exit_code == 0, init.output
    loaded = runner.invoke(
        cli_app, ["lake", "load", str(path), "--spec", "cards", "--json"], env=env
    )
    assert loaded.exit_code == 0, loaded.output
    report = json.loads(loaded.stdout)
    assert report["rows"] == generated["rows"] > 1_000
    assert report["columns_ignored"] == ["fraud_scenario", "label_available_at"]
    assert report["fraud_rate"] == pytest.approx(generated["fraud_rate"], abs=1e-6)

    expected = generate_raw(RawConfig(customers=120, terminals=240, days=21, seed=5)).table
    with Lake.open(load_settings(home=home), "cards") as lake:
        stored = lake.read(TRANSACTIONS).sort_by("tx_id")
    for column in ("tx_id", "customer_id", "terminal_id", "amount", "is_fraud"):
        assert stored[column].to_pylist() == expected[column].to_pylist(), column
    assert stored["tx_time"].equals(expected["tx_time"])
    assert not {"is_weekend", "cust_nb_tx_1d", "term_risk_7d"} & set(stored.column_names)

    # Loading the same file again is refused by its ids: nothing is written twice.
    again = runner.invoke(cli_app, ["lake", "load", str(path), "--spec", "cards"], env=env)
    assert again.exit_code != 0 and "already in" in " ".join(again.output.split())
    with Lake.open(load_settings(home=home), "cards") as lake:
        assert lake.count(TRANSACTIONS) == generated["rows"]
        assert pc.sum(lake.read(TRANSACTIONS, columns=["is_fraud"])["is_fraud"]).as_py() > 0
