"""The spool writer against a real lake (SQLite catalog under a tmp home) and real processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fraudops.config import Settings, load_settings
from fraudops.errors import LakeError
from fraudops.inference_log.records import encode, seal
from fraudops.inference_log.sink import PredictionSink
from fraudops.inference_log.spool import Spool
from fraudops.inference_log.spool_files import (
    REJECTED_DIR,
    SpoolDirectory,
    read_segment,
    read_writer_status,
)
from fraudops.inference_log.writer import SpoolWriter, WriterBusyError
from fraudops.lake import Lake
from fraudops.lake.catalog import TableReplacedError
from fraudops.runtime import Runtime
from fraudops.serving.lake_watch import LakeWatch
from fraudops.spec import BUILTIN_SPECS
from tests import waiting
from tests.unit.test_inference_log_records import make_record

pytestmark = pytest.mark.integration

SPEC = BUILTIN_SPECS["transactions30"]
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # a bound on waiting for background work, never an assertion

FAST = {
    "fsync_interval_s": 0.005,
    "seal_age_s": 0.05,
    "writer_batch_age_s": 0.05,
    "writer_retry_s": 0.05,
}


def wait_for(condition: Callable[[], bool], what: str) -> None:
    waiting.wait_for(condition, what, timeout=WAIT_S)


@pytest.fixture
def settings(home: Path) -> Settings:
    settings = load_settings(home=home, serving=FAST)
    with Lake.open(settings) as lake:
        lake.init()  # the writer never creates the lake: only `lake init` does
    return settings


def lines(start: int, count: int) -> list[bytes]:
    return [
        encode(make_record(SPEC, i, inference_id=f"inf-{i:06d}"))
        for i in range(start, start + count)
    ]


def lake_ids(settings: Settings) -> list[str]:
    with Lake.open(settings) as lake:
        if not lake.exists("predictions"):
            return []
        return sorted(lake.read("predictions", ["inference_id"])["inference_id"].to_pylist())


def spool_some(settings: Settings, batches: list[list[bytes]], **options: Any) -> None:
    """One short-lived server process's worth of records, closed (sealed) at the end."""
    spool = Spool.from_settings(settings)
    for key, value in options.items():
        setattr(spool, key, value)
    with spool.open():
        for batch in batches:
            assert spool.append_many(batch) == len(batch)


def child_env(home: Path, **serving: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env["FRAUDOPS_HOME"] = str(home)
    for key, value in {**FAST, **serving}.items():
        env[f"FRAUDOPS_SERVING__{key.upper()}"] = str(value)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])  # this checkout's
    return env


def test_writer_drains_a_spool_into_the_lake_exactly(settings: Settings) -> None:
    records = lines(0, 500)
    spool_some(settings, [records[i : i + 25] for i in range(0, 500, 25)], segment_max_bytes=20_000)
    bad = [
        seal(
            b'{"inference_id":"bad-1","request_time":"2025-03-01T00:00:00+00:00",'
            b'"features":{"unknown_feature":1}}'
        ),
        *lines(500, 1) * 2,  # a repeat within a batch: stored once
    ]
    spool_some(settings, [bad])
    settings = load_settings(home=settings.home, serving={**FAST, "writer_batch_rows": 120})

    writer = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    report = writer.drain()
    writer.directory.resign()

    assert report.written == 501
    assert (report.duplicates, report.rejected, report.unreadable) == (1, 1, 0)
    assert report.batches == 5  # whole segments of 25 rows, at most 120 rows a batch
    assert lake_ids(settings) == sorted(f"inf-{i:06d}" for i in range(501))
    assert list(settings.spool_dir().glob("*/seg-*")) == []
    [quarantined] = (settings.spool_dir() / REJECTED_DIR).iterdir()
    assert "unknown_feature" in orjson.loads(quarantined.read_bytes().splitlines()[0])["reason"]

    status = read_writer_status(settings.spool_dir())
    assert status["records_written"] == 501 and status["rejected"] == 1
    assert status["pending_bytes"] == 0 and status["last_error"] is None
    assert status["last_commit_at"] is not None

    with Lake.open(settings) as lake:
        row = lake.read("predictions", row_filter="inference_id = 'inf-000003'").to_pylist()[0]
    expected = make_record(SPEC, 3)
    assert row["request_time"] == expected.request_time
    assert row["probability"] == expected.probability
    assert row[SPEC.feature_names[1]] == expected.features[SPEC.feature_names[1]]


def test_a_crash_between_commit_and_delete_replays_without_duplicates(
    settings: Settings,
) -> None:
    batches = [lines(i, 10) for i in range(0, 60, 10)]
    spool_some(settings, batches, segment_max_bytes=2_000)  # one segment per batch
    spool_some(settings, [lines(60, 40)])
    # A writer takes the first segments and commits them, then dies before deleting them.
    crashed = SpoolDirectory(settings.spool_dir())
    assert crashed.lead()
    ready = crashed.ready_segments()
    taken = [crashed.take(ref) for ref in ready[:3]]
    rows = [row for ref in taken for row in read_segment(ref.path).rows]
    with PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink:
        assert sink.commit(rows).written == len(rows)
    # ... and a sealed segment committed by a writer that crashed before even renaming it.
    untaken = read_segment(ready[3].path).rows
    with PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink:
        sink.commit(untaken)
    crashed.resign()

    writer = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    report = writer.drain()
    writer.directory.resign()

    assert (len(rows), len(untaken)) == (30, 10)
    assert (report.written, report.duplicates) == (60, 40)
    assert lake_ids(settings) == sorted(f"inf-{i:06d}" for i in range(100))


def test_only_one_writer_drains_a_spool(settings: Settings) -> None:
    spool_some(settings, [lines(0, 5)])
    first, second = (
        SpoolWriter(settings, open_lake=Runtime(settings).lake_factory()),
        SpoolWriter(settings, open_lake=Runtime(settings).lake_factory()),
    )
    assert first.lead()
    with pytest.raises(WriterBusyError, match="another log writer"):
        second.drain_batch()
    first.directory.resign()
    assert second.drain().written == 5
    second.directory.resign()


@pytest.fixture
def writer_thread(
    settings: Settings,
) -> Iterator[Callable[[], tuple[SpoolWriter, threading.Event]]]:
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start() -> tuple[SpoolWriter, threading.Event]:
        writer, stop = (
            SpoolWriter(settings, open_lake=Runtime(settings).lake_factory()),
            threading.Event(),
        )
        thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
        thread.start()
        started.append((thread, stop))
        return writer, stop

    yield start
    for thread, stop in started:
        stop.set()
        thread.join(WAIT_S)


def test_lake_unavailable_keeps_the_spool_and_drains_when_back(
    settings: Settings, writer_thread: Callable[[], tuple[SpoolWriter, threading.Event]]
) -> None:
    spool_some(settings, [lines(0, 50)])
    _, stop = writer_thread()
    wait_for(lambda: len(lake_ids(settings)) == 50, "first rows committed")

    # The lake goes away: its folder (catalog and warehouse) is replaced by a plain file.
    lake_dir = settings.home_dir / "lake"
    away = lake_dir.with_name("lake.away")
    lake_dir.rename(away)
    lake_dir.write_text("not a lake")
    spool_some(settings, [lines(50, 70)])
    wait_for(
        lambda: read_writer_status(settings.spool_dir()).get("consecutive_failures", 0) >= 2,
        "the writer retried",
    )
    status = read_writer_status(settings.spool_dir())
    assert status["alive"] and status["state"] == "running"
    assert "catalog.db does not exist" in status["last_error"]
    assert status["lake_state"] == "missing"
    assert status["pending_bytes"] > 0 and status["records_written"] == 50
    assert sum(len(read_segment(p).rows) for p in settings.spool_dir().glob("*/seg-*")) == 70

    # Back: everything that waited lands, once.
    lake_dir.unlink()
    away.rename(lake_dir)
    wait_for(lambda: read_writer_status(settings.spool_dir())["records_written"] == 120, "drained")
    stop.set()
    assert lake_ids(settings) == sorted(f"inf-{i:06d}" for i in range(120))
    assert list(settings.spool_dir().glob("*/seg-*")) == []


def test_sink_raises_lake_error_and_writes_nothing_when_the_lake_is_gone(
    settings: Settings,
) -> None:
    lake_dir = settings.home_dir / "lake"
    lake_dir.rename(lake_dir.with_name("lake.away"))
    lake_dir.write_text("not a lake")
    rows = [orjson.loads(x) for x in lines(0, 3)]
    with (
        PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink,
        pytest.raises(LakeError, match="catalog"),
    ):
        sink.commit(rows)
    assert lake_dir.read_text() == "not a lake"


_CHILD = """
import sys
from fraudops.config import load_settings
from fraudops.inference_log.records import encode
from fraudops.inference_log.spool import Spool
from fraudops.spec import BUILTIN_SPECS
from tests.unit.test_inference_log_records import make_record

spec = BUILTIN_SPECS["transactions30"]
spool = Spool.from_settings(load_settings()).open()
i = 0
while True:  # micro-batches of 10; each acknowledged like a 200 response
    batch = [encode(make_record(spec, k, inference_id=f"inf-{k:06d}")) for k in range(i, i + 10)]
    assert spool.append_many(batch) == 10
    i += 10
    print(i, flush=True)
"""


def test_sigkilled_server_loses_no_acknowledged_record(home: Path, settings: Settings) -> None:
    env = child_env(home)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE, text=True, cwd=home
    )
    assert child.stdout is not None
    acknowledged = 0
    while acknowledged < 2_000:
        acknowledged = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()

    done = subprocess.run(
        [sys.executable, "-m", "fraudops.cli", "log-writer", "--once", "--json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)

    settings = load_settings(home=home)
    ids = lake_ids(settings)
    stored = summary["written"]
    assert stored >= acknowledged
    # Appends are sequential: the lake holds exactly the prefix that reached the spool, once.
    assert ids == [f"inf-{k:06d}" for k in range(stored)]
    assert summary["duplicates"] == 0 and summary["pending_segments"] == 0

    again = subprocess.run(
        [sys.executable, "-m", "fraudops.cli", "log-writer", "--once", "--json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(again.stdout)["written"] == 0


def test_cli_writer_follows_its_parent_and_stops_on_sigterm(home: Path, settings: Settings) -> None:
    env = child_env(home)
    settings = load_settings(home=home, serving=FAST)
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    writer = subprocess.Popen(
        [sys.executable, "-m", "fraudops.cli", "log-writer", "--parent-pid", str(parent.pid)],
        env=env,
        cwd=home,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        spool_some(settings, [lines(0, 30)])
        wait_for(lambda: len(lake_ids(settings)) == 30, "the running writer drained")
        parent.kill()
        parent.wait()
        assert writer.wait(timeout=WAIT_S) == 0
    finally:
        parent.kill()
        writer.kill()
    assert read_writer_status(settings.spool_dir())["state"] == "stopped"

    second = subprocess.Popen(
        [sys.executable, "-m", "fraudops.cli", "log-writer"], env=env, cwd=home
    )
    try:
        spool_some(settings, [lines(30, 10)])
        wait_for(lambda: len(lake_ids(settings)) == 40, "the second writer drained")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=WAIT_S) == 0
    finally:
        second.kill()
    assert lake_ids(settings) == sorted(f"inf-{i:06d}" for i in range(40))
    status = read_writer_status(settings.spool_dir())
    assert (status["state"], status["alive"]) == ("stopped", False)
    assert status["records_written"] == 40  # counted across writer restarts, for /metrics


def test_torn_and_corrupt_lines_are_quarantined_not_fatal(settings: Settings) -> None:
    directory = settings.spool_dir() / f"424242-{time.time_ns()}"  # a SIGKILLed server's
    directory.mkdir(parents=True)
    (directory / "lock").touch()
    good = lines(0, 4)
    (directory / "seg-00000001.open").write_bytes(
        good[0] + b"\x00\x00garbage\n" + b"".join(good[1:]) + good[0][:40]
    )
    writer = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    report = writer.drain()
    writer.directory.resign()
    assert (report.written, report.unreadable, report.segments) == (4, 2, 1)
    assert lake_ids(settings) == [f"inf-{i:06d}" for i in range(4)]
    [quarantined] = (settings.spool_dir() / REJECTED_DIR).iterdir()
    reasons = [orjson.loads(x)["reason"] for x in quarantined.read_bytes().splitlines()]
    assert reasons == ["corrupt line", "torn last line (process died while writing it)"]
    assert not directory.exists()  # the dead process directory is gone once drained


def test_existing_ids_looks_only_in_the_batch_days(settings: Settings) -> None:
    rows = [orjson.loads(x) for x in lines(0, 1_100)]  # more than one In filter's worth
    ids = [row["inference_id"] for row in rows]
    with PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink:
        assert sink.commit(rows).written == 1_100
        assert sink.existing_ids(ids) == set(ids)
        assert sink.existing_ids([*ids[:5], "never"], [rows[0]["request_time"]]) == set(ids[:5])
        times = [row["request_time"] for row in rows]
        assert sink.existing_ids(ids, times) == set(ids)
        later = [dt.datetime(2025, 6, 1, tzinfo=dt.UTC)]
        assert sink.existing_ids(ids[:5], later) == set()  # another day: not even looked at
        assert sink.existing_ids(ids, later) == set()
        again = sink.commit(rows[:10] + [orjson.loads(x) for x in lines(2_000, 2)], dedupe=True)
    assert (again.written, again.duplicates, again.rejected) == (2, 10, [])


def test_a_restarted_writer_still_refuses_a_replaced_table(settings: Settings) -> None:
    """The table the spool's records go to outlives the writer (its status file): a writer
    started after `predictions` was re-created stops too, and the server's readiness says so."""
    spool_some(settings, [lines(0, 10)])
    first = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    assert first.drain().written == 10
    first.close()
    with Lake.open(settings) as lake:
        before = lake.table_uuid("predictions")
        lake.catalog.drop_table(lake.identifier("predictions"))
        lake.init()
        after = lake.table_uuid("predictions")

    spool_some(settings, [lines(10, 10)])
    stop = threading.Event()
    second = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    thread = threading.Thread(target=second.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: read_writer_status(settings.spool_dir()).get("lake_state") == "replaced",
            "the writer stopped writing",
        )
        status = read_writer_status(settings.spool_dir())
        assert before in status["last_error"] and after in status["last_error"]
        with Spool.from_settings(settings) as spool:
            stats = spool.stats()
        assert stats.drainer_state == "replaced"
        watch = LakeWatch(settings, settings.feature_spec(), lambda: Lake.open(settings))
        watch.refresh()
        health = watch.health(stats)
        assert health.available is True and health.writing_stopped and not health.ok
        assert health.reason is not None and before in health.reason and after in health.reason
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert lake_ids(settings) == []  # the new table got nothing
    assert sum(len(read_segment(p).rows) for p in settings.spool_dir().glob("*/seg-*")) == 10
    third = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    with pytest.raises(TableReplacedError):
        third.drain()
    third.close()


def test_set_aside_records_are_counted_by_kind_up_to_metrics(settings: Settings) -> None:
    """A record edited in place, a corrupt line and a torn one: each set aside and counted by
    kind in the report, the writer status, the producer's stats and /metrics."""
    from fraudops.serving.metrics import ServerMetrics

    directory = settings.spool_dir() / f"434343-{time.time_ns()}"  # a SIGKILLed server's
    directory.mkdir(parents=True)
    (directory / "lock").touch()
    good = lines(0, 4)
    edited = good[2].replace(b'"prediction":1', b'"prediction":0')
    assert edited != good[2]
    (directory / "seg-00000001.open").write_bytes(
        good[0] + b"garbage\n" + good[1] + edited + good[3] + good[0][:40]
    )
    writer = SpoolWriter(settings, open_lake=Runtime(settings).lake_factory())
    report = writer.drain()
    writer.directory.resign()
    assert (report.written, report.unreadable) == (3, 3)
    assert (report.torn, report.corrupt, report.checksum) == (1, 1, 1)
    assert lake_ids(settings) == ["inf-000000", "inf-000001", "inf-000003"]  # not the edited
    status = read_writer_status(settings.spool_dir())
    assert (status["unreadable_torn"], status["unreadable_corrupt"]) == (1, 1)
    assert (status["unreadable_checksum"], status["torn"]) == (1, 3)
    stats = Spool.from_settings(settings).stats()  # what a server's /metrics reads
    assert stats.records_set_aside == {"torn": 1, "corrupt": 1, "checksum": 1, "invalid": 0}
    text = ServerMetrics(lambda: stats).render().decode()
    for reason in ("torn", "corrupt", "checksum"):
        assert f'fraudops_log_records_rejected_total{{reason="{reason}"}} 1.0' in text
    assert 'fraudops_log_records_rejected_total{reason="invalid"} 0.0' in text
