"""The spool folder's layout and its draining side: segments, leadership, quarantine.

See ``spool.py`` for the layout and the appending side.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fraudops.inference_log.records import CHECKSUM_MISSING, TORN, read_line

OPEN, SEALED, DRAINING = ".open", ".seg", ".drain"
SEGMENT_SUFFIXES = (OPEN, SEALED, DRAINING)
LOCK_NAME = "lock"
WRITER_LOCK_NAME = "writer.lock"
REJECTED_DIR = ".rejected"
NEW_DIR_PREFIX = ".new-"
STALE_NEW_DIR_S = 60.0
STATUS_FILE = "writer-status.json"  # kept by the spool's writer, read by /metrics


def segment_name(seq: int, suffix: str) -> str:
    return f"seg-{seq:08d}{suffix}"


def try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SegmentRef:
    """One segment file; ``replay`` when a drain had already taken it (it may be committed)."""

    path: Path

    @property
    def state(self) -> str:
        return self.path.suffix

    @property
    def key(self) -> str:
        """Stable across renames: ``<process dir>/seg-<n>``."""
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def replay(self) -> bool:
        return self.state == DRAINING


@dataclass
class SegmentContent:
    lines: list[bytes] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[tuple[bytes, str]] = field(default_factory=list)


def read_segment(path: Path) -> SegmentContent:
    """The valid records of a segment, in order; a torn last line, corrupt lines and records
    whose checksum does not match set aside. A segment written before records carried a
    checksum is read as it is; in one whose records carry it, a line without it is set aside."""
    data = path.read_bytes()
    content = SegmentContent()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the segment ends with a complete line
    read = [(line, *read_line(line)) for line in lines]
    checked = any(status == "ok" for _, _, status in read)
    for line, row, status in read:
        if row is None:
            content.bad.append((line, status))
        elif status == "legacy" and checked:
            content.bad.append((line, CHECKSUM_MISSING))
        else:
            content.lines.append(line)
            content.rows.append(row)
    if tail:
        content.bad.append((tail, TORN))
    return content


def _process_dirs(spool_dir: Path) -> list[Path]:
    try:
        entries = [p for p in spool_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except FileNotFoundError:
        return []

    def started(path: Path) -> tuple[int, str]:
        _, _, ns = path.name.partition("-")
        return (int(ns) if ns.isdigit() else 0, path.name)

    return sorted(entries, key=started)


def _segments(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    try:
        return sorted(
            p for p in directory.iterdir() if p.suffix in suffixes and p.name.startswith("seg-")
        )
    except FileNotFoundError:
        return []


def spool_usage(spool_dir: Path) -> tuple[int, int]:
    """(bytes, segments) of every process directory of the spool."""
    total = count = 0
    for directory in _process_dirs(spool_dir):
        for path in _segments(directory, SEGMENT_SUFFIXES):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
                count += 1
    return total, count


class SpoolDirectory:
    """The draining side of a spool folder: leadership, ready segments, deletion, quarantine."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self._writer_fd = -1

    def lead(self) -> bool:
        """True while this object holds the spool's writer lock (one drainer per spool)."""
        if self._writer_fd >= 0:
            return True
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            self.spool_dir / WRITER_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        if try_lock(fd):
            self._writer_fd = fd
            return True
        os.close(fd)
        return False

    @property
    def leading(self) -> bool:
        """Whether this object holds the writer lock now (no attempt to take it)."""
        return self._writer_fd >= 0

    def resign(self) -> None:
        if self._writer_fd >= 0:
            os.close(self._writer_fd)
            self._writer_fd = -1

    def ready_segments(self) -> list[SegmentRef]:
        """Segments to drain, oldest process first: sealed ones of live processes, and every
        segment of dead ones. Empty directories of dead processes are removed."""
        ready: list[SegmentRef] = []
        for directory in _process_dirs(self.spool_dir):
            alive = self._alive(directory)
            if alive is None:
                continue
            suffixes = (DRAINING, SEALED) if alive else SEGMENT_SUFFIXES
            found = _segments(directory, suffixes)
            if not alive and not found:
                self._remove_dead_dir(directory)
            ready += [SegmentRef(p) for p in found]
        self._remove_stale_staging()
        return ready

    def _alive(self, directory: Path) -> bool | None:
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # being removed
        try:
            return not try_lock(fd)
        finally:
            os.close(fd)  # a dead process never comes back: no need to keep its lock

    def _remove_dead_dir(self, directory: Path) -> None:
        with contextlib.suppress(OSError):
            (directory / LOCK_NAME).unlink()
            directory.rmdir()

    def _remove_stale_staging(self) -> None:
        # A process killed between mkdir and rename leaves an empty hidden directory.
        now = time.time()
        for path in self.spool_dir.glob(f"{NEW_DIR_PREFIX}*"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_NEW_DIR_S:
                    for child in path.iterdir():
                        child.unlink()
                    path.rmdir()

    def take(self, ref: SegmentRef) -> SegmentRef:
        """Mark a segment as taken into a batch, durably, before anything is committed."""
        if ref.replay:
            return ref
        taken = ref.path.with_suffix(DRAINING)
        os.rename(ref.path, taken)
        fsync_dir(ref.path.parent)  # a committed batch must never come back as a fresh one
        return SegmentRef(taken)

    def remove(self, ref: SegmentRef) -> None:
        with contextlib.suppress(FileNotFoundError):
            ref.path.unlink()

    def quarantine(self, ref: SegmentRef, bad: list[tuple[bytes, str]]) -> None:
        """Keep lines that cannot be stored, with the reason, for a human to look at."""
        if not bad:
            return
        folder = self.spool_dir / REJECTED_DIR
        folder.mkdir(exist_ok=True)
        target = folder / f"{ref.key.replace('/', '-')}.jsonl"
        # Written whole (not appended): a replayed segment quarantines the same lines again.
        target.write_bytes(
            b"".join(
                orjson.dumps({"reason": reason, "line": line.decode("utf-8", "replace")}) + b"\n"
                for line, reason in bad
            )
        )

    def usage(self) -> tuple[int, int]:
        return spool_usage(self.spool_dir)


def read_writer_status(spool_dir: Path) -> dict[str, Any]:
    """The last status a writer of ``spool_dir`` wrote, with ``alive`` (its process exists).

    ``{"state": "absent", "alive": False}`` when no writer ever ran there.
    """
    try:
        status: dict[str, Any] = orjson.loads((spool_dir / STATUS_FILE).read_bytes())
    except FileNotFoundError:
        return {"state": "absent", "alive": False}
    except (OSError, orjson.JSONDecodeError):
        return {"state": "unreadable", "alive": False}
    pid = status.get("pid")
    status["alive"] = isinstance(pid, int) and pid_alive(pid) and status.get("state") != "stopped"
    return status


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
