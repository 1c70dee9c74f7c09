"""The inference log's two interfaces and the types they exchange.

A ``Producer`` is the request path's side: it takes a micro-batch of encoded records (see
``records.encode``) at once, says how many it kept, and never raises into a request. A
``Drainer`` is the other side: it moves what producers appended into the lake's ``predictions``
table, exactly once per record, and reports what it did in one ``DrainReport``. One file per
backend implements both (``spool.py`` + ``writer.py``; ``redis_producer.py`` +
``redis_consumer.py``); ``factory.py`` picks them from ``serving.log_backend``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, get_args

from fraudops.config import LogBackend
from fraudops.inference_log.records import CORRUPT, read_line, unreadable_kind

if TYPE_CHECKING:  # a producer never imports the drainers' lake side
    from fraudops.inference_log.upkeep import LogUpkeep
    from fraudops.lake.commits import CommitListeners

BACKENDS: tuple[str, ...] = get_args(LogBackend)


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """What one process's producer knows, for ``/metrics`` and ``/v1/model``: the same fields
    whatever the backend (None where the backend cannot tell)."""

    backend: str
    target: str | None = None  # the spool folder or the stream key
    records_appended: int = 0
    records_dropped: int = 0
    append_errors: int = 0
    last_error: str | None = None
    queue_bytes: int | None = None  # waiting for the lake (spool: on disk)
    queue_records: int | None = None  # waiting for the lake (stream: its length)
    unsynced_bytes: int | None = None  # appended, not yet fdatasynced (spool)
    max_bytes: int | None = None  # the bound past which records are dropped (spool)
    records_written: int | None = None  # committed to the lake by the drainer, if known here
    drainer_error: str | None = None  # the drainer's last failure while it keeps failing
    drainer_state: str | None = None  # ok | missing | replaced | no_space | failing | unknown
    # The drainer's commits and the lake maintenance it runs (spool: from its status file).
    commits: int | None = None
    commit_seconds_p50: float | None = None  # over its last 200 commits
    commit_seconds_p99: float | None = None
    maintenance_runs: int | None = None
    maintenance_files_removed: int | None = None
    maintenance_last_run_at: float | None = None  # epoch seconds
    # Records the drainer set aside, by reason (torn, corrupt, checksum, invalid), if known here.
    records_set_aside: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Producer(Protocol):
    """The request path's side of the inference log. Thread-safe."""

    backend: str

    def append_many(self, lines: Sequence[bytes]) -> int:
        """Append newline-terminated encoded records; how many were kept (the rest: counted
        as dropped). Never raises for an unavailable backend."""
        ...

    def stats(self) -> ProducerStats: ...

    def close(self) -> None: ...


@dataclass
class DrainReport:
    """What a drainer did: per drain, or its totals. Spool and Redis fill the same fields;
    ``segments`` is the spool's own, ``entries``/``reclaimed``/``trimmed`` the stream's."""

    source: str = ""  # the spool folder or the stream key
    consumer: str = ""  # the drainer's name (Redis consumer name; spool: empty)
    batches: int = 0  # lake commits
    records: int = 0  # valid records read
    written: int = 0  # rows appended to `predictions`
    duplicates: int = 0  # rows skipped: already in the lake, or repeated in the batch
    rejected: int = 0  # records the table's types refused (set aside)
    unreadable: int = 0  # torn or corrupt lines, entries that are not records (set aside)
    torn: int = 0  # of the unreadable: last lines a crash cut short
    corrupt: int = 0  # of the unreadable: not a JSON record
    checksum: int = 0  # of the unreadable: records changed after they were written
    replayed: int = 0  # batches committed with dedupe (they may have been committed before)
    commit_failures: int = 0
    last_error: str | None = None
    pending: int | None = None  # records (spool: segments) still waiting after the drain
    segments: int = 0  # spool segment files committed and removed
    entries: int = 0  # stream entries acknowledged, of every kind
    reclaimed: int = 0  # stream entries taken over from a dead consumer or an earlier life
    trimmed: int = 0  # pending stream entries whose data MAXLEN had already trimmed

    _COUNTS = (
        "batches",
        "records",
        "written",
        "duplicates",
        "rejected",
        "unreadable",
        "torn",
        "corrupt",
        "checksum",
        "replayed",
        "commit_failures",
        "segments",
        "entries",
        "reclaimed",
        "trimmed",
    )

    def add(self, other: DrainReport) -> None:
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.last_error:
            self.last_error = other.last_error

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Drainer(Protocol):
    """The lake's side of the inference log: exactly once into ``predictions``.

    ``drain`` settles everything available now and returns; ``run`` drains until ``stop`` is
    set, waiting out lake and backend outages (records stay where they are meanwhile). Both
    raise ``TableReplacedError`` when ``predictions`` is no longer the table they wrote to.
    """

    backend: str
    totals: DrainReport  # everything this drainer did since it was built
    listeners: CommitListeners  # told of each batch committed (runtime.py subscribes)
    upkeep: LogUpkeep  # commit latency; the log tables' maintenance, a subscriber

    def drain(self) -> DrainReport: ...

    def run(self, stop: threading.Event) -> DrainReport: ...

    def close(self) -> None: ...


@dataclass
class Batch:
    """Records taken from a backend and not yet settled: what the lake commit gets, and what
    is set aside. ``keys`` say where each line came from (a segment, a stream entry id)."""

    replay: bool = False  # may already be in the lake: committed with dedupe
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, bytes, str]] = field(default_factory=list)  # (key, raw, reason)

    def add_line(self, key: str, raw: bytes) -> None:
        row, status = read_line(raw)
        if row is None:
            reason = "not a JSON record with an inference_id" if status == CORRUPT else status
            self.add_unreadable(key, raw, reason)
        else:
            self.add_row(key, raw, row)

    def add_row(self, key: str, raw: bytes, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.lines.append(raw)
        self.keys.append(key)

    def add_unreadable(self, key: str, raw: bytes, reason: str) -> None:
        self.unreadable.append((key, raw, reason))

    def count_unreadable(self, report: DrainReport) -> DrainReport:
        """``report`` with its ``unreadable`` lines counted by kind (torn, corrupt, checksum)."""
        for _, _, reason in self.unreadable:
            kind = unreadable_kind(reason)
            setattr(report, kind, getattr(report, kind) + 1)
        return report

    def set_aside(self, rejected: Sequence[tuple[int, str]]) -> list[tuple[str, bytes, str]]:
        """Unreadable lines plus the rows the commit rejected (by index), as (key, raw, reason)."""
        return [
            *self.unreadable,
            *((self.keys[index], self.lines[index], reason) for index, reason in rejected),
        ]
