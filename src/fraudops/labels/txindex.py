"""Which days hold a transaction id: a persisted index over ``predictions``.

A transaction id carries no time (an inference id does: a UUIDv7), so without an index a look-up
by transaction id reads every day partition — it slows with the table's history. Label
ingestion (events keyed by ``transaction_id`` alone) and the dashboard's Lookup page share this
index: a 64-bit hash of every logged transaction id with the day it was logged (12 bytes a
prediction: 120 MB at 10M), sorted, in a few segment files under
``<home>/index/<spec>/predictions-<table uuid>/`` that are memory-mapped, so a look-up touches a
few pages per id and opening the index costs milliseconds whatever its size.

Why persisted rather than only in memory: label events arrive through short processes too
(``fraudops labels load``), and a per-process index costs a read of the whole table at every
start (the dashboard's start-up build, ~4 s at 10M) — the very scan the index exists to avoid.
Why files next to the lake and not an Iceberg table: a batch of random ids hits every file of a
table, whereas a sorted array answers each id by binary search.

Kept up to date by whoever uses it, under a file lock (one updater at a time; readers of
a loaded index don't wait): the data files appended since the indexed snapshot are read (two
columns), one segment is added; small segments are merged when there are more than
``MERGE_AT_SEGMENTS``. When the snapshot history no longer leads back to the indexed snapshot
(snapshots expired by maintenance, a compaction, an overwrite), the data files the index has not
seen are read instead. The index is a superset: a hash collision or a row deleted since costs
one more day read, never a wrong answer (the scan still filters on the id); a hash found nowhere
is "no such prediction" without a read. Another table uuid (the table was replaced) or another
hash function (a duckdb upgrade) rebuilds it; the folders of replaced tables are deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import FileScanTask, Table

from fraudops.aggregates.watermark import AggregatesStaleError, Watermark, new_appends
from fraudops.lake.schemas import PREDICTIONS_PARTITION_SOURCE

log = logging.getLogger(__name__)

ID_COLUMN = "transaction_id"
COLUMNS = (ID_COLUMN, PREDICTIONS_PARTITION_SOURCE)
MERGE_AT_SEGMENTS = 16  # small segments are merged into one past this many
US_PER_DAY = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)
MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class _Segment:
    hashes: np.ndarray  # uint64, sorted
    days: np.ndarray  # int32 days since 1970-01-01, in the hashes' order
    name: str | None = None  # its files' name in the folder, once saved


def _hash_check() -> int:
    """The hash of a fixed string: another value means another hash function (rebuild)."""
    return int(hash_ids(["fraudops-transaction-index"])[0])


def hash_ids(values: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """duckdb's string hash of each value, in order (vectorised; the index and its queries)."""
    con = duckdb.connect()
    try:
        column = pa.array(values, pa.string()) if isinstance(values, list) else values
        con.register("ids", pa.table({"v": column}))
        hashed = con.execute("SELECT hash(v) AS h FROM ids").fetchnumpy()
    finally:
        con.close()
    return np.asarray(hashed["h"], dtype=np.uint64)


def _segment(rows: pa.Table) -> _Segment:
    rows = rows.filter(pc.is_valid(rows[ID_COLUMN]))
    if rows.num_rows == 0:
        return _Segment(np.empty(0, np.uint64), np.empty(0, np.int32))
    values = hash_ids(rows[ID_COLUMN].cast(pa.string()))
    times = rows[PREDICTIONS_PARTITION_SOURCE].cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    days = (np.asarray(times.to_numpy(), dtype=np.int64) // US_PER_DAY).astype(np.int32)
    return _sorted(values, days)


def _sorted(hashes: np.ndarray, days: np.ndarray) -> _Segment:
    """By hash then day, each (hash, day) pair once: a transaction re-read is not indexed twice."""
    order = np.lexsort((days, hashes))
    hashes, days = hashes[order], days[order]
    if len(hashes) > 1:
        keep = np.ones(len(hashes), dtype=bool)
        keep[1:] = (hashes[1:] != hashes[:-1]) | (days[1:] != days[:-1])
        hashes, days = hashes[keep], days[keep]
    return _Segment(np.ascontiguousarray(hashes), np.ascontiguousarray(days))


def index_dir(home: Path, spec: str, table: Table) -> Path:
    """Where the index of ``table`` (spec ``spec``'s predictions) lives under ``home``."""
    return home / "index" / spec / f"predictions-{table.metadata.table_uuid}"


class TransactionIndex:
    """The index of one ``predictions`` table; thread-safe. With ``directory`` it is persisted
    there and shared with the other processes using it; without, it lives in this process."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._files: set[str] = set()  # the data files indexed
        self._mark = Watermark(None, None, 0)
        self._generation: str | None = None  # of the manifest loaded
        self._ready = False
        self._building = False

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def rows(self) -> int:
        return sum(len(s.hashes) for s in self._segments)

    # ---- building and catching up -------------------------------------------------------

    def build(self, table: Table) -> None:
        """Bring the index up to date with the table's current snapshot: load it from its
        folder if there is one, else read the whole table once; then catch up."""
        with self._lock, self._file_lock():
            self._sync(table)

    def build_in_background(self, table: Table) -> None:
        with self._lock:
            if self._building:
                return
            self._building = True
        threading.Thread(target=self._build_quietly, args=(table,), daemon=True).start()

    def _build_quietly(self, table: Table) -> None:
        # Below the page requests of this process (Linux: a thread has its own nice value).
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            self.build(table)
        except Exception:  # a lookup then scans, as it did before the index
            log.exception("transaction index: build failed")
        finally:
            with self._lock:
                self._building = False

    def _sync(self, table: Table) -> None:
        table_uuid = str(table.metadata.table_uuid)
        if self._mark.table_uuid not in (None, table_uuid):
            self._reset()
        if self.directory is not None:
            self._load(table_uuid)
        if not self._ready:
            self._full(table)
        else:
            self._catch_up(table)
        self._ready = True

    def _reset(self) -> None:
        self._segments, self._files, self._generation = [], set(), None
        self._mark, self._ready = Watermark(None, None, 0), False

    def _full(self, table: Table) -> None:
        current = table.current_snapshot()
        self._reset()
        tasks: list[FileScanTask] = []
        if current is not None:
            tasks = _planned(table, current.snapshot_id)
        self._add(table, tasks)
        self._files = {t.file.file_path for t in tasks}
        self._mark = Watermark(
            None if current is None else current.snapshot_id, str(table.metadata.table_uuid)
        )
        self._save(table)
        log.info("transaction index: %d transaction ids", self.rows)

    def _catch_up(self, table: Table) -> None:
        current = table.current_snapshot()
        if current is None or current.snapshot_id == self._mark.snapshot_id:
            return
        try:
            new_appends(table, self._mark, "the transaction index")
            scan = table.incremental_append_scan(
                from_snapshot_id_exclusive=self._mark.snapshot_id,
                to_snapshot_id_inclusive=current.snapshot_id,
                selected_fields=COLUMNS,
            )
            tasks = [t for t in scan.plan_files() if t.file.file_path not in self._files]
            files = self._files | {t.file.file_path for t in tasks}
        except AggregatesStaleError:
            # History expired or rewritten: the files not indexed yet, from the current snapshot.
            planned = _planned(table, current.snapshot_id)
            tasks = [t for t in planned if t.file.file_path not in self._files]
            files = {t.file.file_path for t in planned}
        self._add(table, tasks)
        self._files = files
        self._mark = Watermark(current.snapshot_id, str(table.metadata.table_uuid))
        if self._merge():
            # Forget the files compacted or deleted since (the set would grow with the commits).
            self._files &= {t.file.file_path for t in _planned(table, current.snapshot_id)}
        self._save(table)

    def _add(self, table: Table, tasks: Sequence[FileScanTask]) -> None:
        if not tasks:
            return
        projected = table.schema().select(*COLUMNS)
        rows = ArrowScan(table.metadata, table.io, projected, row_filter=_always()).to_table(tasks)
        self._segments.append(_segment(rows))

    def _merge(self) -> bool:
        """Past MERGE_AT_SEGMENTS, the small ones into one; everything once they weigh a quarter
        of the largest (amortised: each row is rewritten a few times, not at every merge)."""
        if len(self._segments) <= MERGE_AT_SEGMENTS:
            return False
        ordered = sorted(self._segments, key=lambda s: len(s.hashes), reverse=True)
        largest, small = ordered[0], ordered[1:]
        if sum(len(s.hashes) for s in small) * 4 >= len(largest.hashes):
            small, keep = ordered, []
        else:
            keep = [largest]
        merged = _sorted(
            np.concatenate([s.hashes for s in small]), np.concatenate([s.days for s in small])
        )
        self._segments = [*keep, merged]
        return True

    # ---- look-ups ---------------------------------------------------------------------------

    def days(self, table: Table, value: str) -> list[dt.date] | None:
        """The days whose partitions may hold ``value``, oldest first; None: not known yet (the
        index is being built in the background)."""
        if not self._ready:
            self.build_in_background(table)
            return None
        found = self.days_of(table, [value])
        return None if found is None else found[value]

    def days_of(self, table: Table, values: Sequence[str]) -> dict[str, list[dt.date]]:
        """Per value, the days whose partitions may hold it (none: no such transaction), the
        index first brought up to date (built, if it never was)."""
        with self._lock, self._file_lock():
            self._sync(table)
            segments = list(self._segments)
        keys = hash_ids(list(values))
        found: list[set[int]] = [set() for _ in values]
        for segment in segments:
            lo = np.searchsorted(segment.hashes, keys, side="left")
            hi = np.searchsorted(segment.hashes, keys, side="right")
            for i in np.flatnonzero(hi > lo):
                found[i].update(int(d) for d in segment.days[lo[i] : hi[i]])
        return {
            value: [EPOCH + dt.timedelta(days=d) for d in sorted(days)]
            for value, days in zip(values, found, strict=True)
        }

    # ---- the folder -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self, table_uuid: str) -> None:
        """The manifest's segments when another process (or an earlier run) moved it on."""
        assert self.directory is not None
        try:
            manifest = json.loads((self.directory / MANIFEST).read_text())
        except (OSError, ValueError):
            return
        if manifest.get("generation") == self._generation:
            return
        if (
            manifest.get("format") != FORMAT
            or manifest.get("table_uuid") != table_uuid
            or manifest.get("hash_check") != _hash_check()
        ):
            return
        try:
            segments = [
                _Segment(
                    np.load(self.directory / f"{name}.hashes.npy", mmap_mode="r"),
                    np.load(self.directory / f"{name}.days.npy", mmap_mode="r"),
                    name,
                )
                for name in manifest["segments"]
            ]
        except (OSError, ValueError, KeyError):
            log.warning("transaction index in %s is damaged: rebuilt", self.directory)
            return
        self._segments, self._files = segments, set(manifest["files"])
        self._mark = Watermark(manifest["snapshot_id"], table_uuid)
        self._generation, self._ready = manifest["generation"], True

    def _save(self, table: Table) -> None:
        if self.directory is None:
            return
        folder = self.directory
        saved: list[_Segment] = []
        for segment in self._segments:
            if segment.name is None:
                name = uuid.uuid4().hex
                for part, array in (("hashes", segment.hashes), ("days", segment.days)):
                    _atomic(folder / f"{name}.{part}.npy", lambda f, a=array: np.save(f, a))
                # Read back mapped, the heap copy dropped: a long-running process (the server's
                # label ingestion) would otherwise hold 12 bytes of anonymous memory for every
                # prediction ever logged; mapped pages are the page cache's to evict.
                segment = _Segment(
                    np.load(folder / f"{name}.hashes.npy", mmap_mode="r"),
                    np.load(folder / f"{name}.days.npy", mmap_mode="r"),
                    name,
                )
            saved.append(segment)
        self._segments = saved
        names = [str(s.name) for s in saved]
        generation = uuid.uuid4().hex
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "table_uuid": str(table.metadata.table_uuid),
            "snapshot_id": self._mark.snapshot_id,
            "hash_check": _hash_check(),
            "generation": generation,
            "segments": names,
            "files": sorted(self._files),
        }
        _atomic(folder / MANIFEST, lambda f: f.write(json.dumps(manifest).encode()))
        self._generation = generation
        # Segments no manifest names any more (merged, or of an earlier build); processes that
        # mapped them keep reading them until they reload (an unlinked file stays readable).
        keep = {MANIFEST, "lock", *(f"{n}.{p}.npy" for n in names for p in ("hashes", "days"))}
        for path in folder.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)
        # The folders of replaced tables of the same spec.
        for sibling in folder.parent.glob("predictions-*"):
            if sibling != folder and sibling.is_dir():
                _remove_tree(sibling)


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        write(handle)
    os.replace(tmp, path)


def _remove_tree(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _planned(table: Table, snapshot_id: int) -> list[FileScanTask]:
    return list(table.scan(snapshot_id=snapshot_id, selected_fields=COLUMNS).plan_files())


def _always() -> Any:
    from pyiceberg.expressions import AlwaysTrue

    return AlwaysTrue()


_INDEXES: dict[str, TransactionIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(table: Table, directory: Path | None = None) -> TransactionIndex:
    """The process's index of ``table`` (by its uuid: a replaced table gets a new one),
    persisted in ``directory`` when given (see :func:`lake_index`)."""
    key = str(table.metadata.table_uuid)
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = TransactionIndex(directory)
        return _INDEXES[key]


def lake_index(home: Path, spec: str, table: Table) -> TransactionIndex:
    """The persisted index of ``table``, spec ``spec``'s predictions, under ``home``."""
    return index_for(table, index_dir(home, spec, table))


def indexed_rows() -> int | None:
    """Transaction ids indexed in this process; None while an index is still being built."""
    with _INDEXES_LOCK:
        indexes = list(_INDEXES.values())
    if any(not index.ready for index in indexes):
        return None
    return sum(index.rows for index in indexes)
