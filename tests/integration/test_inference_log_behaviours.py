"""One behaviour suite for the inference log's two interfaces, run over every backend.

Modelled on pyiceberg's tests/catalog/test_catalog_behaviors.py: the ``log`` fixture yields one
backend at a time (the local spool, Redis Streams), each with a real lake (SQLite catalog under a
tmp home) and, for Redis, the machine's Redis on a stream key of its own. Every test is written
against ``Producer`` and ``Drainer`` only, built by the factory from the settings, and holds for
both. The faults are real: processes SIGKILLed, a lake folder moved away and back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from fraudops.config import Settings, load_settings
from fraudops.inference_log.base import Drainer, DrainReport, Producer
from fraudops.inference_log.factory import open_drainer, open_producer
from fraudops.inference_log.records import encode, seal
from fraudops.inference_log.spool_files import read_segment
from fraudops.lake import Lake
from fraudops.lake.catalog import TableReplacedError
from fraudops.runtime import Runtime
from fraudops.spec import BUILTIN_SPECS
from tests import waiting
from tests.services import REDIS_HOST, REDIS_PORT, require_redis
from tests.unit.test_inference_log_records import make_record

SPEC = BUILTIN_SPECS["transactions30"]
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 90.0  # a bound on waiting for background work, never an assertion
SERVING = {
    "fsync_interval_s": 0.005,
    "seal_age_s": 0.05,
    "writer_batch_rows": 50,
    "writer_batch_age_s": 0.05,
    "writer_retry_s": 0.05,
}


def wait_for(condition: Callable[[], bool], what: str) -> None:
    waiting.wait_for(condition, what, timeout=WAIT_S)


@dataclass
class Backend:
    """One backend under test: its settings, what waits in it, and its child processes' env."""

    name: str
    home: Path
    serving: dict[str, Any]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def settings(self, **serving: Any) -> Settings:
        return load_settings(home=self.home, serving={**self.serving, **serving})

    def producer(self) -> Producer:
        return open_producer(self.settings())

    def drainer(self, **serving: Any) -> Drainer:
        settings = self.settings(**serving)
        drainer = open_drainer(
            settings,
            open_lake=Runtime(settings).lake_factory(),
            consumer_name=f"c-{uuid.uuid4().hex[:6]}",
        )
        assert drainer is not None
        return drainer

    def waiting(self) -> int:
        """Records appended and not yet settled: in the spool's segments, or in the stream."""
        settings = self.settings()
        if self.name == "spool":
            total = 0
            for path in settings.spool_dir().glob("*/seg-*"):
                try:
                    total += len(read_segment(path).rows)
                except FileNotFoundError:  # drained and deleted between the glob and the read
                    continue
            return total
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            return int(client.xlen(settings.redis_stream()))
        finally:
            client.close()

    def env(self, **serving: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
        env["FRAUDOPS_HOME"] = str(self.home)
        for key, value in {**self.serving, **serving}.items():
            env[f"FRAUDOPS_SERVING__{key.upper()}"] = str(value)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
        return env


@pytest.fixture(params=["spool", "redis"])
def log(request: pytest.FixtureRequest, home: Path) -> Iterator[Backend]:
    serving: dict[str, Any] = {**SERVING, "log_backend": request.param}
    backend = Backend(request.param, home, serving)
    if request.param == "redis":
        require_redis()
        import redis

        base = f"test:{uuid.uuid4().hex[:12]}"
        serving["redis_stream"] = base
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)

        def drop_keys() -> None:
            keys = list(client.scan_iter(match=f"{base}*"))
            if keys:
                client.delete(*keys)
            client.close()

        backend.cleanup.append(drop_keys)
    with Lake.open(backend.settings()) as lake:
        lake.init()
    yield backend
    for step in backend.cleanup:
        step()


def lines(run: str, start: int, count: int) -> list[bytes]:
    return [
        encode(make_record(SPEC, i, inference_id=f"{run}-{i:06d}"))
        for i in range(start, start + count)
    ]


def ids(run: str, start: int, count: int) -> list[str]:
    return [f"{run}-{i:06d}" for i in range(start, start + count)]


def lake_ids(settings: Settings) -> list[str]:
    with Lake.open(settings) as lake:
        return sorted(lake.read("predictions", ["inference_id"])["inference_id"].to_pylist())


def produce(log: Backend, batches: list[list[bytes]]) -> None:
    producer = log.producer()
    try:
        for batch in batches:
            assert producer.append_many(batch) == len(batch)
    finally:
        producer.close()


def drain(log: Backend, **serving: Any) -> DrainReport:
    drainer = log.drainer(**serving)
    try:
        return drainer.drain()
    finally:
        drainer.close()


@pytest.fixture
def running(log: Backend) -> Iterator[Callable[[], tuple[Drainer, threading.Event]]]:
    """Start a drainer's ``run`` loop in a thread; stopped (and joined) at the end."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start() -> tuple[Drainer, threading.Event]:
        drainer, stop = log.drainer(), threading.Event()
        thread = threading.Thread(target=drainer.run, args=(stop,), daemon=True)
        thread.start()
        started.append((thread, stop))
        return drainer, stop

    yield start
    for thread, stop in started:
        stop.set()
        thread.join(WAIT_S)


# ---- the plain behaviour -----------------------------------------------------------------------


def test_what_the_producer_kept_lands_exactly_once(log: Backend) -> None:
    producer = log.producer()
    try:
        assert producer.backend == log.name
        assert producer.append_many(lines("a", 0, 30)) == 30
        assert producer.append_many(lines("a", 30, 90)) == 90
        stats = producer.stats()
    finally:
        producer.close()
    assert (stats.backend, stats.records_appended, stats.records_dropped) == (log.name, 120, 0)

    report = drain(log)
    assert (report.written, report.duplicates, report.commit_failures) == (120, 0, 0)
    assert report.records == 120 and report.batches >= 1
    assert lake_ids(log.settings()) == ids("a", 0, 120)
    assert log.waiting() == 0
    assert drain(log).written == 0  # nothing is written twice


def test_the_runtime_builds_the_configured_backend(log: Backend) -> None:
    with Runtime(log.settings()) as runtime:
        producer = runtime.log_producer()
        drainer = runtime.log_drainer()
        try:
            assert producer.backend == log.name
            assert drainer is not None and drainer.backend == log.name
        finally:
            producer.close()
            if drainer is not None:
                drainer.close()


def test_a_record_the_table_refuses_is_set_aside_and_blocks_nothing(log: Backend) -> None:
    good = lines("b", 0, 10)
    # Well formed, its checksum right, a string where the table has a number.
    fields = {k: v for k, v in orjson.loads(good[3]).items() if k != "crc32"}
    bad = seal(orjson.dumps({**fields, "probability": "high"}))
    produce(log, [good[:5], [bad, b'{"not": "a record"}\n'], good[5:]])
    report = drain(log)
    assert (report.written, report.rejected, report.unreadable) == (10, 1, 1)
    assert lake_ids(log.settings()) == ids("b", 0, 10)
    assert log.waiting() == 0


def test_a_running_drainer_lands_records_as_they_come(
    log: Backend, running: Callable[[], tuple[Drainer, threading.Event]]
) -> None:
    drainer, _ = running()
    for k in range(5):
        produce(log, [lines("r", 20 * k, 20)])
    wait_for(lambda: len(lake_ids(log.settings())) == 100, "every record landed")
    assert lake_ids(log.settings()) == ids("r", 0, 100)
    assert drainer.totals.commit_failures == 0


# ---- faults ----------------------------------------------------------------------------------

_PRODUCER = """
import sys
from fraudops.config import load_settings
from fraudops.inference_log.factory import open_producer
from fraudops.inference_log.records import encode
from fraudops.spec import BUILTIN_SPECS
from tests.unit.test_inference_log_records import make_record

spec = BUILTIN_SPECS["transactions30"]
producer = open_producer(load_settings())
i = 0
while True:  # micro-batches of 10, each "answered" once append_many returned
    batch = [encode(make_record(spec, k, inference_id=f"p-{k:06d}")) for k in range(i, i + 10)]
    assert producer.append_many(batch) == 10
    i += 10
    print(i, flush=True)
"""


def test_sigkilled_producer_every_answered_record_lands_once(log: Backend) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _PRODUCER],
        env=log.env(),
        stdout=subprocess.PIPE,
        text=True,
        cwd=log.home,
    )
    assert child.stdout is not None
    answered = 0
    try:
        while answered < 1_500:
            answered = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)  # no close, no seal, no flush
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    report = drain(log)
    stored = lake_ids(log.settings())
    assert len(stored) == len(set(stored)), "a record was committed twice"
    assert set(ids("p", 0, answered)) <= set(stored), "an answered record was lost"
    # Appends are sequential: what landed is the prefix that reached the log, nothing else.
    assert stored == ids("p", 0, len(stored))
    assert report.written == len(stored) and report.duplicates == 0
    assert log.waiting() == 0


_DRAINER = """
import sys, time
from fraudops.config import load_settings
from fraudops.inference_log.factory import open_drainer
from fraudops.runtime import Runtime

settings = load_settings()
drainer = open_drainer(settings, open_lake=Runtime(settings).lake_factory(), consumer_name="doomed")
commit = drainer.sink.commit


def commit_then_hang(*args, **kwargs):
    # The real commit lands; the process then waits to be killed before it deletes / acks.
    report = commit(*args, **kwargs)
    print(report.written, flush=True)
    time.sleep(3600)


drainer.sink.commit = commit_then_hang
drainer.drain()
"""


def test_drainer_sigkilled_between_commit_and_settle_replays_without_duplicates(
    log: Backend,
) -> None:
    # Two producers' worth (the spool: two segments), so that two batches of 50 are drained.
    produce(log, [lines("m", 0, 50)])
    produce(log, [lines("m", 50, 50)])
    child = subprocess.Popen(
        [sys.executable, "-c", _DRAINER],
        env=log.env(),
        stdout=subprocess.PIPE,
        text=True,
        cwd=log.home,
    )
    assert child.stdout is not None
    try:
        committed = int(child.stdout.readline())  # its first batch is in the lake ...
        child.send_signal(signal.SIGKILL)  # ... and neither deleted from the spool nor acked
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
    assert committed == 50
    assert lake_ids(log.settings()) == ids("m", 0, 50)
    assert log.waiting() == 100  # the committed batch is still there, as it must be

    # Another drainer takes over (Redis: claims the dead consumer's entries at once).
    report = drain(log, redis_claim_idle_ms=1)
    assert (report.written, report.duplicates) == (50, 50)
    assert report.replayed >= 1
    assert lake_ids(log.settings()) == ids("m", 0, 100)
    assert log.waiting() == 0


def test_lake_away_for_a_while_records_wait_then_land_once(
    log: Backend, running: Callable[[], tuple[Drainer, threading.Event]]
) -> None:
    settings = log.settings()
    drainer, _ = running()
    produce(log, [lines("d", 0, 40)])
    wait_for(lambda: len(lake_ids(settings)) == 40, "the first records landed")

    lake_dir = settings.home_dir / "lake"
    away = lake_dir.with_name("lake.away")
    os.rename(lake_dir, away)
    failures = drainer.totals.commit_failures
    produce(log, [lines("d", 40, 60)])
    wait_for(lambda: drainer.totals.commit_failures >= failures + 2, "the drainer retried")
    assert log.waiting() == 60  # kept, all of them
    assert "does not exist" in (drainer.totals.last_error or "")
    assert not lake_dir.exists(), "the lake was recreated while it was away"

    os.rename(away, lake_dir)
    wait_for(lambda: log.waiting() == 0, "the waiting records were drained")
    assert lake_ids(settings) == ids("d", 0, 100)
    assert sorted(p.name for p in settings.home_dir.iterdir() if p.name.startswith("lake")) == [
        "lake"
    ]


def test_a_replaced_predictions_table_stops_the_writing(log: Backend) -> None:
    settings = log.settings()
    drainer = log.drainer()
    try:
        produce(log, [lines("t", 0, 10)])
        assert drainer.drain().written == 10
        with Lake.open(settings) as lake:
            before = lake.table_uuid("predictions")
            lake.catalog.drop_table(lake.identifier("predictions"))
            lake.init()  # someone re-created it: a new, empty table
            after = lake.table_uuid("predictions")
        produce(log, [lines("t", 10, 10)])
        with pytest.raises(TableReplacedError) as caught:
            drainer.drain()
    finally:
        drainer.close()
    assert before != after
    assert before in str(caught.value) and after in str(caught.value)
    assert lake_ids(settings) == []  # nothing went into the new table
    assert log.waiting() == 10  # the records are kept
