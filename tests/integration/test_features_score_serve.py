"""The same raw file scored by `fraudops score` and served by the real app, in time order, gives
equal derived features and probabilities row for row — over both online stores.

The world: `data generate --raw` as test_training_raw.py makes it, the first 50 days loaded and
`cards` trained on them through the CLI (it passes the gate); the next two days are the new raw
file. The
CLI scores it (the lake's history plus the file's own earlier rows); then the same rows, sorted
by (time, id) as they happened, are posted one by one to ``create_app`` over a ``Runtime`` of
the same home (its champion from the registry, its online store warmed from the lake), the
clock just past each transaction's time. No label is posted in between, so both sides know the
same labels: the loaded rows' (known at their own time), none of the new rows'.

The served features are read back from what the server logged (``predictions``, drained into
the lake), the probabilities from the responses. Both stores are served before anything is
drained: each warms from the lake's transactions alone, not from the other's served rows.
Last, a monitoring run over the served window finds no training-serving skew, and alerts on it
once a logged value is changed in the lake.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from pyiceberg.expressions import In
from typer.testing import CliRunner

from fraudops.cli import app as cli
from fraudops.config import Settings, load_settings
from fraudops.inference_log.writer import SpoolWriter
from fraudops.lake import Lake
from fraudops.lake.rewrite import rewrite_rows
from fraudops.lake.schemas import ALERTS
from fraudops.runtime import Runtime
from fraudops.serving.app import create_app
from fraudops.spec import CARDS
from tests.services import REDIS_HOST, REDIS_PORT, require_redis

pytestmark = pytest.mark.integration

DERIVED = [d.name for d in CARDS.derived]
LOADED_DAYS = 50
NEW_DAYS = 2


class Clock:
    """The app's now: set just past each transaction's time before it is sent."""

    def __init__(self) -> None:
        self.now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def run(root: Path, *args: str) -> Any:
    done = CliRunner().invoke(cli, [*args, "--json"], env={"FRAUDOPS_CONFIG": str(root / "c.yaml")})
    failure = "".join(traceback.format_exception(*done.exc_info)) if done.exc_info else ""
    assert done.exit_code == 0, done.output + failure  # an exception's traceback, not its repr
    return json.loads(done.stdout)


def _settings(root: Path, store: str) -> Settings:
    settings = load_settings(root / "c.yaml")
    features = settings.features.model_copy(
        update={
            "online_store": store,
            "redis_url": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "redis_prefix": f"scoreserve-test-{uuid.uuid4().hex[:8]}",
        }
    )
    serving = settings.serving.model_copy(update={"reload_interval_s": 3600.0})
    return settings.model_copy(update={"features": features, "serving": serving})


async def _serve_all(
    root: Path, store: str, bodies: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], float]:
    """Each body posted alone, in order, to a fresh app on ``store``: the results, and the
    decision threshold of the version that answered."""
    clock = Clock()
    server = create_app(Runtime(_settings(root, store), "cards"), clock=clock)
    server.state.start()
    try:
        scorer = server.state.holder.current
        assert scorer is not None, server.state.holder.last_error
        transport = httpx.ASGITransport(app=server)
        results = []
        async with httpx.AsyncClient(transport=transport, base_url="http://fraudops") as client:
            for body in bodies:
                t = dt.datetime.fromisoformat(body["tx_time"])
                # Request times strictly increase: the order the transactions arrived in.
                clock.now = max(
                    clock.now + dt.timedelta(microseconds=10), t + dt.timedelta(seconds=1)
                )
                answer = await client.post("/v1/predict", json=body)
                assert answer.status_code == 200, answer.text
                results.append(answer.json()["results"][0])
        server.state.rotate_log()
        return results, scorer.threshold
    finally:
        if store == "redis" and server.state.online is not None:
            server.state.online.clear()  # this run's prefix: nothing left behind in Redis
        server.state.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("scoreserve")
    config = {"home": str(root / "home"), "spec": "cards"}
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    sizes = ["--customers", "300", "--terminals", "600", "--days", "60", "--seed", "3"]
    run(root, "data", "generate", "--raw", *sizes, "--out", str(root / "raw.parquet"))
    raw = pd.read_parquet(root / "raw.parquet")
    cut = raw["tx_time"].min().normalize() + pd.Timedelta(days=LOADED_DAYS)
    end = cut + pd.Timedelta(days=NEW_DAYS)
    head = raw[raw["tx_time"] < cut]
    tail = raw[(raw["tx_time"] >= cut) & (raw["tx_time"] < end)]
    head.to_parquet(root / "head.parquet", index=False)
    tail.to_parquet(root / "tail.parquet", index=False)
    run(root, "lake", "init")
    run(root, "lake", "load", str(root / "head.parquet"))
    trained = run(root, "train", "--spec", "cards")
    assert trained["decision"] == "promoted", trained["reason"]

    run(root, "score", "-i", str(root / "tail.parquet"), "-o", str(root / "scored.parquet"))
    scored = pd.read_parquet(root / "scored.parquet").set_index("tx_id")

    # As they happened: by time, one card's same-time transactions in id order.
    ordered = tail.sort_values(["tx_time", "tx_id"], kind="stable")
    bodies = [
        {
            "transaction_id": row.tx_id,
            "tx_time": row.tx_time.isoformat(),
            "customer_id": row.customer_id,
            "terminal_id": row.terminal_id,
            "amount": row.amount,  # a float64 in JSON and back: the same double
        }
        for row in ordered.itertuples()
    ]
    require_redis()
    stores = ["memory", "redis"]
    answers = {store: asyncio.run(_serve_all(root, store, bodies)) for store in stores}

    settings = load_settings(root / "c.yaml")
    writer = SpoolWriter(settings, "cards", open_lake=Runtime(settings, "cards").lake_factory())
    try:
        writer.drain()
    finally:
        writer.close()
    with Lake.open(settings, "cards") as lake:
        logged_rows = lake.read_frame("predictions", ["inference_id", *CARDS.feature_names])
    assert len(logged_rows) == len(stores) * len(tail)
    return {
        "root": root,
        "tail": tail,
        "scored": scored,
        "ordered": ordered,
        "answers": answers,
        "logged": logged_rows.set_index("inference_id"),
    }


def test_a_trained_cards_model_serves_the_raw_file(world: dict[str, Any]) -> None:
    scored, tail = world["scored"], world["tail"]
    assert len(scored) == len(world["ordered"]) == len(tail) > 500
    assert sorted(scored.index) == sorted(tail["tx_id"])
    # Not a comparison of constants: the windows reached history, the model tells rows apart.
    assert (scored["cust_nb_tx_30d"] > 5).mean() > 0.5
    assert (scored["term_risk_30d"] > 0).any()
    assert scored["probability"].std() > 0.01


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_served_features_and_probabilities_equal_the_scored_ones(
    world: dict[str, Any], store: str
) -> None:
    (answers, threshold), ordered = world["answers"][store], world["ordered"]
    served_ids = [a["transaction_id"] for a in answers]
    assert served_ids == ordered["tx_id"].tolist()
    scored = world["scored"].loc[served_ids]
    logged_rows = world["logged"].loc[[a["inference_id"] for a in answers]]
    for name in DERIVED:  # exactly: the online store and the offline engine agree to the bit
        online = logged_rows[name].to_numpy(dtype=np.float64)
        offline = scored[name].to_numpy(dtype=np.float64)
        differ = np.flatnonzero(online != offline)
        assert differ.size == 0, (
            f"{store} {name}: {differ.size} rows differ, e.g. served {online[differ[:3]]} "
            f"scored {offline[differ[:3]]} for {[served_ids[i] for i in differ[:3]]}"
        )
    # The plain feature too, as the model saw it.
    assert np.array_equal(
        logged_rows["amount"].to_numpy(np.float64), ordered["amount"].to_numpy(np.float64)
    )
    # The same model on the same rows, by two predictors: the CLI's chunks go through XGBoost's
    # own (inplace_predict), the server's single rows through the flat forest (scoring.py:
    # no per-call overhead), which adds the same float32 leaves in another order. So equal to
    # float32 rounding of the margin, not to the bit (measured: at most ~1.1e-7).
    served = np.array([a["probability"] for a in answers], dtype=np.float64)
    batch = scored["probability"].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(served, batch, rtol=1e-5, atol=1e-6)
    # The decisions agree wherever the rounding cannot cross the threshold.
    decided = np.array([a["prediction"] for a in answers])
    clear = np.abs(batch - threshold) > 1e-6
    assert clear.mean() > 0.99
    assert np.array_equal(decided[clear], scored["prediction"].to_numpy()[clear])


def test_a_skewed_window_sends_a_skew_alert_naming_the_feature_and_share(
    world: dict[str, Any],
) -> None:
    """Last in the module: it changes logged values in the lake. Served as computed, the
    monitoring run finds no skew; with one feature's logged value changed on 30 transactions,
    it alerts through the configured channel (the log) naming that feature and its share."""
    root, ordered = world["root"], world["ordered"]
    now = (ordered["tx_time"].max() + pd.Timedelta(hours=1)).isoformat()
    monitor = ["monitor", "run", "--now", now, "--no-html", "--no-retrain"]
    # The first run with Evidently's reports: their reference is the lake's raw transactions
    # with the derived features computed (the table itself holds no feature column).
    first = run(root, *monitor[:-2], "--html", "--no-retrain")
    assert Path(first["reports"]["data_drift"]).stat().st_size > 10_000
    clean = first["skew"]
    assert clean["rows"] == len(ordered) and clean["share"] == 0.0
    assert not clean["alert"] and clean["sent"] is None

    tampered = set(ordered["tx_id"].iloc[100:130])  # both stores' records of these transactions
    settings = load_settings(root / "c.yaml")

    def off_by_one(rows: pa.Table) -> pa.Table:
        column = rows.schema.get_field_index("cust_nb_tx_1d")
        changed = pc.add(rows.column(column), 1.0).cast(rows.schema.field(column).type)
        return rows.set_column(column, rows.schema.field(column), changed)

    with Lake.open(settings, "cards") as lake:
        written = rewrite_rows(lake, "predictions", In("transaction_id", tampered), off_by_one)
    assert written.num_rows == 2 * len(tampered)

    skew = run(root, *monitor)["skew"]
    share = len(tampered) / len(ordered)
    assert skew["rows"] == len(ordered) and skew["share"] == pytest.approx(share)
    assert skew["per_feature"]["cust_nb_tx_1d"] == pytest.approx(share)
    assert {f for f, s in skew["per_feature"].items() if s > 0} == {"cust_nb_tx_1d"}
    sent = skew["sent"]
    assert sent["status"] == "sent" and sent["severity"] == "warning"
    assert [(d["channel"], d["delivered"]) for d in sent["deliveries"]] == [("log", True)]
    assert f"cust_nb_tx_1d {share:.1%}" in sent["subject"]
    assert f"{share:.1%} of {len(ordered)} served rows differ" in sent["subject"]
    with Lake.open(settings, "cards") as lake:
        recorded = lake.read_frame(ALERTS, ["alert_id", "body"])
    bodies = recorded.loc[recorded["alert_id"] == sent["alert_id"], "body"].tolist()
    assert len(bodies) == 1 and f"- cust_nb_tx_1d: {share:.1%}" in bodies[0]
