"""`fraudops features export` of a raw set loaded in a lake equals an independent computation
of the same definitions (per-key pandas rolling windows; a brute force bit for bit)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fraudops.cli import app
from tests.feature_reference import (
    RAW_SPEC,
    brute_force,
    pandas_rolling,
    random_raw_frame,
    raw_spec,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A home whose fraudops.yaml declares the raw spec `raw` (the default) and a plain one."""
    plain = {**RAW_SPEC, "keys": [], "derived": []}
    config = {
        "home": str(tmp_path / "home"),
        "spec": "raw",
        "specs": {"raw": RAW_SPEC, "plain": plain},
    }
    (tmp_path / "fraudops.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(cli: CliRunner, *args: str) -> dict[str, object]:
    done = cli.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    parsed: dict[str, object] = json.loads(done.stdout)
    return parsed


def test_export_equals_the_pandas_reference(cli: CliRunner, tmp_path: Path) -> None:
    raw = random_raw_frame(600, seed=21)
    raw.to_parquet(tmp_path / "raw.parquet", index=False)
    run(cli, "lake", "init")
    assert run(cli, "lake", "load", str(tmp_path / "raw.parquet"))["rows"] == 600

    result = run(cli, "features", "export", "--out", str(tmp_path / "all.parquet"))
    spec = raw_spec("raw")
    assert result["rows"] == 600
    assert result["derived_features"] == [d.name for d in spec.derived]
    exported = pd.read_parquet(tmp_path / "all.parquet")
    assert list(exported.columns) == [
        "tx_id", "tx_time", "customer_id", "terminal_id", "amount",
        *[d.name for d in spec.derived], "is_fraud",
    ]  # fmt: skip
    assert exported["tx_time"].is_monotonic_increasing

    by_id = exported.set_index("tx_id")
    reference = raw.set_index("tx_id")
    exact = brute_force(raw, spec).set_axis(raw["tx_id"])
    rolled = pandas_rolling(raw, spec).set_axis(raw["tx_id"])
    for d in spec.derived:
        got = by_id.loc[reference.index, d.name].to_numpy(np.float64)
        assert np.array_equal(got, exact[d.name].to_numpy(np.float64)), d.name
        if d.name in rolled:
            np.testing.assert_allclose(got, rolled[d.name], rtol=1e-9, atol=1e-9, err_msg=d.name)
    assert (by_id.loc[reference.index, "is_fraud"].to_numpy() == reference["is_fraud"]).all()

    # A range reads the windows' history before it: its rows are the full export's, unchanged.
    start, end = "2024-03-20T00:00:00+00:00", "2024-03-30T00:00:00"
    for name in ("r.parquet", "r.csv"):
        out = str(tmp_path / name)
        run(cli, "features", "export", "--from", start, "--to", end, "--out", out)
    part = pd.read_parquet(tmp_path / "r.parquet")
    inside = exported[
        (exported["tx_time"] >= pd.Timestamp(start))
        & (exported["tx_time"] < pd.Timestamp(end, tz="UTC"))
    ].reset_index(drop=True)
    assert len(part) == len(inside) > 100
    pd.testing.assert_frame_equal(part, inside, check_exact=True)
    as_csv = pd.read_csv(tmp_path / "r.csv")  # text: to its printed precision
    assert list(as_csv.columns) == list(part.columns) and len(as_csv) == len(part)
    names = [d.name for d in spec.derived]
    np.testing.assert_allclose(
        as_csv[names].to_numpy(float), part[names].to_numpy(float), rtol=1e-12
    )


def test_export_refusals_name_the_problem(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "lake", "init", "--spec", "plain")
    done = cli.invoke(
        app, ["features", "export", "--spec", "plain", "--out", str(tmp_path / "x.csv")]
    )
    assert done.exit_code != 0
    assert "spec 'plain' declares no derived features" in done.output
    done = cli.invoke(app, ["features", "export", "--out", str(tmp_path / "x.json")])
    assert done.exit_code != 0 and "write a .parquet or a .csv file" in done.output
    done = cli.invoke(app, ["features", "export", "--from", "yesterday", "--out", "x.csv"])
    assert done.exit_code != 0 and "--from: 'yesterday' is not an ISO date" in done.output
    assert not (tmp_path / "x.csv").exists()
