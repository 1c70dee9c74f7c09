"""Which days hold a transaction id: the Lookup page's index over ``predictions``.

A transaction id carries no time (an inference id does: a UUIDv7), so without an index a lookup
by transaction id reads every day partition — 5-6 s at 10M predictions. The index keeps, in the
dashboard process, a 64-bit hash of every logged transaction id with the day it was logged
(12 bytes a prediction: 120 MB at 10M), built once in the background from the table's two
columns and brought up to date at each lookup from the snapshots appended since (the new files
only). A lookup then reads only the day partitions its hash names (a collision costs one more
day read, never a wrong answer: the scan still filters on the id itself); a hash found nowhere is
"no such prediction" without a read. Until the first build is done, or when the table was
rewritten (its history no longer leads back to the indexed snapshot), a lookup scans as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table

from fraudops.aggregates.watermark import AggregatesStaleError, Watermark, new_appends
from fraudops.lake.schemas import PREDICTIONS_PARTITION_SOURCE

log = logging.getLogger(__name__)

ID_COLUMN = "transaction_id"
MERGE_AT_SEGMENTS = 16  # small appended segments are merged into one past this many
US_PER_DAY = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class _Segment:
    hashes: np.ndarray  # uint64, sorted
    days: np.ndarray  # int32 days since 1970-01-01, in the hashes' order


def _segment(rows: pa.Table) -> _Segment:
    ids = rows[ID_COLUMN]
    keep = pc.is_valid(ids)
    rows = rows.filter(keep)
    if rows.num_rows == 0:
        return _Segment(np.empty(0, np.uint64), np.empty(0, np.int32))
    con = duckdb.connect()
    try:  # duckdb's string hash: vectorised, and the same function hashes the query
        con.register("rows", rows)
        hashed = con.execute("SELECT hash(transaction_id) AS h FROM rows").fetchnumpy()
    finally:
        con.close()
    values = np.asarray(hashed["h"], dtype=np.uint64)
    times = rows[PREDICTIONS_PARTITION_SOURCE].cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    days = (np.asarray(times.to_numpy(), dtype=np.int64) // US_PER_DAY).astype(np.int32)
    order = np.argsort(values, kind="stable")
    return _Segment(values[order], days[order])


def _hash(value: str) -> np.uint64:
    con = duckdb.connect()
    try:
        row = con.execute("SELECT hash(?::VARCHAR)", [value]).fetchone()
    finally:
        con.close()
    assert row is not None
    return np.uint64(row[0])


class TransactionIndex:
    """The index of one ``predictions`` table; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._mark = Watermark(None, None, 0)
        self._ready = False
        self._building = False

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def rows(self) -> int:
        return sum(len(s.hashes) for s in self._segments)

    def build(self, table: Table) -> None:
        """Index every prediction of the table's current snapshot (the background start)."""
        current = table.current_snapshot()
        segments: list[_Segment] = []
        if current is not None:
            scan = table.scan(
                snapshot_id=current.snapshot_id,
                selected_fields=(ID_COLUMN, PREDICTIONS_PARTITION_SOURCE),
            )
            segments = [_segment(scan.to_arrow())]
        mark = Watermark(
            None if current is None else current.snapshot_id, str(table.metadata.table_uuid)
        )
        with self._lock:
            self._segments, self._mark, self._ready = segments, mark, True
            self._building = False
        log.info("lookup index: %d transaction ids", self.rows)

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
            log.exception("lookup index: build failed")
            with self._lock:
                self._building = False

    def days(self, table: Table, value: str) -> list[dt.date] | None:
        """The days whose partitions may hold ``value``, oldest first; None: not known (the
        index is not built, or the table was rewritten and it is being rebuilt)."""
        if not self._ready:
            self.build_in_background(table)
            return None
        with self._lock:
            try:
                self._catch_up(table)
            except AggregatesStaleError:
                self._ready = False
                stale = True
            else:
                stale = False
            if not stale:
                key = _hash(value)
                found: set[int] = set()
                for segment in self._segments:
                    lo = int(np.searchsorted(segment.hashes, key, side="left"))
                    hi = int(np.searchsorted(segment.hashes, key, side="right"))
                    found.update(int(d) for d in segment.days[lo:hi])
                return [EPOCH + dt.timedelta(days=d) for d in sorted(found)]
        self.build_in_background(table)
        return None

    def _catch_up(self, table: Table) -> None:
        snapshots = new_appends(table, self._mark, "the lookup index")
        if not snapshots:
            return
        target = snapshots[-1].snapshot_id
        scan = table.incremental_append_scan(
            from_snapshot_id_exclusive=self._mark.snapshot_id,
            to_snapshot_id_inclusive=target,
            selected_fields=(ID_COLUMN, PREDICTIONS_PARTITION_SOURCE),
        )
        self._segments.append(_segment(scan.to_arrow()))
        if len(self._segments) > MERGE_AT_SEGMENTS:
            hashes = np.concatenate([s.hashes for s in self._segments])
            days = np.concatenate([s.days for s in self._segments])
            order = np.argsort(hashes, kind="stable")
            self._segments = [_Segment(hashes[order], days[order])]
        self._mark = Watermark(target, self._mark.table_uuid)


_INDEXES: dict[str, TransactionIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(table: Table) -> TransactionIndex:
    """The process's index of ``table`` (by its uuid: a replaced table gets a new one)."""
    key = str(table.metadata.table_uuid)
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = TransactionIndex()
        return _INDEXES[key]


def indexed_rows() -> int | None:
    """Transaction ids indexed in this process; None while an index is still being built."""
    with _INDEXES_LOCK:
        indexes = list(_INDEXES.values())
    if any(not index.ready for index in indexes):
        return None
    return sum(index.rows for index in indexes)
