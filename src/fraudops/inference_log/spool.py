"""The local durable spool: append-only segment files, one directory per appending process.

Layout of a spool folder (``<home>/spool/<spec>`` by default)::

    writer.lock                          flock-held by the one process that drains this spool
    <pid>-<start_ns>/lock                flock-held by the appending process while it lives
    <pid>-<start_ns>/seg-00000001.open   the segment being appended to
                     seg-00000001.seg    sealed: complete, ready to drain
                     seg-00000001.drain  taken into a batch: its records may already be committed
    .rejected/<dir>-<segment>.jsonl      lines that could not be stored, with the reason

An append is one ``os.write`` of one JSON line (or of a micro-batch of lines): once it returns
the lines are in the page cache and survive a SIGKILL of the process. A background thread
fdatasyncs every few milliseconds (the power-loss window) and seals segments: full ones (an append
that fills a segment switches to a new one at once), and the open one once its first record is
``seal_age_s`` old and the previous sealed one has been taken: so a live
spool hands the writer a segment about every ``seal_age_s``, while a spool whose writer is down
grows big segments instead of thousands of small ones.
A process directory whose lock is free belongs to a dead process: the writer drains all of it,
including the unsealed segment, whose last line may be torn (detected and set aside).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudops.inference_log.base import ProducerStats
from fraudops.inference_log.records import PredictionRecord, encode
from fraudops.inference_log.spool_files import (
    LOCK_NAME,
    NEW_DIR_PREFIX,
    OPEN,
    SEALED,
    fsync_dir,
    read_writer_status,
    segment_name,
    spool_usage,
    try_lock,
)

if TYPE_CHECKING:
    from fraudops.config import Settings

log = logging.getLogger(__name__)

USAGE_SCAN_INTERVAL_S = 0.25
# /metrics' reasons for set-aside records -> the writer status counter of each.
SET_ASIDE_STATUS = {
    "torn": "unreadable_torn",
    "corrupt": "unreadable_corrupt",
    "checksum": "unreadable_checksum",
    "invalid": "rejected",
}
DROP_LOG_EVERY = 1000


class SpoolClosedError(RuntimeError):
    """append() was called before open() or after close(): a bug in the caller."""


@dataclass
class SpoolCounters:
    records_appended: int = 0
    records_dropped: int = 0
    bytes_appended: int = 0
    write_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


class Spool:
    """The appending side: this process's directory of segments.

    The spool backend's ``Producer``. Thread-safe: request threads append concurrently; a
    lock guards the segment swap so that no write ever goes to a closed (or reused) descriptor.
    Not fork-safe: open it in each worker.
    """

    backend = "spool"

    def __init__(
        self,
        spool_dir: Path,
        *,
        fsync_interval_s: float = 0.02,
        segment_max_bytes: int = 8 << 20,
        seal_age_s: float = 1.0,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.spool_dir = spool_dir
        self.fsync_interval_s = fsync_interval_s
        self.segment_max_bytes = segment_max_bytes
        self.seal_age_s = seal_age_s
        self.max_bytes = max_bytes
        self.counters = SpoolCounters()
        self.dir: Path | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._lock_fd = -1
        self._fd = -1
        self._seq = 0
        self._segment: Path | None = None
        self._segment_bytes = 0
        self._segment_first_write = 0.0  # monotonic time of the open segment's first record
        self._synced_bytes = 0
        self._broken = False  # a write failed part-way: no append until a new segment is open
        self._to_seal: list[tuple[int, Path, int]] = []
        self._last_sealed: Path | None = None
        self._usage_base = 0  # bytes of the whole spool at the last scan ...
        self._usage_since = 0  # ... plus what this process appended since
        self._next_scan = 0.0
        self._next_drop_log = 1

    @classmethod
    def from_settings(cls, settings: Settings, spec_name: str | None = None) -> Spool:
        """A (not yet opened) spool of ``spec_name`` configured from ``settings.serving``."""
        cfg = settings.serving
        return cls(
            settings.spool_dir(spec_name),
            fsync_interval_s=cfg.fsync_interval_s,
            segment_max_bytes=cfg.segment_max_bytes,
            seal_age_s=cfg.seal_age_s,
            max_bytes=cfg.spool_max_bytes,
        )

    # ---- life cycle ----------------------------------------------------------------------

    def open(self) -> Spool:
        if self._fd >= 0:
            return self
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{time.time_ns()}"
        # Created under a hidden name, locked, then renamed: a writer never sees it unlocked.
        staging = self.spool_dir / f"{NEW_DIR_PREFIX}{name}"
        staging.mkdir()
        self._lock_fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not try_lock(self._lock_fd):  # cannot happen for a fresh directory
            raise RuntimeError(f"spool directory {staging} is locked by another process")
        self.dir = self.spool_dir / name
        os.rename(staging, self.dir)
        self._fd, self._segment = self._new_segment()
        self._segment_bytes = self._synced_bytes = 0
        self._scan_usage()
        self._stop.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="spool-flusher", daemon=True)
        self._flusher.start()
        return self

    def close(self) -> None:
        """Seal the open segment and release the directory: the writer drains what is left."""
        if self._flusher is not None:
            self._stop.set()
            self._flusher.join()
            self._flusher = None
        with self._lock:
            fd, segment, size = self._fd, self._segment, self._segment_bytes
            self._fd, self._segment = -1, None
            if fd >= 0 and segment is not None:
                self._to_seal.append((fd, segment, size))
        self._seal_pending()
        if self.dir is not None:
            with contextlib.suppress(OSError):
                fsync_dir(self.dir)
        if self._lock_fd >= 0 and self.dir is not None:
            if not any(self.dir.glob("seg-*")):  # nothing left to drain: leave no trace
                with contextlib.suppress(OSError):
                    (self.dir / LOCK_NAME).unlink()
                    self.dir.rmdir()
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- hot path ------------------------------------------------------------------------

    def append(self, record: PredictionRecord) -> bool:
        """Write one record; False if it was dropped (spool full or disk error), counted."""
        return self.append_line(encode(record))

    def append_line(self, line: bytes) -> bool:
        """Write one newline-terminated JSON line (see :func:`records.encode`)."""
        return self.append_many((line,)) == 1

    def append_many(self, lines: Sequence[bytes]) -> int:
        """Write several newline-terminated lines in one ``os.write``; returns how many were kept.

        Near the bound only the lines that fit are kept (the first ones); the rest are dropped
        and counted. Never raises for a full spool or a disk error: the caller keeps serving.
        """
        if not lines:
            return 0
        for line in lines:
            if not line.endswith(b"\n"):  # the next record would be glued to this one
                raise ValueError("a spool line must end with a newline (use records.encode)")
        with self._lock:
            if self._fd < 0:
                raise SpoolClosedError("the inference log spool is not open")
            room = self.max_bytes - self._usage_base - self._usage_since
            fit = 0
            if not self._broken:
                for line in lines:
                    room -= len(line)
                    if room < 0:
                        break
                    fit += 1
            kept, error = self._write_locked(lines[:fit]) if fit else (0, None)
            if kept < len(lines):
                self.counters.records_dropped += len(lines) - kept
            dropped, broken = self.counters.records_dropped, self._broken
        if kept < len(lines):
            self._log_drop(dropped, error, broken)
        return kept

    def _write_locked(self, lines: Sequence[bytes]) -> tuple[int, OSError | None]:
        """(lines now in the segment, the error if the write failed)."""
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        written = 0
        error: OSError | None = None
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # only a full disk does this to a regular file
                raise OSError(f"short write: {written} of {len(data)} bytes")
        except OSError as exc:
            error = exc
        if written:
            if self._segment_bytes == 0:
                self._segment_first_write = time.monotonic()
            self._segment_bytes += written
            self._usage_since += written
            self.counters.bytes_appended += written
        # Complete lines of a short write are in the file and will be drained: they count.
        kept = len(lines) if error is None else data.count(b"\n", 0, written)
        self.counters.records_appended += kept
        if error is not None:
            # The segment may now end with a partial line: never append after it.
            self.counters.write_errors += 1
            self._note_error(f"spool write failed: {error}")
            self._rotate_locked()
        elif self._segment_bytes >= self.segment_max_bytes:
            # Only an open() here: the flusher syncs, closes and seals the full one.
            self._rotate_locked()
        return kept, error

    def _log_drop(self, dropped: int, error: OSError | None, broken: bool) -> None:
        if error is not None:
            log.error("inference log: records dropped, spool write failed: %s", error)
            return
        # The first drop, then one line per DROP_LOG_EVERY: a full spool must not flood the log.
        if dropped < self._next_drop_log:
            return
        self._next_drop_log = (dropped // DROP_LOG_EVERY + 1) * DROP_LOG_EVERY
        if broken:
            log.error(
                "inference log: spool %s has no writable segment (%s): dropping new records, "
                "%d dropped so far",
                self.spool_dir,
                self.counters.last_error,
                dropped,
            )
        else:
            log.warning(
                "inference log: spool %s is full (over spool_max_bytes=%d, writer behind or "
                "lake down): dropping new records, %d dropped so far",
                self.spool_dir,
                self.max_bytes,
                dropped,
            )

    def _note_error(self, message: str) -> None:
        self.counters.last_error = message
        self.counters.last_error_at = time.time()

    # ---- segments ------------------------------------------------------------------------

    def _new_segment(self) -> tuple[int, Path]:
        assert self.dir is not None
        self._seq += 1
        path = self.dir / segment_name(self._seq, OPEN)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        return os.open(path, flags, 0o644), path

    def _rotate_locked(self) -> None:
        """Swap in a new segment; the old one is sealed by the flusher, outside the lock."""
        try:
            fd, path = self._new_segment()
        except OSError as exc:
            self._broken = True
            self._note_error(f"cannot open a new spool segment: {exc}")
            return
        if self._segment is not None:
            self._to_seal.append((self._fd, self._segment, self._segment_bytes))
        self._fd, self._segment = fd, path
        self._segment_bytes, self._synced_bytes = 0, 0
        self._broken = False

    def _seal_pending(self) -> None:
        while True:
            with self._lock:  # request threads add to the list when a write fails
                if not self._to_seal:
                    return
                fd, path, size = self._to_seal.pop(0)
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self._note_error(f"spool fsync failed: {exc}")
            os.close(fd)
            if size == 0:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            sealed = path.with_suffix(SEALED)
            os.rename(path, sealed)
            self._last_sealed = sealed

    # ---- background: fsync, seal, usage ----------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.fsync_interval_s):
            try:
                self._tick()
            except Exception as exc:  # the flusher must outlive a transient disk error
                self._note_error(f"spool flusher: {exc}")
                log.exception("inference log: spool flusher failed")

    def _tick(self) -> None:
        with self._lock:
            fd, size, synced = self._fd, self._segment_bytes, self._synced_bytes
        if fd >= 0 and size > synced:
            # Safe outside the lock: only this thread closes a segment's descriptor.
            os.fdatasync(fd)
            with self._lock:
                if self._fd == fd:  # not rotated meanwhile (a new segment starts at 0)
                    self._synced_bytes = max(self._synced_bytes, size)
        with self._lock:
            if self._broken or self._should_seal():
                self._rotate_locked()
        if self._to_seal:
            self._seal_pending()
            if self.dir is not None:
                fsync_dir(self.dir)  # the new segment's name must outlive a power cut too
        if time.monotonic() >= self._next_scan:
            self._scan_usage()

    def _should_seal(self) -> bool:
        size = self._segment_bytes
        if size >= self.segment_max_bytes:
            return True
        if size == 0 or time.monotonic() - self._segment_first_write < self.seal_age_s:
            return False
        # Seal by age only once the writer took the previous one (see the module docstring).
        return self._last_sealed is None or not self._last_sealed.exists()

    def _scan_usage(self) -> None:
        since_before = self._usage_since
        total, _ = spool_usage(self.spool_dir)
        with self._lock:
            # Appends made during the scan may be counted twice: the bound errs on the safe side.
            self._usage_base = total
            self._usage_since -= since_before
        self._next_scan = time.monotonic() + USAGE_SCAN_INTERVAL_S

    def stats(self) -> ProducerStats:
        """This process's counters, the spool's size, and what its writer last reported."""
        c = self.counters
        writer = read_writer_status(self.spool_dir)
        written = writer.get("records_written")
        failing = writer.get("consecutive_failures") or 0
        pending = writer.get("pending_records")
        return ProducerStats(
            backend=self.backend,
            target=str(self.spool_dir),
            records_appended=c.records_appended,
            records_dropped=c.records_dropped,
            append_errors=c.write_errors,
            last_error=c.last_error,
            queue_bytes=self._usage_base + self._usage_since,
            queue_records=pending if isinstance(pending, int) else None,
            # Appended but not yet fdatasynced: what a power cut (not a crash) could lose.
            unsynced_bytes=self._segment_bytes - self._synced_bytes,
            max_bytes=self.max_bytes,
            records_written=written if isinstance(written, int) else None,
            drainer_error=writer.get("last_error") if failing else None,
            drainer_state=writer.get("lake_state"),
            **_drainer_figures(writer),
            records_set_aside={
                reason: count if isinstance(count := writer.get(key), int) else 0
                for reason, key in SET_ASIDE_STATUS.items()
            },
        )


def _drainer_figures(writer: dict[str, Any]) -> dict[str, Any]:
    """The writer status's commit and maintenance figures, as ProducerStats takes them."""
    out: dict[str, Any] = {}
    for key, kind in (
        ("commits", int),
        ("commit_seconds_p50", float),
        ("commit_seconds_p99", float),
        ("maintenance_runs", int),
        ("maintenance_files_removed", int),
        ("maintenance_last_run_at", float),
    ):
        value = writer.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = kind(value)
    return out
