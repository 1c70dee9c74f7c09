"""The spool writer: drains the local inference-log spool into the lake's ``predictions`` table.

One writer per spool folder (the ``writer.lock`` flock); a second one waits on standby. A batch is
a run of whole segments: they are renamed ``.drain`` (durably) before the commit and deleted only
after it, so a crash anywhere leaves either uncommitted segments or ``.drain`` segments whose
rows may already be in the lake. Those, and the first batch of every writer, are committed with
``dedupe=True``: every record that reached the spool lands in ``predictions`` exactly once.
Lines that cannot be stored (torn by a crash, corrupt, untypable) go to ``.rejected/``, counted.

The writer keeps ``writer-status.json`` in the spool folder up to date for the server's /metrics.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from fraudops.config import Settings
from fraudops.errors import FraudopsError, LakeError
from fraudops.inference_log.base import Batch, DrainReport
from fraudops.inference_log.sink import PredictionSink
from fraudops.inference_log.spool_files import (
    OPEN,
    REJECTED_DIR,
    STATUS_FILE,
    SegmentRef,
    SpoolDirectory,
    pid_alive,
    read_segment,
    read_writer_status,
)
from fraudops.inference_log.upkeep import NO_SPACE, LogUpkeep, is_no_space
from fraudops.lake.catalog import LakeMissingError, TableReplacedError
from fraudops.lake.commits import CommitListeners, Committed
from fraudops.lake.schemas import PREDICTIONS

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0  # status refresh while idle
STANDBY_POLL_S = 1.0  # how often a standby writer tries to take the lead
INITIAL_BYTES_PER_ROW = 1024.0  # pending-records estimate before the first drain measured it
MISSING_LOG_EVERY_S = 30.0  # a lake that stays missing is said again this often


# Status counter -> DrainReport field. Counted over every writer this spool had.
_COUNTERS = {
    "records_written": "written",
    "duplicates_skipped": "duplicates",
    "rejected": "rejected",
    "torn": "unreadable",  # every unreadable line (its name predates the kinds below)
    "unreadable_torn": "torn",
    "unreadable_corrupt": "corrupt",
    "unreadable_checksum": "checksum",
    "segments_drained": "segments",
    "commits": "batches",
}


class WriterBusyError(FraudopsError):
    """Another writer holds this spool's lock."""


class SpoolWriter:
    """The spool backend's ``Drainer``: one spec's spool folder into its ``predictions``."""

    backend = "spool"

    def __init__(
        self,
        settings: Settings,
        spec_name: str | None = None,
        *,
        open_lake: Callable[[], Lake],
        listeners: CommitListeners | None = None,
    ) -> None:
        """``open_lake``: opens a new lake client of the spec (``Runtime.lake_factory``)."""
        self.settings = settings
        self.spec_name = settings.feature_spec(spec_name).name
        self.spool_dir = settings.spool_dir(spec_name)
        self.directory = SpoolDirectory(self.spool_dir)
        self.sink = PredictionSink(settings, spec_name, open_lake=open_lake)
        # Told of every batch committed (the aggregates, maintenance: runtime.py subscribes).
        self.listeners = listeners if listeners is not None else CommitListeners()
        self.upkeep = LogUpkeep(settings, self.spec_name, open_lake)  # commit latency, maintenance
        cfg = settings.serving
        self.batch_rows = cfg.writer_batch_rows
        self.batch_age_s = cfg.writer_batch_age_s
        self.retry_s = cfg.writer_retry_s
        self.totals = DrainReport(source=str(self.spool_dir))
        self._first_batch = True
        self._bytes_per_row = INITIAL_BYTES_PER_ROW
        self._started_at = _now()
        self._last_commit_at: str | None = None
        self._last_error: str | None = None
        self._last_error_at: str | None = None
        self._failures = 0  # consecutive failed commits
        self._state = "starting"
        self._lake_state = "unknown"  # ok | missing | replaced | failing
        self._base: dict[str, int] = {}  # counters of the writers before this one (cumulative)

    # ---- one batch -----------------------------------------------------------------------

    def lead(self) -> bool:
        """Take (or keep) the spool's writer lock; False while another writer holds it."""
        if not self.directory.lead():
            return False
        if self._state in ("starting", "standby"):
            # The status counters go on from the previous writer's: /metrics sees counters.
            previous = read_writer_status(self.spool_dir)
            self._base = {k: v for k, v in previous.items() if k in _COUNTERS and type(v) is int}
            self.upkeep.carry_on(previous)
            # The table the spool's records have been going to, across writer restarts.
            if self.sink.table_uuid is None and isinstance(previous.get("table_uuid"), str):
                self.sink.table_uuid = previous["table_uuid"]
            self._state = "running"
        return True

    def close(self) -> None:
        """Leave a final status, release the spool and the lake."""
        if self.directory.leading:
            self._state = "stopped"
            self.write_status()
        self.directory.resign()
        self.sink.close()
        self.listeners.close()

    def drain_batch(self) -> DrainReport:
        """Commit one batch of ready segments (up to ``writer_batch_rows`` records).

        Returns an empty report when nothing is ready. Raises LakeError (segments kept, retried
        by the next call; TableReplacedError: the table is another one) and WriterBusyError.
        """
        self._require_lead()
        found = self._next_batch(self.directory.ready_segments())
        if found is None:
            return DrainReport(source=str(self.spool_dir))
        refs, batch, size = found
        # A `.drain` segment was taken before a crash or a failed commit: it may be in the lake.
        batch.replay = self._first_batch or any(ref.replay for ref in refs)
        taken = [self.directory.take(ref) for ref in refs]
        started = time.perf_counter()
        try:
            commit = self.sink.commit(
                batch.rows,
                dedupe=batch.replay,
                snapshot_properties={
                    "fraudops.source": "spool",
                    "fraudops.segments": str(len(taken)),
                },
            )
        except LakeError as exc:
            self._note_failure(exc)
            raise
        self.upkeep.committed(started)
        self._first_batch = False
        self._failures = 0
        self._lake_state = "ok"
        report = DrainReport(
            source=str(self.spool_dir),
            segments=len(taken),
            records=len(batch.rows),
            written=commit.written,
            duplicates=commit.duplicates,
            rejected=len(commit.rejected),
            unreadable=len(batch.unreadable),
            batches=1,
            replayed=int(batch.replay),
        )
        batch.count_unreadable(report)
        self._set_aside(taken, batch, commit.rejected)
        for ref in taken:
            self.directory.remove(ref)
        if batch.rows:
            self._bytes_per_row = size / len(batch.rows)
        self.totals.add(report)
        self._last_commit_at = _now()
        log.info(
            "inference log: %d row(s) committed to %s.predictions from %d segment(s)"
            " (%d duplicate(s), %d rejected, %d torn)%s",
            report.written,
            self.spec_name,
            report.segments,
            report.duplicates,
            report.rejected,
            report.unreadable,
            " [replay, deduplicated]" if batch.replay else "",
        )
        self.write_status()
        # Best effort, after the segments are settled.
        self.listeners.publish(Committed(self.spec_name, PREDICTIONS, report.written))
        return report

    def drain(self) -> DrainReport:
        """Drain batch after batch until nothing is ready (dead processes' segments included).

        A failed commit ends the drain: its segments stay, counted in ``commit_failures`` with
        ``last_error``. Raises TableReplacedError and WriterBusyError.
        """
        total = DrainReport(source=str(self.spool_dir))
        while True:
            try:
                report = self.drain_batch()
            except TableReplacedError:
                raise
            except LakeError as exc:
                total.commit_failures += 1
                total.last_error = str(exc)
                break
            if report.segments == 0:
                break
            total.add(report)
        total.pending = self.directory.usage()[1]
        return total

    def _require_lead(self) -> None:
        if not self.lead():
            owner = read_writer_status(self.spool_dir).get("pid")
            raise WriterBusyError(
                f"another log writer{f' (pid {owner})' if owner else ''} is draining spool "
                f"{self.spool_dir}"
            )

    def _next_batch(self, ready: list[SegmentRef]) -> tuple[list[SegmentRef], Batch, int] | None:
        """Whole segments, oldest first, while they fit in ``writer_batch_rows`` (at least one:
        a segment bigger than a batch, bounded by ``segment_max_bytes``, is committed whole)."""
        refs: list[SegmentRef] = []
        batch = Batch()
        size = 0
        for ref in ready:
            try:
                content = read_segment(ref.path)
                segment_bytes = ref.path.stat().st_size
            except FileNotFoundError:  # its (closing) process removed an empty one
                continue
            if refs and len(batch.rows) + len(content.rows) > self.batch_rows:
                break
            refs.append(ref)
            for line, row in zip(content.lines, content.rows, strict=True):
                batch.add_row(ref.key, line, row)
            for line, reason in content.bad:
                batch.add_unreadable(ref.key, line, reason)
            size += segment_bytes
        return (refs, batch, size) if refs else None

    def _set_aside(
        self, taken: list[SegmentRef], batch: Batch, rejected: list[tuple[int, str]]
    ) -> None:
        by_segment: dict[str, list[tuple[bytes, str]]] = {}
        for key, line, reason in batch.set_aside(rejected):
            by_segment.setdefault(key, []).append((line, reason))
        for ref in taken:
            bad = by_segment.get(ref.key)
            if bad:
                self.directory.quarantine(ref, bad)
                log.warning(
                    "inference log: %d line(s) of %s set aside in %s: %s",
                    len(bad),
                    ref.key,
                    self.spool_dir / REJECTED_DIR,
                    bad[0][1],
                )

    def _note_failure(self, exc: Exception) -> None:
        self._failures += 1
        self.totals.commit_failures += 1
        self.totals.last_error = self._last_error = str(exc)
        self._last_error_at = _now()
        if isinstance(exc, TableReplacedError):
            self._lake_state = "replaced"
        elif isinstance(exc, LakeMissingError):
            self._lake_state = "missing"
        elif is_no_space(exc):
            self._lake_state = NO_SPACE
        else:
            self._lake_state = "failing"
        self.write_status()

    # ---- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, parent_pid: int | None = None) -> DrainReport:
        """Drain until ``stop`` is set or process ``parent_pid`` is gone, then drain once more.

        A batch is committed when it is full or its oldest record waited ``writer_batch_age_s``.
        A failed commit is logged and retried after ``writer_retry_s``; the loop never dies of
        one. A missing lake is said loudly and waited for. A replaced ``predictions`` table
        stops the writing for good (the spool keeps the records; the status and the server's
        /readyz say which tables): the loop then only keeps its status until stopped.
        Returns the totals of this writer.
        """
        watch = _ParentWatch(parent_pid) if parent_pid else None
        poll = min(0.1, self.batch_age_s / 4)
        next_status = 0.0
        next_missing_log = 0.0
        try:
            while not stop.is_set():
                if watch is not None and watch.gone():
                    log.info("inference log: server process %d is gone, stopping", parent_pid)
                    break
                if not self.lead():
                    if self._state != "standby":
                        log.info(
                            "inference log: another writer drains %s, standing by", self.spool_dir
                        )
                    self._state = "standby"  # the leader owns the status file meanwhile
                    stop.wait(STANDBY_POLL_S)
                    continue
                if self._lake_state == "replaced":
                    self.write_status()
                    stop.wait(STATUS_EVERY_S)
                    continue
                try:
                    if self._due(self.directory.ready_segments()):
                        self.drain_batch()
                        continue  # more may be ready right away
                except TableReplacedError as exc:
                    log.error("inference log: %s; spool %s", exc, self.spool_dir)
                    continue
                except LakeMissingError as exc:
                    if time.monotonic() >= next_missing_log:
                        log.error(
                            "inference log: THE LAKE IS MISSING (%s); the spool %s keeps the "
                            "records, retrying every %.1fs",
                            exc,
                            self.spool_dir,
                            self.retry_s,
                        )
                        next_missing_log = time.monotonic() + MISSING_LOG_EVERY_S
                    stop.wait(self.retry_s)
                    continue
                except LakeError as exc:
                    log.log(
                        logging.ERROR if self._lake_state == NO_SPACE else logging.WARNING,
                        "inference log: %slake commit failed (%s); retrying in %.1fs, the spool "
                        "keeps the records",
                        "THE LAKE'S DISK IS FULL: " if self._lake_state == NO_SPACE else "",
                        exc,
                        self.retry_s,
                    )
                    stop.wait(self.retry_s)
                    continue
                except Exception as exc:  # a full disk, a bug: log it, keep the writer alive
                    log.exception("inference log: drain failed")
                    self._note_failure(exc)
                    stop.wait(self.retry_s)
                    continue
                if time.monotonic() >= next_status:
                    self.write_status()
                    next_status = time.monotonic() + STATUS_EVERY_S
                stop.wait(poll)
            self._final_drain()
        finally:
            self.close()
        return self.totals

    def _final_drain(self) -> None:
        if not self.directory.leading or self._lake_state == "replaced":
            return
        try:
            report = self.drain()
        except TableReplacedError as exc:
            log.error("inference log: final drain: %s", exc)
            return
        if report.commit_failures:
            log.warning(
                "inference log: final drain failed (%s); the spool keeps the records",
                report.last_error,
            )

    def _due(self, ready: list[SegmentRef]) -> bool:
        if not ready:
            return False
        if any(ref.replay or ref.state == OPEN for ref in ready):
            return True  # a retry, or a dead process's leftovers: nothing to wait for
        size = 0
        oldest = time.time()
        for ref in ready:
            with contextlib.suppress(FileNotFoundError):
                stat = ref.path.stat()
                size += stat.st_size
                # A segment's last write is no older than its first record: a safe lower bound.
                oldest = min(oldest, stat.st_mtime)
        return size / self._bytes_per_row >= self.batch_rows or (
            time.time() - oldest >= self.batch_age_s
        )

    # ---- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        pending_bytes, pending_segments = self.directory.usage()
        return {
            "pid": os.getpid(),
            "spec": self.spec_name,
            "spool_dir": str(self.spool_dir),
            "state": self._state,
            "started_at": self._started_at,
            "updated_at": _now(),
            **{
                key: self._base.get(key, 0) + getattr(self.totals, field)
                for key, field in _COUNTERS.items()
            },
            "last_commit_at": self._last_commit_at,
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
            "consecutive_failures": self._failures,
            "lake_state": self._lake_state,
            "table_uuid": self.sink.table_uuid,
            "pending_bytes": pending_bytes,
            "pending_segments": pending_segments,
            # Estimated from the bytes per record of the last batch: counting lines costs a read.
            "pending_records": round(pending_bytes / self._bytes_per_row),
            **self.upkeep.status(),
        }

    def write_status(self) -> None:
        """Replace the status file atomically (a reader never sees half of it)."""
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            target = self.spool_dir / STATUS_FILE
            tmp = target.with_name(f".{STATUS_FILE}.{os.getpid()}")
            tmp.write_bytes(orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))
            os.replace(tmp, target)
        except OSError:  # the status is for show: never let it stop a drain
            log.warning("inference log: cannot write the writer status", exc_info=True)


class _ParentWatch:
    """Whether the process that started us has died (it may not get to tell us)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.was_child = os.getppid() == pid

    def gone(self) -> bool:
        # A dead parent is re-parented away at once; os.kill alone would still see a zombie.
        if self.was_child and os.getppid() != self.pid:
            return True
        return not pid_alive(self.pid)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
