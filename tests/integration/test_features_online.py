"""The online stores' behaviour, one suite over both: every value a store computes on a random
stream (several keys, same-time rows, out-of-order arrivals, late and corrected labels, a
restart warmed from the recorded history) equals, to the bit, a brute-force reference written
here from derived.py's semantics; the state stays bounded on a long stream.

The Redis store is driven through two handles on one prefix, taking turns, as two workers of
one server would.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from fraudops.features.online import OnlineStore
from fraudops.features.online_memory import MemoryStore
from fraudops.features.raw_request import RawTransaction
from fraudops.spec import FeatureSpec
from tests.services import REDIS_HOST, REDIS_PORT, require_redis

LATE_S = 1200.0
US = 1_000_000
BASE = dt.datetime(2026, 3, 6, 20, 0, tzinfo=dt.UTC)  # a Friday evening: nights and a weekend

# (name, by, window s, delay s, agg, of) - the reference below reads these, not the spec.
WINDOWS: list[tuple[str, str, int, int, str, str | None]] = [
    ("cust_nb_1h", "customer_id", 3600, 0, "count", None),
    ("cust_sum_2h", "customer_id", 7200, 0, "sum", "amount"),
    ("cust_avg_2h", "customer_id", 7200, 0, "mean", "amount"),
    ("cust_std_2h", "customer_id", 7200, 0, "std", "amount"),
    ("cust_min_1h", "customer_id", 3600, 0, "min", "amount"),
    ("cust_max_1h", "customer_id", 3600, 0, "max", "amount"),
    ("cust_since", "customer_id", 0, 0, "time_since_last", None),
    ("term_nb_1h_d30m", "terminal_id", 3600, 1800, "count", None),
    ("term_avg_1h_d30m", "terminal_id", 3600, 1800, "mean", "amount"),
    ("term_risk_1h_d30m", "terminal_id", 3600, 1800, "fraud_rate", None),
    ("term_since", "terminal_id", 0, 0, "time_since_last", None),
]
CALENDAR = [("hour", "hour"), ("dow", "day_of_week"), ("weekend", "weekend"), ("night", "night")]


def _spec() -> FeatureSpec:
    derived: list[dict[str, Any]] = [{"name": n, "calendar": c} for n, c in CALENDAR]
    for name, by, window, delay, agg, of in WINDOWS:
        entry: dict[str, Any] = {"name": name, "by": by, "agg": agg}
        if window:
            entry["window"] = f"{window}s"
        if delay:
            entry["delay"] = f"{delay}s"
        if of:
            entry["of"] = of
        derived.append(entry)
    return FeatureSpec.model_validate(
        {
            "name": "rawtest",
            "id_column": "tx_id",
            "timestamp_column": "tx_time",
            "label_column": "is_fraud",
            "amount_column": "amount",
            "keys": ["customer_id", "terminal_id"],
            "features": [{"name": "amount", "min": 0}],
            "derived": derived,
        }
    )


SPEC = _spec()


@dataclass(frozen=True)
class Row:
    t: int  # µs since the epoch
    id: str
    customer_id: str
    terminal_id: str
    amount: float

    def raw(self) -> RawTransaction:
        return RawTransaction(
            time_us=self.t,
            keys={"customer_id": self.customer_id, "terminal_id": self.terminal_id},
            values={"amount": self.amount},
            transaction_id=self.id,
        )


@dataclass(frozen=True)
class Label:
    id: str
    fraud: bool
    confirmed: int  # µs
    with_keys: bool


Op = Row | Label | str  # "restart"


def _stream(seed: int, n: int, hours: float) -> list[Op]:
    rng = random.Random(seed)
    base = int(BASE.timestamp()) * US
    rows: list[Row] = []
    for i in range(n):
        if rows and rng.random() < 0.06:  # a same-time row of a key seen before
            twin = rng.choice(rows)
            t, cust = twin.t, twin.customer_id
        else:
            t = base + rng.randrange(int(hours * 360)) * 10 * US
            cust = f"c{rng.randrange(4)}"
        amount = round(rng.lognormvariate(3, 1.5), 2) if rng.random() < 0.9 else 1e6 + rng.random()
        rows.append(Row(t, f"t{rng.randrange(10**6)}-{i}", cust, f"m{rng.randrange(3)}", amount))
    timed: list[tuple[int, float, Op]] = []
    for row in rows:
        late = 0 if rng.random() < 0.85 else rng.randrange(15 * 60 * US)  # out of order
        timed.append((row.t + late, rng.random(), row))
        if rng.random() < 0.4:
            fraud = rng.random() < 0.3
            # half confirmed at the very time of a later row whose fraud_rate window holds it
            later = [
                r.t
                for r in rows
                if r.terminal_id == row.terminal_id and 1800 * US <= r.t - row.t < 5400 * US
            ]
            if later and rng.random() < 0.5:
                confirmed = rng.choice(later)
            else:
                confirmed = row.t + rng.randrange(5 * 60 * US, 3 * 3600 * US)
            for _ in range(2 if rng.random() < 0.1 else 1):  # sometimes corrected later
                delivered = confirmed + (0 if rng.random() < 0.7 else rng.randrange(1800 * US))
                timed.append(
                    (delivered, rng.random(), Label(row.id, fraud, confirmed, rng.random() < 0.5))
                )
                # a correction, at times confirmed at the same instant (the last one counts)
                confirmed += 0 if rng.random() < 0.3 else rng.randrange(60 * US, 7200 * US)
                fraud = not fraud
    timed.sort(key=lambda x: (x[0], x[1]))
    ops: list[Op] = [op for _, _, op in timed]
    ops.insert(len(ops) // 2, "restart")
    return ops


# ---- the reference: a plain loop over every recorded row, per query -------------------------


def _fraud_known(events: list[tuple[int, bool]], t: int) -> bool:
    known = [(c, i, f) for i, (c, f) in enumerate(events) if c <= t]
    return bool(known) and max(known)[2]


def _reference(
    q: Row, rows: list[Row], labels: dict[str, list[tuple[int, bool]]]
) -> dict[str, float]:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=q.t)
    out: dict[str, float] = {
        "hour": float(when.hour),
        "dow": float(when.weekday()),
        "weekend": float(when.weekday() >= 5),
        "night": float(when.hour < 7),
    }
    seen = {
        by: [
            r
            for r in rows
            if getattr(r, by) == getattr(q, by) and r.id != q.id and (r.t, r.id) < (q.t, q.id)
        ]
        for by in ("customer_id", "terminal_id")
    }
    for name, by, window, delay, agg, _ in WINDOWS:
        before = seen[by]
        if agg == "time_since_last":
            out[name] = (q.t - max(before, key=lambda r: (r.t, r.id)).t) / US if before else -1.0
            continue
        hi = q.t - delay * US
        lo = hi - window * US
        win = sorted(
            [r for r in before if lo < r.t <= hi] + ([q] if delay == 0 else []),
            key=lambda r: (r.t, r.id),
        )
        xs = [r.amount for r in win]
        n = len(xs)
        if agg == "count":
            out[name] = float(n)
        elif agg == "fraud_rate":
            frauds = sum(_fraud_known(labels.get(r.id, []), q.t) for r in win)
            out[name] = frauds / n if n else 0.0
        elif n == 0:
            out[name] = 0.0
        elif agg in ("min", "max"):
            out[name] = min(xs) if agg == "min" else max(xs)
        else:
            total = 0.0
            for x in xs:
                total = total + x
            mean = total / n
            if agg == "sum":
                out[name] = total
            elif agg == "mean":
                out[name] = mean
            else:
                acc = 0.0
                for x in xs:
                    acc = acc + (x - mean) * (x - mean)
                out[name] = math.sqrt(acc / n) if n > 1 else 0.0
    return out


@functools.cache
def _scenario(seed: int) -> tuple[list[Op], list[dict[str, float]]]:
    ops = _stream(seed, n=1200, hours=30)
    rows: list[Row] = []
    labels: dict[str, list[tuple[int, bool]]] = {}
    expected = []
    for op in ops:
        if isinstance(op, Row):
            expected.append(_reference(op, rows, labels))
            rows.append(op)
        elif isinstance(op, Label) and any(r.id == op.id for r in rows):
            labels.setdefault(op.id, []).append((op.confirmed, op.fraud))
    return ops, expected


def _history(rows: list[Row], labels: dict[str, list[tuple[int, bool]]]) -> pd.DataFrame:
    """The recorded history as the lake would give it: one row per label event."""
    records = []
    for r in rows:
        base = {
            "tx_id": r.id,
            "tx_time": pd.Timestamp(r.t, unit="us", tz="UTC"),
            "customer_id": r.customer_id,
            "terminal_id": r.terminal_id,
            "amount": r.amount,
        }
        events = labels.get(r.id) or [(None, None)]
        for confirmed, fraud in events:
            records.append(
                {
                    **base,
                    "is_fraud": fraud,
                    "label_confirmed_at": None
                    if confirmed is None
                    else pd.Timestamp(confirmed, unit="us", tz="UTC"),
                }
            )
    return pd.DataFrame.from_records(records)


# ---- the stores -----------------------------------------------------------------------------

Factory = Callable[[], OnlineStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Builds handles on one state: for redis a new client on the same prefix each call (a
    second worker, or the server after a restart), for memory a new empty store."""
    if request.param == "memory":
        yield lambda: MemoryStore(SPEC, late_s=LATE_S)
        return
    require_redis()
    from fraudops.features.online_redis import RedisStore

    prefix = f"online-test:{uuid.uuid4().hex[:8]}"
    handles: list[RedisStore] = []

    def make() -> OnlineStore:
        store = RedisStore(
            SPEC, url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix=prefix, late_s=LATE_S
        )
        handles.append(store)
        return store

    yield make
    handles[0].clear()
    for store in handles:
        store.close()


def _hex(values: dict[str, float]) -> dict[str, str]:
    return {k: float(v).hex() for k, v in values.items()}


@pytest.mark.parametrize("seed", [7, 2026])
def test_every_value_equals_the_reference_through_disorder_late_labels_and_a_restart(
    make_store: Factory, seed: int
) -> None:
    ops, expected = _scenario(seed)
    store = make_store()
    # a second handle: for redis another worker on the same state; for memory the same store
    other = make_store() if not isinstance(store, MemoryStore) else store
    rng = random.Random(seed)
    rows: list[Row] = []
    labels: dict[str, list[tuple[int, bool]]] = {}
    got: list[dict[str, float]] = []
    for op in ops:
        if op == "restart":
            store.clear()
            store = make_store()
            assert store.stored_events() == 0
            assert store.warm(_history(rows, labels)) == len(rows)
            other = make_store() if not isinstance(store, MemoryStore) else store
        elif isinstance(op, Row):
            handle = store if len(rows) % 2 else other
            if rng.random() < 0.5:
                got.append(handle.compute_and_record(op.raw()))
            else:
                values = handle.compute(op.raw())
                assert handle.compute(op.raw()) == values  # computing changes nothing
                handle.record(op.raw())
                got.append(values)
            rows.append(op)
        elif isinstance(op, Label):
            keys = None
            known = next((r for r in rows if r.id == op.id), None)
            if op.with_keys and known is not None:
                keys = {"customer_id": known.customer_id, "terminal_id": known.terminal_id}
            confirmed = pd.Timestamp(op.confirmed, unit="us", tz="UTC").to_pydatetime()
            held = store.record_label(op.id, op.fraud, confirmed, keys=keys)
            newest = max(r.t for r in rows)
            if known is not None and known.t > newest - store.keep_us:
                assert held, f"label of {known} dropped"
            elif known is None:
                assert not held
            if known is not None:
                labels.setdefault(op.id, []).append((op.confirmed, op.fraud))
    assert len(got) == len(expected) == 1200
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert _hex(g) == _hex(e), f"transaction {i} ({rows[i]}): got {g}, expected {e}"
    # the stream exercised what it claims to
    names = [d.name for d in SPEC.derived]
    assert all(list(g) == names for g in got)
    assert any(e["term_risk_1h_d30m"] not in (0.0, 1.0) for e in expected)
    assert sum(e["cust_since"] == 0.0 for e in expected) >= 10  # same-time rows of a key
    assert any(e["night"] == 1.0 for e in expected) and any(e["weekend"] == 1.0 for e in expected)


def test_the_state_stays_bounded_on_a_long_stream(make_store: Factory) -> None:
    from fraudops.features.online_redis import RedisStore

    store = make_store()
    rng = random.Random(3)
    base = int(BASE.timestamp()) * US
    sizes, log_bytes = [], []
    for i in range(3000):  # 2.5 days at one transaction per 72 s, over 12 key pairs
        t = base + i * 72 * US
        raw = RawTransaction(
            time_us=t,
            keys={"customer_id": f"c{rng.randrange(4)}", "terminal_id": f"m{rng.randrange(3)}"},
            values={"amount": rng.random() * 100},
            transaction_id=f"x{i}",
        )
        store.compute_and_record(raw)
        if i % 250 == 249:
            sizes.append(store.stored_events())
            if isinstance(store, RedisStore):  # what Redis holds: the logs, rewritten when long
                log_bytes.append(store.log_bytes())
    # kept: 2 h windows + 20 min lateness = 140 min, 117 transactions, in two keys each,
    # plus one older event per key; a periodic sweep may leave up to a quarter more
    assert max(sizes) <= 2 * (117 + 30) + 7 + 60, sizes
    assert max(sizes[4:]) <= max(sizes[:4]) + 20, sizes
    if log_bytes:  # at most ~2x the kept events' records (24 bytes here, 9 more to close each)
        assert max(log_bytes) <= 2 * max(sizes) * 33 + 7 * 40 * 33, (log_bytes, sizes)
        assert max(log_bytes[4:]) <= max(log_bytes[:4]) * 1.25, log_bytes


def test_a_transaction_needs_an_id(make_store: Factory) -> None:
    store = make_store()
    raw = RawTransaction(
        time_us=int(BASE.timestamp()) * US,
        keys={"customer_id": "c", "terminal_id": "m"},
        values={"amount": 1.0},
    )
    with pytest.raises(ValueError, match="transaction id"):
        store.compute(raw)
    assert store.compute(raw.with_id("a"))["cust_nb_1h"] == 1.0
    assert store.stored_events() == 0


def test_the_packed_script_calls_load_select_and_reconnect() -> None:
    """The Redis store's hot-path callers: a script Redis does not know yet is loaded on its
    NOSCRIPT answer; the URL's database is the one written; an error answer is raised as
    redis-py would (and the async stream, dropped, reconnects on the next call)."""
    require_redis()
    import asyncio

    import redis
    from redis.exceptions import ResponseError

    from fraudops.features.online_redis_scripts import AsyncPackedScript, PackedScript

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/1"
    client = redis.Redis.from_url(url)
    key = f"online-test:script:{uuid.uuid4().hex}".encode()
    # a new source each run: Redis has never seen it, the first EVALSHA answers NOSCRIPT
    source = (
        f"-- {uuid.uuid4().hex}\nif ARGV[1] == 'fail' then return redis.error_reply('no') end\n"
    )
    source += "redis.call('APPEND', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
    sync_call, async_call = PackedScript(client, source), AsyncPackedScript(client, source)
    try:
        assert sync_call([key], [b"a"]) == b"a"

        async def calls() -> list[bytes]:
            first = await async_call([key], [b"b"])
            with pytest.raises(ResponseError, match="no"):
                await async_call([key], [b"fail"])
            return [first, await async_call([key], [b"c"])]

        assert asyncio.run(calls()) == [b"ab", b"abc"]
        assert asyncio.run(async_call([key], [b"d"])) == b"abcd"  # another loop: a new stream
        assert client.get(key) == b"abcd"  # in database 1 ...
        assert redis.Redis.from_url(f"redis://{REDIS_HOST}:{REDIS_PORT}/0").get(key) is None
    finally:
        client.delete(key)
        sync_call.close()
        async_call.close()
        client.close()


def test_a_transaction_recorded_again_replaces_its_values_and_keeps_its_labels(
    make_store: Factory,
) -> None:
    store = make_store()
    t0 = int(BASE.timestamp()) * US
    keys = {"customer_id": "c", "terminal_id": "m"}

    def tx(t: int, tx_id: str, amount: float) -> RawTransaction:
        return RawTransaction(time_us=t, keys=keys, values={"amount": amount}, transaction_id=tx_id)

    store.record(tx(t0, "a", 10.0))
    store.record(tx(t0 + 60 * US, "b", 20.0))
    assert store.record_label("a", True, BASE + dt.timedelta(seconds=1), keys=keys)
    query = tx(t0 + 40 * 60 * US, "q", 1.0)  # its terminal window: (t0 - 50 min, t0 + 10 min]
    before = store.compute(query)
    assert (before["term_avg_1h_d30m"], before["term_risk_1h_d30m"]) == (15.0, 0.5)
    store.record(tx(t0, "a", 30.0))  # again, at its time: the new amount, the label stays
    again = store.compute(query)
    assert (again["term_avg_1h_d30m"], again["term_risk_1h_d30m"]) == (25.0, 0.5)
    assert again["cust_sum_2h"] == 30.0 + 20.0 + 1.0
    store.record(tx(t0 + 120 * US, "a", 50.0))  # again, later: moved after b, label kept
    moved = store.compute(query)
    assert (moved["term_avg_1h_d30m"], moved["term_risk_1h_d30m"]) == (35.0, 0.5)
    assert moved["cust_since"] == (40 * 60 - 120) * 1.0
    assert store.stored_events() == 4  # a and b under two keys each


def test_an_unreadable_log_is_refused_and_read_again_once_repaired() -> None:
    """A Redis log that does not decode is an error naming the byte, not a wrong value; the
    store forgets what it had read of it and reads it again from the start next time."""
    require_redis()
    import redis

    from fraudops.features.online_redis import RedisStore

    prefix = f"online-test:{uuid.uuid4().hex[:8]}"
    store = RedisStore(SPEC, url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix=prefix)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    t0 = int(BASE.timestamp()) * US
    keys = {"customer_id": "c", "terminal_id": "m"}

    def tx(t: int, tx_id: str, amount: float) -> RawTransaction:
        return RawTransaction(time_us=t, keys=keys, values={"amount": amount}, transaction_id=tx_id)

    try:
        store.record(tx(t0, "a", 10.0))
        log = f"{prefix}:log:terminal_id:m".encode()  # read after the card's log
        client.append(log, b"Zjunk")
        with pytest.raises(ValueError, match="unreadable at byte"):
            store.record(tx(t0 + US, "b", 20.0))  # recorded in both logs, then the error
        client.set(log, bytes(client.get(log) or b"").replace(b"Zjunk", b""))
        # the card's log was read past b before the error: forgotten, it is read again
        assert store.compute(tx(t0 + 2 * US, "q", 1.0))["cust_sum_2h"] == 31.0
    finally:
        store.clear()
        store.close()
        client.close()
