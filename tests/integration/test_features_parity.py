"""Training-serving parity of derived features, over both online stores.

Served traffic of the built-in spec `cards` is replayed through the real app: several cards and
terminals, out-of-order arrivals, labels posted late through POST /v1/labels, and a restart in
the middle (a new app, its store warmed from the lake). Then every logged row's derived features
must equal the offline engine's (features.offline over the lake's history with the label events
of the labels table), exactly; and the skew check finds no difference. A burst of concurrent
requests (computed by the store as one batch) must give the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from fraudops.config import Settings, load_settings
from fraudops.features.offline import derive
from fraudops.features.served import derive_as_served, logged, read_history
from fraudops.inference_log.writer import SpoolWriter
from fraudops.lake import Lake, load_file
from fraudops.monitoring.skew import check_skew
from fraudops.registry import LoadedModel
from fraudops.runtime import Runtime
from fraudops.scoring import Scorer
from fraudops.serving.app import FraudopsASGI, create_app
from fraudops.training.trainers import train_logreg
from tests.services import REDIS_HOST, REDIS_PORT, require_redis

pytestmark = pytest.mark.integration

SPEC = "cards"
START = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
CUSTOMERS = [f"C{i}" for i in range(4)]
TERMINALS = [f"T{i}" for i in range(3)]


class Clock:
    """The simulated now of the app (request times, the labels' now)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _settings(home: Any, store: str) -> Settings:
    settings = load_settings(home=home)
    features = settings.features.model_copy(
        update={
            "online_store": store,
            "redis_url": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "redis_prefix": f"rawserve-test-{uuid.uuid4().hex[:8]}",
        }
    )
    serving = settings.serving.model_copy(update={"reload_interval_s": 3600.0})
    return settings.model_copy(update={"features": features, "serving": serving})


def _history(path: Any, rng: random.Random) -> None:
    """Ten days of loaded transactions, labelled (known at their own time)."""
    rows = []
    for i in range(60):
        t = START + dt.timedelta(hours=4 * i, minutes=rng.randrange(60))
        rows.append(
            {
                "tx_id": f"h{i:03d}",
                "tx_time": t,
                "customer_id": rng.choice(CUSTOMERS),
                "terminal_id": rng.choice(TERMINALS),
                "amount": round(rng.uniform(1, 300), 2),
                "is_fraud": int(rng.random() < 0.3),
            }
        )
    pd.DataFrame(rows).to_parquet(path)


def _traffic(rng: random.Random, first: int, start: dt.datetime, n: int) -> list[dict[str, Any]]:
    """``n`` raw transactions every ~90 min from ``start``; one in five arrives late (swapped
    with the next), one in four without an id (the inference id stands in)."""
    bodies = []
    for i in range(n):
        t = start + dt.timedelta(minutes=90 * i + rng.randrange(30), microseconds=rng.randrange(99))
        body: dict[str, Any] = {
            "tx_time": t.isoformat(),
            "customer_id": rng.choice(CUSTOMERS),
            "terminal_id": rng.choice(TERMINALS),
            "amount": round(rng.uniform(1, 500), 2),
        }
        if rng.random() > 0.25:
            body["transaction_id"] = f"s{first + i:04d}"
        bodies.append(body)
    for i in range(0, n - 1, 5):
        bodies[i], bodies[i + 1] = bodies[i + 1], bodies[i]
    return bodies


def _model(settings: Settings) -> Scorer:
    names = settings.feature_spec(SPEC).feature_names
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(names)))
    model = train_logreg(
        X,
        (X[:, 0] > 0.5).astype(int),
        params=settings.training.logreg.model_copy(update={"smote": False}),
        seed=0,
        feature_names=names,
        spec_name=SPEC,
    ).with_threshold(0.5)
    loaded = LoadedModel(model, model.manifest, "fraudops-cards", "1", None, "")
    return Scorer(loaded, settings.serving.risk_tiers)


@pytest.fixture(params=["memory", "redis"])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Settings]:
    if request.param == "redis":
        require_redis()
    settings = _settings(tmp_path / "home", request.param)
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        path = tmp_path / "history.parquet"
        _history(path, random.Random(5))
        load_file(lake, path)
    yield settings
    if request.param == "redis":  # this run's keys: nothing left behind in Redis
        import redis

        client = redis.Redis.from_url(settings.features.redis_url or "")
        for key in client.scan_iter(match=f"{settings.features.redis_prefix}:*", count=1_000):
            client.unlink(key)
        client.close()


def _start(settings: Settings, clock: Clock) -> FraudopsASGI:
    app = create_app(Runtime(settings, SPEC), clock=clock)
    app.state.start()
    app.state.holder.current = _model(settings)  # no registry here: a model of the spec's inputs
    return app


def _drain(settings: Settings, app: FraudopsASGI) -> None:
    app.state.rotate_log()
    writer = SpoolWriter(settings, SPEC, open_lake=Runtime(settings, SPEC).lake_factory())
    try:
        writer.drain()
    finally:
        writer.close()


async def _send(app: FraudopsASGI, path: str, body: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fraudops") as client:
        return await client.post(path, json=body)


def _serve(
    settings: Settings,
    app: FraudopsASGI,
    clock: Clock,
    bodies: list[dict[str, Any]],
    label: Callable[[str], int],
) -> list[str]:
    """Serve ``bodies`` one by one (clock just past the latest time), posting the labels of
    the transactions served so far after every 20 (late: confirmed then)."""
    served: list[str] = []
    for i, body in enumerate(bodies, 1):
        t = dt.datetime.fromisoformat(body["tx_time"])
        # Request times strictly increase: they give the order the transactions arrived in.
        clock.now = max(clock.now + dt.timedelta(milliseconds=2), t + dt.timedelta(seconds=1))
        answer = asyncio.run(_send(app, "/v1/predict", body))
        assert answer.status_code == 200, answer.text
        served.append(answer.json()["results"][0]["transaction_id"])
        if i % 20 == 0:
            _drain(settings, app)
            events = [
                {"transaction_id": tx, "label": label(tx), "confirmed_at": clock.now.isoformat()}
                for tx in served[-20:-5]
            ]
            answer = asyncio.run(_send(app, "/v1/labels", events))
            assert answer.status_code == 200, answer.text
            assert answer.json()["written"] == len(events)
    return served


def test_logged_online_features_equal_the_offline_computation(world: Settings) -> None:
    settings, rng = world, random.Random(11)
    spec = settings.feature_spec(SPEC)
    clock = Clock(START + dt.timedelta(days=10))
    label = lambda tx: int(hash(tx) % 3 == 0)  # noqa: E731 - any fixed truth will do

    # A refused request changes nothing: 422 naming the field, nothing recorded or logged.
    app = _start(settings, clock)
    bad = {"tx_time": clock.now.isoformat(), "customer_id": "C0", "amount": 5.0}
    answer = asyncio.run(_send(app, "/v1/predict", bad))
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", "terminal_id"]]
    assert app.state.online is not None
    before = app.state.online.stored_events()

    first = _traffic(rng, 0, START + dt.timedelta(days=10), 60)
    served = _serve(settings, app, clock, first, label)
    assert app.state.online.stored_events() > before
    _drain(settings, app)
    if settings.features.online_store == "redis":
        app.state.online.clear()  # the restart finds an empty Redis: all from the lake
    app.state.stop()

    # The restart: a new app, its store warmed from the lake's transactions and predictions.
    app = _start(settings, clock)
    second = _traffic(rng, 100, clock.now - dt.timedelta(minutes=20), 60)
    served += _serve(settings, app, clock, second, label)
    _drain(settings, app)
    app.state.stop()

    with Lake.open(settings, SPEC) as lake:
        history = read_history(lake, spec)
    frame, id_col = history.frame, spec.id_column
    assert sorted(frame.loc[history.served, id_col]) == sorted(served)
    assert len(history.label_events) > 60 + 40  # loaded labels and the posted ones
    offline = derive_as_served(history)
    # The rows an earlier transaction arriving later changed: the plain point-in-time
    # computation sees it, the server could not (the out-of-order arrivals did happen).
    hindsight = derive(
        frame, history.id_spec, emit=history.served, label_events=history.label_events
    )
    assert (hindsight["cust_nb_tx_1d"] != offline["cust_nb_tx_1d"]).sum() > 0
    rows = frame[history.served]
    assert len(rows) == 120
    for d in spec.derived:
        online = rows[logged(d.name)].to_numpy(dtype=np.float64)
        expected = offline[d.name].to_numpy(dtype=np.float64)
        mismatch = np.flatnonzero(online != expected)
        assert mismatch.size == 0, (
            f"{d.name}: {mismatch.size} rows differ, e.g. online {online[mismatch[:3]]} "
            f"offline {expected[mismatch[:3]]} for {rows[id_col].iloc[mismatch[:3]].tolist()}"
        )
    # The monitoring run's skew check recomputes the same way: no skew, every row checked.
    with Lake.open(settings, SPEC) as lake:
        skew = check_skew(
            lake, spec, start=START, end=clock.now + dt.timedelta(seconds=1), alert_share=0.0
        )
    assert skew.rows == 120 and skew.share == 0.0 and not skew.alert
    assert set(skew.per_feature) == {d.name for d in spec.derived}
    # The windows did reach labels and history: not a parity of zeros.
    assert (offline["term_risk_7d"] > 0).any() and (offline["cust_nb_tx_30d"] > 5).any()


class TickingClock(Clock):
    """Each call a millisecond later: a burst's request times give the order it was read in."""

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


def test_a_concurrent_burst_is_computed_as_one_batch_equal_to_the_offline_computation(
    world: Settings,
) -> None:
    """Raw requests in flight together are computed and recorded by one store call, scored as
    one batch; each still gets exactly what the offline computation gives it in arrival order,
    an explained one its reason codes, a refused one a 422 and no trace."""
    settings = world
    spec = settings.feature_spec(SPEC)
    start = START + dt.timedelta(days=10)
    clock = TickingClock(start + dt.timedelta(days=2))
    bodies = sorted(_traffic(random.Random(3), 0, start, 24), key=lambda b: b["tx_time"])
    for i, body in enumerate(bodies):
        body["transaction_id"] = f"b{i:03d}"
        body["customer_id"] = CUSTOMERS[i % 2]  # a few keys: the burst's rows see each other
    refused = {**bodies[5], "transaction_id": "bad", "amount": "much"}
    app = _start(settings, clock)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fraudops") as client:
            paths = ["/v1/predict?explain=true" if i == 11 else "/v1/predict" for i in range(24)]
            posts = [client.post(p, json=body) for p, body in zip(paths, bodies, strict=True)]
            posts.insert(7, client.post("/v1/predict", json=refused))
            return await asyncio.gather(*posts)

    answers = asyncio.run(burst())
    assert answers[7].status_code == 422
    assert [d["loc"] for d in answers[7].json()["detail"]] == [["body", "amount"]]
    answers = answers[:7] + answers[8:]
    assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers]
    assert [a.json()["results"][0]["transaction_id"] for a in answers] == [
        b["transaction_id"] for b in bodies
    ]
    assert answers[11].json()["results"][0]["reason_codes"]
    registry = app.state.metrics.registry
    batches = registry.get_sample_value("fraudops_batch_rows_count")
    assert batches is not None and batches < len(bodies) - 4  # scored in bursts, not one by one
    _drain(settings, app)
    app.state.stop()

    with Lake.open(settings, SPEC) as lake:
        history = read_history(lake, spec)
    rows = history.frame[history.served]
    assert sorted(rows[spec.id_column]) == sorted(b["transaction_id"] for b in bodies)
    offline = derive_as_served(history)
    for d in spec.derived:
        online = rows[logged(d.name)].to_numpy(dtype=np.float64)
        expected = offline[d.name].to_numpy(dtype=np.float64)
        assert np.array_equal(online, expected), (d.name, online, expected)
    assert (offline["cust_nb_tx_1d"] > 3).any()  # the burst's rows did see each other


def test_a_key_idle_past_its_ttl_reads_as_new_online_and_offline(world: Settings) -> None:
    """features.key_ttl_s bounds a key's history on both sides: a previous transaction older
    than it counts as none (time_since_last -1) whether or not the store still holds it (the
    memory store forgets it, Redis by the wall clock has not yet); exactly the ttl still
    counts. Set to the shortest the spec allows (its longest window + delay)."""
    ttl = dt.timedelta(days=37)  # cards: term_nb_tx_30d, window 30d + delay 7d
    settings = world.model_copy(
        update={"features": world.features.model_copy(update={"key_ttl_s": ttl.total_seconds()})}
    )
    spec = settings.feature_spec(SPEC)
    assert spec.key_ttl_s == ttl.total_seconds()
    t1 = START + dt.timedelta(days=10, hours=1, microseconds=7)
    plan = [  # (customer, time, expected time since last or None: the offline value only)
        ("E0", t1, -1.0),
        ("E1", t1 + dt.timedelta(minutes=1), -1.0),
        ("C0", t1 + dt.timedelta(minutes=2), None),  # seen in the loaded history
        ("C9", t1 + dt.timedelta(minutes=3), -1.0),
        ("C9", t1 + dt.timedelta(days=36), 36 * 86_400.0 - 180),
        ("E0", t1 + ttl, ttl.total_seconds()),  # exactly the ttl: still counts
        ("E1", t1 + dt.timedelta(minutes=1) + ttl + dt.timedelta(microseconds=1), -1.0),
        ("C0", t1 + dt.timedelta(days=38), -1.0),  # idle past the ttl
        ("C0", t1 + dt.timedelta(days=38, minutes=5), 300.0),  # new again from there
        ("C8", t1 + dt.timedelta(days=48), -1.0),  # 12 days on: the memory store sweeps
        ("C1", t1 + dt.timedelta(days=48, minutes=1), -1.0),  # forgotten there (C2, C3 too)
    ]
    bodies = [
        {
            "tx_time": t.isoformat(),
            "customer_id": customer,
            "terminal_id": TERMINALS[i % len(TERMINALS)],
            "amount": 10.0 + i,
            "transaction_id": f"k{i:03d}",
        }
        for i, (customer, t, _) in enumerate(plan)
    ]
    clock = Clock(t1)
    app = _start(settings, clock)
    assert app.state.online is not None and app.state.online.key_ttl_s == ttl.total_seconds()
    _serve(settings, app, clock, bodies, lambda tx: 0)
    if settings.features.online_store == "memory":  # forgotten (ttl + late_s), not just masked
        assert app.state.online.held().keys == 11 - 2  # C2 and C3 gone of T0-2, C0-3, C8-9, E0-1
    _drain(settings, app)
    app.state.stop()

    with Lake.open(settings, SPEC) as lake:
        history = read_history(lake, spec)
    rows = history.frame[history.served].set_index(spec.id_column)
    offline = derive_as_served(history)
    offline.index = history.frame.loc[offline.index, spec.id_column]
    for d in spec.derived:
        online = rows[logged(d.name)].to_numpy(dtype=np.float64)
        expected = offline.loc[rows.index, d.name].to_numpy(dtype=np.float64)
        assert np.array_equal(online, expected), (d.name, online, expected)
    since = offline["cust_secs_since_last"]
    for i, (_, _, want) in enumerate(plan):
        if want is not None:
            assert since[f"k{i:03d}"] == want, (i, since[f"k{i:03d}"], want)
    assert since["k002"] > 0  # C0's loaded history, within the ttl
    with Lake.open(settings, SPEC) as lake:
        skew = check_skew(
            lake, spec, start=START, end=clock.now + dt.timedelta(seconds=1), alert_share=0.0
        )
    assert skew.rows == len(plan) and skew.share == 0.0 and not skew.alert
