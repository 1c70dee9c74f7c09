"""The online state stays bounded as real traffic goes on: keys not seen again are forgotten,
the Redis id index keeps the retention span of ids (bench/soak --spec cards watches the same over
minutes of serving)."""

from __future__ import annotations

import datetime as dt
import random
import uuid

from fraudops.features.online import OnlineStore
from fraudops.features.raw_request import RawTransaction
from fraudops.spec import FeatureSpec
from tests.integration.test_features_online import BASE, LATE_S, SPEC, US, Factory, make_store
from tests.services import REDIS_HOST, REDIS_PORT, require_redis

__all__ = ["make_store"]  # the fixture: both stores


def test_keys_not_seen_again_are_forgotten_as_new_ones_come(make_store: Factory) -> None:
    """Real traffic keeps bringing new cards and terminals: the keys held plateau at those
    seen within key_ttl + late_s (plus a sweep's period), they do not grow with every key ever
    seen."""
    from fraudops.features.online_memory import MemoryStore
    from fraudops.features.online_redis import RedisStore

    ttl_s = 3 * 3600.0
    first = make_store()
    # the same state with a short key ttl (for redis: another handle on the same prefix)
    if isinstance(first, MemoryStore):
        store: OnlineStore = MemoryStore(SPEC, late_s=LATE_S, key_ttl_s=ttl_s)
    else:
        assert isinstance(first, RedisStore)
        store = RedisStore(
            SPEC,
            url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            prefix=first.prefix,
            late_s=LATE_S,
            key_ttl_s=ttl_s,
        )
    base = int(BASE.timestamp()) * US
    rng = random.Random(5)
    keys = []
    try:
        for i in range(3000):  # 50 h at one transaction a minute; a new card every 10 minutes
            raw = RawTransaction(
                time_us=base + i * 60 * US,
                keys={
                    "customer_id": f"c{i // 10 + rng.randrange(6)}",
                    "terminal_id": f"m{i // 30 + rng.randrange(4)}",
                },
                values={"amount": rng.random() * 100},
                transaction_id=f"y{i}",
            )
            store.compute_and_record(raw)
            if i % 250 == 249:
                keys.append(store.held().keys)
    finally:
        if store is not first:
            store.close()
    # seen within 3h20 (+ a quarter of the 2h20 retention between sweeps): ~26 cards, ~11
    # terminals; 300 cards and 100 terminals were seen in all
    assert max(keys) <= 60, keys
    assert max(keys[4:]) <= max(keys[:4]) * 1.25, keys
    held = store.held()
    # 140 transactions in the retention, a quarter more between sweeps, under two keys each,
    # plus each key's one older event
    assert held.events <= 2 * (140 + 35) + held.keys, held
    if isinstance(store, MemoryStore):
        assert held.ids is not None and held.ids <= 140 + 35, held  # the id index is trimmed too


def test_the_redis_id_index_keeps_the_retention_span_of_ids_not_a_week() -> None:
    """A label without keys finds its transaction through the id index while the transaction
    is in the retention span; the index's hashes expire a quarter span after it (bench/soak
    --spec cards: a week of ids per hash grew with the traffic)."""
    import time

    require_redis()
    from fraudops.features.online_redis import RedisStore
    from fraudops.features.online_redis_index import index_period_s

    assert index_period_s(37 * 86_400 * US) == 7 * 86_400  # the default spans: a week at most
    assert index_period_s(90 * US) == 22 and index_period_s(1 * US) == 1
    spec = FeatureSpec.model_validate(
        {
            "name": "short",
            "id_column": "tx_id",
            "timestamp_column": "tx_time",
            "timestamp_kind": "datetime",
            "label_column": "is_fraud",
            "keys": ["terminal_id"],
            "features": [{"name": "amount"}],
            "derived": [
                {
                    "name": "risk_1s",
                    "by": "terminal_id",
                    "window": "1s",
                    "delay": "1s",
                    "agg": "fraud_rate",
                }
            ],
        }
    )
    store = RedisStore(
        spec,
        url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        prefix=f"ids-test:{uuid.uuid4().hex[:8]}",
        late_s=0.0,
    )
    try:
        now = int(time.time() * US)
        for i in range(3):
            store.compute_and_record(
                RawTransaction(
                    time_us=now + i,
                    keys={"terminal_id": "m1"},
                    values={"amount": 1.0},
                    transaction_id=f"z{i}",
                )
            )
        client = store._redis
        hashes = list(client.scan_iter(match=f"{store.prefix}:ids:*"))
        # kept the 2 s retention past its 1 s period
        assert hashes and all(0 < client.pttl(h) <= 3_000 for h in hashes)
        assert sum(client.hlen(h) for h in hashes) == 3
        assert store.record_label("z1", True, dt.datetime.now(dt.UTC))  # found without keys
        time.sleep(3.2)
        assert not list(client.scan_iter(match=f"{store.prefix}:ids:*"))
        assert not store.record_label("z2", True, dt.datetime.now(dt.UTC))  # expired with it
    finally:
        store.clear()
        store.close()
