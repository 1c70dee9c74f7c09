"""The inference log through Redis Streams, against the machine's Redis and a real lake.

Each test uses its own stream key (deleted at the end). A consumer "dies between the lake commit
and the ack" deterministically: it connects as a Redis ACL user from which XACK is then revoked,
so its commit lands and its ack fails — the window a SIGKILL would otherwise hit by luck.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from fraudops.config import Settings, load_settings
from fraudops.inference_log.records import PredictionRecord, encode, seal
from fraudops.inference_log.redis_consumer import RedisLogConsumer
from fraudops.inference_log.redis_producer import RedisLogProducer
from fraudops.lake import Lake
from fraudops.runtime import Runtime
from fraudops.spec import BUILTIN_SPECS
from tests import waiting
from tests.services import REDIS_HOST, REDIS_PORT, require_redis

SPEC = "transactions30"
FRAUDOPS = str(Path(sys.executable).parent / "fraudops")
DEADLINE_S = 120.0  # only a safety net against a hung test: no assertion depends on timing

FEATURES: dict[str, float | int | None] = {
    f.name: (1 if f.kind.value == "categorical" else 0) if f.dtype == "int" else 0.5
    for f in BUILTIN_SPECS[SPEC].features
}


def make_line(i: int, run: str) -> tuple[str, bytes]:
    """One encoded record of spec transactions30 with a unique inference id."""
    inference_id = f"{run}-{i:06d}"
    record = PredictionRecord(
        inference_id=inference_id,
        request_time=dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        model_name="fraudops-transactions30",
        model_version="1",
        run_id="r",
        transaction_id=f"tx-{i}",
        customer_id=f"c-{i % 7}",
        amount=10.0 + i,
        features=dict(FEATURES),
        probability=0.1,
        prediction=0,
        threshold=0.5,
        risk_tier="low",
        latency_ms=1.0,
        model_latency_ms=0.5,
        reason_codes=[{"feature": "transaction_amount", "contribution": 0.1}],
    )
    return inference_id, encode(record)


def make_lines(n: int, run: str, start: int = 0) -> tuple[list[str], list[bytes]]:
    pairs = [make_line(i, run) for i in range(start, start + n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    require_redis()
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    yield client
    client.close()


@pytest.fixture
def stream_base(r: redis.Redis) -> Iterator[str]:
    base = f"test:{uuid.uuid4().hex[:12]}"
    yield base
    keys = list(r.scan_iter(match=f"{base}*"))
    if keys:
        r.delete(*keys)


def make_settings(home: Path, stream_base: str, **serving: Any) -> Settings:
    settings = load_settings(
        home=home,
        serving={
            "redis_stream": stream_base,
            "writer_batch_rows": 50,
            "writer_batch_age_s": 0.2,
            "writer_retry_s": 0.05,
            **serving,
        },
    )
    with Lake.open(settings, SPEC) as lake:
        lake.init()  # the consumer never creates the lake: only `lake init` does
    return settings


@pytest.fixture
def acl_user(r: redis.Redis) -> Iterator[tuple[str, str]]:
    """A Redis user with every right; tests revoke XACK from it to freeze a consumer."""
    name, password = f"fraudops-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    r.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*", "+@all")
    yield name, password
    r.acl_deluser(name)


def user_url(user: tuple[str, str]) -> str:
    return f"redis://{user[0]}:{user[1]}@{REDIS_HOST}:{REDIS_PORT}/0"


def revoke_xack(r: redis.Redis, user: tuple[str, str]) -> None:
    r.execute_command("ACL", "SETUSER", user[0], "-xack")


def lake_ids(settings: Settings) -> list[str]:
    with Lake.open(settings, SPEC) as lake:
        if not lake.exists("predictions"):
            return []
        return list(lake.read("predictions", columns=["inference_id"])["inference_id"].to_pylist())


def lake_count(settings: Settings) -> int:
    with Lake.open(settings, SPEC) as lake:
        return lake.count("predictions") if lake.exists("predictions") else 0


def wait_for(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], stderr: Path
) -> None:
    """``tests.waiting.wait_for`` with this module's bound, failing at once if the consumer
    exits first (its stderr in the message)."""
    waiting.wait_for(
        condition,
        what,
        timeout=DEADLINE_S,
        poll=0.05,
        process=proc,
        detail=lambda: f"consumer stderr: {stderr.read_text()}",
    )


def entries(r: redis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    found: Any = r.xrange(stream)
    return [fields for _, fields in found]


def pending_of(r: redis.Redis, stream: str, group: str, consumer: str) -> int:
    try:
        summary = r.xpending(stream, group)
    except redis.ResponseError:
        return 0
    return sum(c["pending"] for c in summary["consumers"] if c["name"].decode() == consumer)


# ---- producer ------------------------------------------------------------------------------


def test_producer_appends_the_exact_bytes(home: Path, stream_base: str, r: redis.Redis) -> None:
    settings = make_settings(home, stream_base)
    _, lines = make_lines(5, "p")
    producer = RedisLogProducer(settings, SPEC)
    try:
        assert producer.append_many(lines[:4]) == 4
        assert producer.append(lines[4]) is True
        stats = producer.stats()
    finally:
        producer.close()

    stream = settings.redis_stream(SPEC)
    assert stream == f"{stream_base}:{SPEC}"
    assert [fields[b"r"] for fields in entries(r, stream)] == lines
    assert producer.counters.records_appended == 5
    assert producer.counters.records_dropped == 0
    assert stats.queue_records == 5
    assert (stats.backend, stats.target) == ("redis", stream)


def test_producer_drops_and_counts_when_redis_is_down(home: Path) -> None:
    # Port 1: connection refused. The request path gets a count, never an exception.
    settings = load_settings(home=home, serving={"redis_url": "redis://127.0.0.1:1/0"})
    _, lines = make_lines(3, "down")
    producer = RedisLogProducer(settings, SPEC)
    try:
        assert producer.append_many(lines) == 0
        assert producer.append(lines[0]) is False  # within the back-off: not even tried
        stats = producer.stats()
    finally:
        producer.close()
    assert producer.counters.records_dropped == 4
    assert producer.counters.records_appended == 0
    assert producer.counters.append_errors == 1
    assert stats.queue_records is None
    assert "Connection" in (stats.last_error or "")


# ---- consumer ------------------------------------------------------------------------------


def test_consumer_writes_each_record_once_and_sets_bad_entries_aside(
    home: Path, stream_base: str, r: redis.Redis
) -> None:
    settings = make_settings(home, stream_base)
    ids, lines = make_lines(120, "c")
    stream = settings.redis_stream(SPEC)
    producer = RedisLogProducer(settings, SPEC)
    assert producer.append_many(lines[:60]) == 60
    r.xadd(stream, {b"r": b"{torn"})  # not JSON
    r.xadd(stream, {b"other": b"1"})  # no record field
    _, bad_type = make_line(999, "c")
    untypable = {**orjson.loads(bad_type), "probability": "high"}
    del untypable["crc32"]
    r.xadd(stream, {b"r": seal(orjson.dumps(untypable))})  # well formed, its checksum right
    assert producer.append_many(lines[60:]) == 60
    producer.close()

    with RedisLogConsumer(
        settings, SPEC, "c1", open_lake=Runtime(settings, SPEC).lake_factory()
    ) as consumer:
        report = consumer.drain()
        again = consumer.drain()

    assert report.written == 120
    assert report.entries == 123
    assert report.unreadable == 2
    assert report.rejected == 1
    assert report.duplicates == 0
    assert report.commit_failures == 0
    assert report.batches == 3  # 50 + 50 + 20 rows; the bad entries ride along
    assert report.pending == 0
    assert again.entries == 0 and again.written == 0
    assert r.xlen(stream) == 0  # acknowledged entries are deleted

    stored = lake_ids(settings)
    assert sorted(stored) == sorted(ids)

    dead = entries(r, stream + ":dead")
    reasons = sorted(fields[b"reason"].decode() for fields in dead)
    assert len(reasons) == 3
    assert reasons[0].startswith("column 'probability'")
    assert "no 'r' field" in reasons
    assert "not a JSON record with an inference_id" in reasons


def test_lake_unavailable_nothing_acked_then_drained(
    home: Path, stream_base: str, r: redis.Redis
) -> None:
    catalog = home / "lake" / "catalog.db"
    # A short SQLite busy timeout: a locked catalog fails the commit at once instead of in 5 s.
    settings = load_settings(
        home=home,
        lake={"catalog_uri": f"sqlite:///{catalog}?timeout=0.1"},
        serving={"redis_stream": stream_base, "writer_batch_rows": 100},
    )
    with Lake.open(settings, SPEC) as lake:
        lake.init()
    ids, lines = make_lines(30, "u")
    stream = settings.redis_stream(SPEC)
    producer = RedisLogProducer(settings, SPEC)
    producer.append_many(lines)
    producer.close()

    lock = sqlite3.connect(catalog, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the catalog database is unavailable to anyone else
    with RedisLogConsumer(
        settings, SPEC, "c1", open_lake=Runtime(settings, SPEC).lake_factory()
    ) as consumer:
        try:
            failed = consumer.drain()
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert failed.commit_failures == 1
        assert failed.written == 0 and failed.entries == 0
        assert "lake commit failed" in (failed.last_error or "")
        assert failed.pending == 30
        assert pending_of(r, stream, settings.serving.redis_group, "c1") == 30
        assert r.xlen(stream) == 30
        assert lake_count(settings) == 0

        drained = consumer.drain()

    assert drained.written == 30
    assert drained.duplicates == 0
    assert drained.commit_failures == 0
    assert drained.pending == 0
    assert r.xlen(stream) == 0
    assert sorted(lake_ids(settings)) == sorted(ids)


def test_batch_taken_over_while_lake_was_down_is_written_once(
    home: Path, stream_base: str, r: redis.Redis
) -> None:
    catalog = home / "lake" / "catalog.db"
    settings = load_settings(
        home=home,
        lake={"catalog_uri": f"sqlite:///{catalog}?timeout=0.1"},
        serving={"redis_stream": stream_base, "writer_batch_rows": 100},
    )
    with Lake.open(settings, SPEC) as lake:
        lake.init()
    ids, lines = make_lines(30, "o")
    producer = RedisLogProducer(settings, SPEC)
    producer.append_many(lines)
    producer.close()

    with RedisLogConsumer(
        settings, SPEC, "c1", open_lake=Runtime(settings, SPEC).lake_factory()
    ) as first:
        lock = sqlite3.connect(catalog, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            assert first.drain().commit_failures == 1
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        # c1 stalls (the lake was down long enough): c2 takes its entries over and commits.
        with RedisLogConsumer(
            settings, SPEC, "c2", open_lake=Runtime(settings, SPEC).lake_factory(), claim_idle_ms=1
        ) as second:
            taken = second.drain()
        assert taken.reclaimed == 30 and taken.written == 30
        # c1's retry finds its batch no longer its own: nothing is written twice.
        retried = first.drain()

    assert retried.written == 0 and retried.commit_failures == 0
    assert retried.pending == 0
    assert sorted(lake_ids(settings)) == sorted(ids)


@pytest.mark.parametrize("takeover", ["other consumer", "same name restarted"])
def test_commit_without_ack_is_replayed_without_duplicates(
    home: Path, stream_base: str, r: redis.Redis, acl_user: tuple[str, str], takeover: str
) -> None:
    settings = make_settings(home, stream_base)
    ids, lines = make_lines(80, "a")
    stream = settings.redis_stream(SPEC)
    producer = RedisLogProducer(settings, SPEC)
    producer.append_many(lines)
    producer.close()

    frozen = make_settings(home, stream_base, redis_url=user_url(acl_user))
    revoke_xack(r, acl_user)
    with (
        RedisLogConsumer(
            frozen, SPEC, "c1", open_lake=Runtime(frozen, SPEC).lake_factory()
        ) as first,
        pytest.raises(redis.RedisError, match=r"(?i)permission|xack"),
    ):
        first.drain()  # the first batch is committed, then its ack is refused
    assert lake_count(settings) == 50
    assert pending_of(r, stream, settings.serving.redis_group, "c1") == 50

    if takeover == "other consumer":
        second = RedisLogConsumer(
            settings, SPEC, "c2", open_lake=Runtime(settings, SPEC).lake_factory(), claim_idle_ms=1
        )
    else:  # a restart reads its own pending list first, whatever the idle time
        second = RedisLogConsumer(
            settings,
            SPEC,
            "c1",
            open_lake=Runtime(settings, SPEC).lake_factory(),
            claim_idle_ms=3_600_000,
        )
    with second:
        report = second.drain()

    assert report.reclaimed == 50
    assert report.duplicates == 50  # already in the lake: skipped, then acknowledged
    assert report.written == 30
    assert report.pending == 0
    assert r.xlen(stream) == 0
    stored = lake_ids(settings)
    assert len(stored) == 80
    assert sorted(stored) == sorted(ids)


def test_killed_consumer_process_is_taken_over_without_loss_or_duplicates(
    home: Path, stream_base: str, r: redis.Redis, acl_user: tuple[str, str]
) -> None:
    """The issue's test: SIGKILL a `fraudops log-consumer` mid-stream; a second one takes over."""
    settings = make_settings(home, stream_base)
    stream, group = settings.redis_stream(SPEC), settings.serving.redis_group
    ids, lines = make_lines(300, "k")
    more_ids, more_lines = make_lines(100, "k", start=300)
    producer = RedisLogProducer(settings, SPEC)
    assert producer.append_many(lines) == 300

    env = {
        **os.environ,
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_SERVING__REDIS_STREAM": stream_base,
        "FRAUDOPS_SERVING__REDIS_URL": user_url(acl_user),
        "FRAUDOPS_SERVING__WRITER_BATCH_ROWS": "50",
        "FRAUDOPS_SERVING__WRITER_BATCH_AGE_S": "0.2",
        "FRAUDOPS_SERVING__WRITER_RETRY_S": "0.05",
        "FRAUDOPS_SERVING__REDIS_CLAIM_IDLE_MS": "3600000",
    }
    stderr_path = home / "consumer-1.err"
    with stderr_path.open("w") as stderr:
        first = subprocess.Popen(
            [FRAUDOPS, "log-consumer", "--spec", SPEC, "--name", "consumer-1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        # Let it commit and acknowledge a few batches ...
        wait_for(lambda: r.xlen(stream) <= 200, "two acknowledged batches", first, stderr_path)
        # ... then freeze it between a commit and its ack: it holds a committed, pending batch.
        revoke_xack(r, acl_user)

        def holds_committed_batch() -> bool:
            held = pending_of(r, stream, group, "consumer-1")
            acknowledged = 300 - r.xlen(stream)
            return held > 0 and lake_count(settings) == acknowledged + held

        wait_for(holds_committed_batch, "a committed but unacknowledged batch", first, stderr_path)
        held = pending_of(r, stream, group, "consumer-1")
        assert producer.append_many(more_lines) == 100  # the stream goes on
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        producer.close()
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(
        [
            FRAUDOPS,
            "log-consumer",
            "--spec",
            SPEC,
            "--name",
            "consumer-2",
            "--once",
            "--claim-idle-ms",
            "1",
            "--json",
        ],
        env={**env, "FRAUDOPS_SERVING__REDIS_URL": settings.serving.redis_url},
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["reclaimed"] == held
    assert report["duplicates"] == held  # committed by consumer-1, not written twice
    assert report["pending"] == 0
    assert r.xlen(stream) == 0

    stored = lake_ids(settings)
    expected = ids + more_ids
    assert len(stored) == len(set(stored)) == 400  # 0 duplicated
    assert set(stored) == set(expected)  # 0 lost


def test_consumer_process_settles_and_stops_on_sigterm(
    home: Path, stream_base: str, r: redis.Redis
) -> None:
    settings = make_settings(home, stream_base)
    stream = settings.redis_stream(SPEC)
    ids, lines = make_lines(120, "t")
    env = {
        **os.environ,
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_SERVING__REDIS_STREAM": stream_base,
        "FRAUDOPS_SERVING__WRITER_BATCH_ROWS": "50",
        "FRAUDOPS_SERVING__WRITER_BATCH_AGE_S": "0.2",
    }
    stderr_path = home / "consumer.err"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [FRAUDOPS, "log-consumer", "--spec", SPEC, "--name", "c1", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        producer = RedisLogProducer(settings, SPEC)
        assert producer.append_many(lines) == 120
        producer.close()
        wait_for(lambda: lake_count(settings) == 120, "every record in the lake", proc, stderr_path)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr_path.read_text()
    report = json.loads(stdout)
    assert report["written"] == 120
    assert report["entries"] == 120
    assert report["pending"] == 0
    assert r.xlen(stream) == 0
    assert sorted(lake_ids(settings)) == sorted(ids)
