"""Raw transactions end to end through the CLI: `data generate --raw`, `lake load --spec cards`,
`train --spec cards` passes the gate on derived features, and `score` of a raw file gives the
derived values of the offline engine (over the lake's history and the file's own earlier rows);
a malformed raw file is refused naming the column and row, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.features import derive_all
from fraudops.spec import CARDS

pytestmark = pytest.mark.integration

DERIVED = [d.name for d in CARDS.derived]
LOADED_DAYS = 50


def run(root: Path, *args: str, ok: bool = True) -> Any:
    done = CliRunner().invoke(app, [*args, "--json"], env={"FRAUDOPS_CONFIG": str(root / "c.yaml")})
    if ok:
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)
    assert done.exit_code != 0, done.output
    return " ".join(done.output.split())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """300 customers, 600 terminals, 60 days: the first 50 days loaded and trained on, the
    last 10 a new raw file."""
    root = tmp_path_factory.mktemp("rawtrain")
    config = {"home": str(root / "home"), "spec": "cards"}
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    sizes = ["--customers", "300", "--terminals", "600", "--days", "60", "--seed", "3"]
    run(root, "data", "generate", "--raw", *sizes, "--out", str(root / "raw.parquet"))
    raw = pd.read_parquet(root / "raw.parquet")
    cut = raw["tx_time"].min().normalize() + pd.Timedelta(days=LOADED_DAYS)
    head, tail = raw[raw["tx_time"] < cut], raw[raw["tx_time"] >= cut]
    head.to_parquet(root / "head.parquet", index=False)
    tail.to_parquet(root / "tail.parquet", index=False)
    run(root, "lake", "init")
    assert run(root, "lake", "load", str(root / "head.parquet"))["rows"] == len(head)
    trained = run(root, "train", "--spec", "cards")
    return {"root": root, "head": head, "tail": tail, "trained": trained}


def test_train_on_derived_features_passes_the_gate(world: dict[str, Any]) -> None:
    trained = world["trained"]
    assert trained["decision"] == "promoted", trained["reason"]
    assert trained["metrics"]["roc_auc"] >= 0.85
    assert trained["metrics"]["pr_auc"] >= 0.5
    assert "Deriving features" in trained["timings"]


def test_score_of_loaded_rows_equals_the_export(world: dict[str, Any]) -> None:
    root = world["root"]
    report = run(root, "score", "-i", str(root / "head.parquet"), "-o", str(root / "h.parquet"))
    assert report["columns"][:2] == ["tx_id", "customer_id"]
    assert report["columns"][2 : 2 + len(DERIVED)] == DERIVED
    run(root, "features", "export", "--out", str(root / "export.parquet"))
    scored = pd.read_parquet(root / "h.parquet").set_index("tx_id")
    exported = pd.read_parquet(root / "export.parquet").set_index("tx_id").loc[scored.index]
    assert len(scored) == len(world["head"])
    for name in DERIVED:  # exactly: the same engine over the same rows and labels
        assert np.array_equal(scored[name].to_numpy(), exported[name].to_numpy()), name
    assert scored["probability"].between(0, 1).all()


def test_score_of_a_new_raw_file_sees_the_lake_and_its_own_earlier_rows(
    world: dict[str, Any],
) -> None:
    root, head, tail = world["root"], world["head"], world["tail"]
    run(root, "score", "-i", str(root / "tail.parquet"), "-o", str(root / "t.csv"))
    scored = pd.read_csv(root / "t.csv", dtype={"tx_id": str}, float_precision="round_trip")
    assert scored["tx_id"].tolist() == tail["tx_id"].astype(str).tolist()  # file order
    # The reference: the offline engine over the loaded rows (labels known at their time)
    # then the new ones (labels not known yet), emitting the new ones.
    both = pd.concat([head, tail], ignore_index=True)
    known = both["tx_time"].where(np.r_[np.ones(len(head), bool), np.zeros(len(tail), bool)])
    expected = derive_all(both, CARDS, label_known_at=known).values
    for name in DERIVED:
        want = expected[name][len(head) :]
        assert np.array_equal(scored[name].to_numpy(), want), name  # bit for bit
    # The file's own earlier rows count: a card's first new row sees its loaded history, the
    # terminal risk reads only the loaded rows' labels.
    assert (scored["cust_nb_tx_30d"] > 1).mean() > 0.9
    first_tail_day = scored[pd.to_datetime(tail["tx_time"]).dt.day.to_numpy() == 20]
    assert (first_tail_day["term_risk_30d"] >= 0).all()


def test_a_malformed_raw_file_is_refused_naming_column_and_row(world: dict[str, Any]) -> None:
    root, tail = world["root"], world["tail"].head(50)
    out = root / "bad.csv"
    tail.drop(columns=["terminal_id"]).to_csv(root / "nokey.csv", index=False)
    message = run(root, "score", "-i", str(root / "nokey.csv"), "-o", str(out), ok=False)
    assert "terminal_id" in message and "missing" in message
    assert not out.exists()

    bad = tail.astype({"amount": object, "customer_id": object})
    bad.loc[bad.index[3], "amount"] = "twelve"
    bad.loc[bad.index[7], "customer_id"] = None
    bad.to_csv(root / "badvalues.csv", index=False)
    message = run(root, "score", "-i", str(root / "badvalues.csv"), "-o", str(out), ok=False)
    assert "'amount'" in message and "twelve" in message and "row 4" in message
    assert "'customer_id'" in message and "missing key value" in message and "row 8" in message
    assert "nothing was written" in message
    assert not out.exists()


def test_dask_scoring_of_a_derived_spec_is_refused(world: dict[str, Any]) -> None:
    root = world["root"]
    message = run(
        root,
        "score",
        "--engine",
        "dask",
        "-i",
        str(root / "tail.parquet"),
        "-o",
        str(root / "dask_out"),
        ok=False,
    )
    assert "derives features from history" in message and "--engine local" in message
