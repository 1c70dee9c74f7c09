"""The local durable spool: appending side (segments, sealing, fsync, bound) and draining side."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from fraudops.config import load_settings
from fraudops.inference_log.records import CHECKSUM_MISMATCH, CHECKSUM_MISSING, encode
from fraudops.inference_log.spool import Spool, SpoolClosedError
from fraudops.inference_log.spool_files import (
    DRAINING,
    OPEN,
    REJECTED_DIR,
    SEALED,
    SpoolDirectory,
    read_segment,
)
from fraudops.spec import BUILTIN_SPECS
from tests import waiting
from tests.unit.test_inference_log_records import make_record

WAIT_S = 10.0  # a bound on waiting for the background thread, never an assertion


def line(i: int, pad: int = 0) -> bytes:
    return orjson.dumps({"inference_id": f"id-{i:06d}", "n": i, "pad": "x" * pad}) + b"\n"


def wait_for(condition: Callable[[], bool], what: str = "the spool's background work") -> None:
    waiting.wait_for(condition, what, timeout=WAIT_S, poll=0.01)


def flusher_ticked(spool: Spool, i: int) -> None:
    """Return once a whole flusher tick ran after this call: line ``i``, appended now, can only be
    synced by a tick that starts after it, so the tick that might have been midway is over."""
    spool.append_line(line(i))
    wait_for(lambda: spool.stats().unsynced_bytes == 0, f"line {i} synced")


def segments(spool_dir: Path, suffix: str | None = None) -> list[Path]:
    found = sorted(spool_dir.glob("*/seg-*"))
    return [p for p in found if suffix is None or p.suffix == suffix]


def ids_in(paths: list[Path]) -> list[str]:
    return [row["inference_id"] for p in paths for row in read_segment(p).rows]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "transactions30"


@pytest.fixture
def make_spool(spool_dir: Path) -> Iterator[Callable[..., Spool]]:
    opened: list[Spool] = []

    def make(**options: float) -> Spool:
        options.setdefault("seal_age_s", 3600.0)  # tests that want age sealing say so
        spool = Spool(spool_dir, **options).open()  # type: ignore[arg-type]
        opened.append(spool)
        return spool

    yield make
    for spool in opened:
        spool.close()


def test_append_writes_lines_that_close_seals(make_spool: Callable[..., Spool]) -> None:
    spool = make_spool()
    assert spool.dir is not None and spool.dir.parent.name == "transactions30"
    assert spool.append_line(line(0)) is True
    assert spool.append_many([line(1), line(2), line(3)]) == 3
    [open_segment] = segments(spool.spool_dir, OPEN)
    assert ids_in([open_segment]) == ["id-000000", "id-000001", "id-000002", "id-000003"]

    spool.close()
    [sealed] = segments(spool.spool_dir)
    assert sealed.suffix == SEALED
    assert ids_in([sealed]) == [f"id-{i:06d}" for i in range(4)]
    assert spool.stats().records_appended == 4


def test_from_settings_uses_the_serving_section(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "h", serving={"segment_max_bytes": 1234, "spool_max_bytes": 99_999}
    )
    spool = Spool.from_settings(settings, "ulb")
    assert spool.spool_dir == tmp_path / "h" / "spool" / "ulb"
    assert (spool.segment_max_bytes, spool.max_bytes) == (1234, 99_999)


def test_misuse_is_refused(make_spool: Callable[..., Spool], spool_dir: Path) -> None:
    spool = make_spool()
    with pytest.raises(ValueError, match="newline"):
        spool.append_many([line(0), b'{"inference_id": "glued"}'])
    assert spool.stats().records_appended == 0
    spool.close()
    with pytest.raises(SpoolClosedError):
        spool.append_line(line(1))
    with pytest.raises(SpoolClosedError):
        Spool(spool_dir).append_line(line(1))


def test_close_with_nothing_written_leaves_no_trace(make_spool: Callable[..., Spool]) -> None:
    spool = make_spool()
    spool.close()
    assert [p for p in spool.spool_dir.iterdir() if not p.name.startswith(".")] == []


def test_segments_rotate_by_size(make_spool: Callable[..., Spool]) -> None:
    spool = make_spool(segment_max_bytes=1000)
    for i in range(40):  # ~100 bytes each: the append that fills a segment starts the next
        spool.append_line(line(i, pad=60))
    spool.close()
    sealed = segments(spool.spool_dir, SEALED)
    assert len(sealed) >= 4
    assert ids_in(sealed) == [f"id-{i:06d}" for i in range(40)]  # order kept across segments


def test_segments_seal_by_age_once_the_previous_was_taken(
    make_spool: Callable[..., Spool],
) -> None:
    spool = make_spool(seal_age_s=0.05, fsync_interval_s=0.005)
    spool.append_line(line(0))
    wait_for(lambda: len(segments(spool.spool_dir, SEALED)) == 1)
    [first] = segments(spool.spool_dir, SEALED)

    spool.append_line(line(1))
    appended = time.monotonic()
    wait_for(lambda: time.monotonic() - appended > 2 * 0.05, "the second segment due by age")
    flusher_ticked(spool, 2)  # a flusher tick that saw it due: it would have sealed it then
    assert segments(spool.spool_dir, SEALED) == [first]  # not while the first one waits

    directory = SpoolDirectory(spool.spool_dir)
    assert directory.lead()
    taken = directory.take(directory.ready_segments()[0])
    wait_for(lambda: len(segments(spool.spool_dir, SEALED)) == 1)
    assert ids_in(segments(spool.spool_dir, SEALED)) == ["id-000001", "id-000002"]
    assert taken.path.suffix == DRAINING and ids_in([taken.path]) == ["id-000000"]


def test_the_flusher_syncs_appended_bytes(make_spool: Callable[..., Spool]) -> None:
    spool = make_spool(fsync_interval_s=0.005)
    spool.append_many([line(i) for i in range(10)])
    assert spool.stats().queue_bytes >= 10 * len(line(0))
    wait_for(lambda: spool.stats().unsynced_bytes == 0)


def test_the_bound_drops_new_records_counted_and_logged(
    make_spool: Callable[..., Spool], caplog: pytest.LogCaptureFixture
) -> None:
    size = len(line(0))
    spool = make_spool(max_bytes=size * 5)
    caplog.set_level(logging.WARNING, logger="fraudops.inference_log.spool")

    assert spool.append_many([line(i) for i in range(3)]) == 3
    assert spool.append_many([line(i) for i in range(3, 6)]) == 2  # only what fits is kept
    assert spool.append_line(line(6)) is False
    assert spool.append(_any_record()) is False

    stats = spool.stats()
    assert stats.records_appended == 5
    assert stats.records_dropped == 3
    assert any("is full" in r.message and "dropped so far" in r.message for r in caplog.records)
    spool.close()
    assert ids_in(segments(spool.spool_dir)) == [f"id-{i:06d}" for i in range(5)]


def test_the_bound_counts_other_processes_segments(
    make_spool: Callable[..., Spool], spool_dir: Path
) -> None:
    size = len(line(0))
    dead = _dead_process_dir(spool_dir, [line(i) for i in range(4)])
    assert dead.exists()
    spool = make_spool(max_bytes=size * 5)
    assert spool.append_many([line(i) for i in range(5, 8)]) == 1


def test_threads_appending_concurrently_lose_and_mix_nothing(
    make_spool: Callable[..., Spool],
) -> None:
    spool = make_spool(segment_max_bytes=4000, fsync_interval_s=0.001)
    threads, per_thread = 8, 400

    def work(t: int) -> None:
        for k in range(0, per_thread, 4):
            base = t * 10_000 + k
            if k % 8:
                assert spool.append_many([line(base + j) for j in range(4)]) == 4
            else:
                for j in range(4):
                    assert spool.append_line(line(base + j))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    spool.close()

    sealed = segments(spool.spool_dir)
    assert len(sealed) > 1  # rotation happened under the appends
    assert all(not read_segment(p).bad for p in sealed)
    ids = ids_in(sealed)
    assert len(ids) == len(set(ids)) == threads * per_thread
    for t in range(threads):  # each thread's records stay in its order
        mine = [i for i in ids if int(i[3:]) // 10_000 == t]
        assert mine == sorted(mine)


# ---- the draining side ---------------------------------------------------------------------


def _dead_process_dir(spool_dir: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    """What a SIGKILLed server leaves: an unlocked process directory with an open segment."""
    directory = spool_dir / f"999999-{time.time_ns()}"
    directory.mkdir(parents=True)
    (directory / "lock").touch()
    (directory / "seg-00000001.seg").write_bytes(b"".join(lines[:2]))
    (directory / "seg-00000002.open").write_bytes(b"".join(lines[2:]) + tail)
    return directory


def test_a_dead_process_directory_is_drained_whole(spool_dir: Path) -> None:
    dead = _dead_process_dir(
        spool_dir, [line(i) for i in range(5)], tail=b'{"inference_id": "id-00'
    )
    directory = SpoolDirectory(spool_dir)
    ready = directory.ready_segments()
    assert [r.path.name for r in ready] == ["seg-00000001.seg", "seg-00000002.open"]

    content = read_segment(ready[1].path)
    assert [r["inference_id"] for r in content.rows] == ["id-000002", "id-000003", "id-000004"]
    [(torn, reason)] = content.bad
    assert torn == b'{"inference_id": "id-00' and "torn" in reason

    for ref in ready:
        directory.remove(directory.take(ref))
    assert directory.ready_segments() == []
    assert not dead.exists()  # an empty dead directory is removed


def test_a_live_process_hands_over_only_sealed_segments(
    make_spool: Callable[..., Spool], spool_dir: Path
) -> None:
    spool = make_spool()
    spool.append_line(line(0))
    directory = SpoolDirectory(spool_dir)
    assert directory.ready_segments() == []
    spool.close()  # releases the directory: its last segment is now ready
    assert [r.state for r in directory.ready_segments()] == [SEALED]


def test_take_is_durable_and_marks_a_replay(spool_dir: Path) -> None:
    _dead_process_dir(spool_dir, [line(i) for i in range(3)])
    directory = SpoolDirectory(spool_dir)
    first = directory.ready_segments()[0]
    assert not first.replay
    taken = directory.take(first)
    assert taken.replay and taken.key == first.key
    # A crash now: the next drainer sees the segment as possibly committed.
    assert [r.replay for r in SpoolDirectory(spool_dir).ready_segments()] == [True, False]
    assert directory.take(taken) == taken


def test_one_drainer_per_spool(spool_dir: Path) -> None:
    first, second = SpoolDirectory(spool_dir), SpoolDirectory(spool_dir)
    assert first.lead() and first.leading
    assert not second.lead() and not second.leading
    first.resign()
    assert second.lead()
    second.resign()


def test_corrupt_lines_are_set_aside_and_quarantine_is_idempotent(spool_dir: Path) -> None:
    directory = _dead_process_dir(spool_dir, [line(0), b"garbage\n", line(2)])
    drain = SpoolDirectory(spool_dir)
    ref = drain.ready_segments()[0]
    content = read_segment(ref.path)
    assert [r["inference_id"] for r in content.rows] == ["id-000000"]
    assert content.bad == [(b"garbage", "corrupt line")]
    drain.quarantine(ref, content.bad)
    drain.quarantine(ref, content.bad)  # a replay of the same segment
    [kept] = (spool_dir / REJECTED_DIR).iterdir()
    assert kept.name == f"{directory.name}-seg-00000001.jsonl"
    assert [orjson.loads(x) for x in kept.read_bytes().splitlines()] == [
        {"reason": "corrupt line", "line": "garbage"}
    ]


def test_stale_staging_directories_are_removed(spool_dir: Path) -> None:
    stale = spool_dir / ".new-1-2"
    stale.mkdir(parents=True)
    (stale / "lock").touch()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    SpoolDirectory(spool_dir).ready_segments()
    assert not stale.exists()


def _any_record():  # type: ignore[no-untyped-def]
    from fraudops.spec import BUILTIN_SPECS
    from tests.unit.test_inference_log_records import make_record

    return make_record(BUILTIN_SPECS["transactions30"])


def test_a_record_edited_in_place_is_set_aside_by_its_checksum(spool_dir: Path) -> None:
    spec = BUILTIN_SPECS["transactions30"]
    good = [encode(make_record(spec, i, inference_id=f"inf-{i}")) for i in range(4)]
    edited = good[1].replace(b'"prediction":1', b'"prediction":0')
    _dead_process_dir(spool_dir, [good[0], edited, good[2], good[3]])
    directory = SpoolDirectory(spool_dir)
    by_name = {ref.path.name: read_segment(ref.path) for ref in directory.ready_segments()}
    first = by_name["seg-00000001.seg"]
    assert [r["inference_id"] for r in first.rows] == ["inf-0"]
    assert first.bad == [(edited[:-1], CHECKSUM_MISMATCH)]
    assert [r["inference_id"] for r in by_name["seg-00000002.open"].rows] == ["inf-2", "inf-3"]


def test_segments_written_before_the_checksum_are_read_and_mixing_is_refused(
    spool_dir: Path,
) -> None:
    legacy = [line(i) for i in range(3)]  # what an older release wrote: no checksum
    spec = BUILTIN_SPECS["transactions30"]
    checked = encode(make_record(spec, 9, inference_id="inf-9"))
    _dead_process_dir(spool_dir, [legacy[0], legacy[1], checked, legacy[2]])
    directory = SpoolDirectory(spool_dir)
    old, mixed = (read_segment(ref.path) for ref in directory.ready_segments())
    assert [r["inference_id"] for r in old.rows] == ["id-000000", "id-000001"] and not old.bad
    # A line without a checksum among lines that carry one was not written so: set aside.
    assert [r["inference_id"] for r in mixed.rows] == ["inf-9"]
    assert mixed.bad == [(legacy[2][:-1], CHECKSUM_MISSING)]
