"""The lake side of the inference log: a batch of decoded records into ``predictions``, once.

Shared by the spool writer and the Redis Streams consumer. The sink never creates the lake: a
missing catalog or table is a ``LakeMissingError`` (the caller keeps its records and retries),
and a ``predictions`` table with another Iceberg uuid than the one the sink has been writing to
is a ``TableReplacedError`` (the caller stops writing). A commit is one Iceberg append: a
reader sees all of a batch or none of it, and a failed commit leaves no row behind (the caller
keeps its records and retries). Replays after a crash are made harmless by ``dedupe=True``:
ids already in the table are looked up only in the day partitions the batch covers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, In, LessThan

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.inference_log.records import PredictionsDecoder
from fraudops.lake.catalog import Lake, TableReplacedError
from fraudops.lake.schemas import PREDICTIONS, PREDICTIONS_PARTITION_SOURCE
from fraudops.timeutil import as_utc

log = logging.getLogger(__name__)

ID_COLUMN = "inference_id"
# Up to this many ids the look-up is an Iceberg `In` filter; beyond, an Arrow match (see below).
IN_FILTER_MAX_IDS = 1_000
_DAY = dt.timedelta(days=1)
# pyiceberg's expressions are pydantic models whose __init__ mypy's plugin misreads.
_In: Any = In
_GreaterThanOrEqual: Any = GreaterThanOrEqual
_LessThan: Any = LessThan

# Request times of the records: Arrow, datetimes, or ISO strings as the records carry them.
TimeValues: TypeAlias = pa.Array | pa.ChunkedArray | Iterable[dt.datetime | str | None]


@dataclass
class CommitReport:
    """What one commit did: rows appended, rows skipped as duplicates, rows it could not type."""

    written: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row index, reason)


class PredictionSink:
    """Appends inference-log records to the ``predictions`` table of one spec."""

    def __init__(
        self,
        settings: Settings,
        spec_name: str | None = None,
        *,
        open_lake: Callable[[], Lake],
        table_uuid: str | None = None,
    ) -> None:
        """``open_lake``: opens a new lake client of ``spec_name`` (``Runtime.lake_factory``),
        again after a failure."""
        self.settings = settings
        self.spec = settings.feature_spec(spec_name)
        self.open_lake = open_lake
        self.decoder = PredictionsDecoder(self.spec)
        # The Iceberg uuid of the `predictions` table written to (given: a previous writer's).
        self.table_uuid = table_uuid
        self._lake: Lake | None = None

    # ---- life cycle ----------------------------------------------------------------------

    def _open_lake(self) -> Lake:
        if self._lake is None:
            self._lake = self.open_lake()
        return self._lake

    def _check_table(self, lake: Lake) -> None:
        found = lake.table_uuid(PREDICTIONS)
        if self.table_uuid is None:
            self.table_uuid = found
        elif found != self.table_uuid:
            raise TableReplacedError(f"{self.spec.name}.{PREDICTIONS}", self.table_uuid, found)

    def _reset(self) -> None:
        # After a failure, reconnect from scratch next time (a restarted database, say).
        if self._lake is not None:
            try:
                self._lake.close()
            except Exception:  # closing a broken connection may fail too: nothing to keep
                log.debug("closing the lake after a failure failed", exc_info=True)
            self._lake = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> PredictionSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- commit --------------------------------------------------------------------------

    def commit(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        dedupe: bool = False,
        snapshot_properties: Mapping[str, str] | None = None,
    ) -> CommitReport:
        """Append ``rows`` (records as :func:`records.parse_line` returns them) in one commit.

        Rows that cannot be typed are left out and reported in ``rejected``; an inference id
        repeated within the batch is kept once; with ``dedupe`` ids already in the table are
        skipped too. Raises LakeError, with nothing written, when the lake cannot take it.
        """
        if not rows:
            return CommitReport()
        table, rejected = self.decoder.decode(rows)
        table, repeated = _first_of_each_id(table)
        report = CommitReport(duplicates=repeated, rejected=rejected)
        if table.num_rows == 0:
            return report
        try:
            lake = self._open_lake()
            self._check_table(lake)
            if dedupe:
                existing = self._existing(
                    lake, table[ID_COLUMN], table[PREDICTIONS_PARTITION_SOURCE]
                )
                if existing:
                    keep = pc.invert(pc.is_in(table[ID_COLUMN], pa.array(sorted(existing))))
                    report.duplicates += table.num_rows - pc.sum(keep.cast(pa.int64())).as_py()
                    table = table.filter(keep)
            if table.num_rows:
                report.written = lake.append(
                    PREDICTIONS, table, snapshot_properties=snapshot_properties
                )
        except LakeError:
            self._reset()
            raise
        except Exception as exc:  # a warehouse that cannot be written, a dropped connection
            self._reset()
            raise LakeError(
                f"could not append to {self.spec.name}.{PREDICTIONS}: {type(exc).__name__}: {exc}"
            ) from exc
        return report

    def existing_ids(
        self, ids: Collection[str], request_times: TimeValues | None = None
    ) -> set[str]:
        """Which of ``ids`` are already in ``predictions``.

        ``request_times`` (of the same records) restricts the scan to the days they cover, so
        the look-up reads a few partitions instead of the whole table; without it every day is
        searched.
        """
        if not ids:
            return set()
        try:
            return self._existing(
                self._open_lake(), pa.array(list(ids), pa.string()), request_times
            )
        except LakeError:
            self._reset()
            raise
        except Exception as exc:
            self._reset()
            raise LakeError(
                f"could not read {self.spec.name}.{PREDICTIONS}: {type(exc).__name__}: {exc}"
            ) from exc

    def _existing(
        self, lake: Lake, ids: pa.Array | pa.ChunkedArray, request_times: TimeValues | None
    ) -> set[str]:
        unique = pc.unique(ids).drop_null()
        if not len(unique):
            return set()
        where: Any = AlwaysTrue()
        days = _day_range(request_times)
        if days is not None:
            start, end = days
            # day(request_time) partitions: the range prunes every other day's files.
            where = And(
                _GreaterThanOrEqual(PREDICTIONS_PARTITION_SOURCE, start.isoformat()),
                _LessThan(PREDICTIONS_PARTITION_SOURCE, end.isoformat()),
            )
        small = len(unique) <= IN_FILTER_MAX_IDS
        if small:
            where = And(_In(ID_COLUMN, unique.to_pylist()), where)
        found = (
            lake.table(PREDICTIONS).scan(row_filter=where, selected_fields=(ID_COLUMN,)).to_arrow()
        )[ID_COLUMN]
        if not small:
            # pyiceberg binds and evaluates an In per literal (~8 s for 50k ids, 0.1 s this way):
            # a big batch reads its days' ids and matches them in Arrow instead.
            found = found.filter(pc.is_in(found, unique))
        return set(found.to_pylist())


def _first_of_each_id(table: pa.Table) -> tuple[pa.Table, int]:
    """The table with only the first row of each inference id, and how many were left out."""
    ids = table[ID_COLUMN].to_pylist()
    if len(set(ids)) == len(ids):
        return table, 0
    seen: set[str] = set()
    keep = []
    for value in ids:
        keep.append(value not in seen)
        seen.add(value)
    return table.filter(pa.array(keep)), len(ids) - len(seen)


def _day_range(request_times: TimeValues | None) -> tuple[dt.datetime, dt.datetime] | None:
    """[first day's midnight, the day after the last day) in UTC, or None if no time is known."""
    if request_times is None:
        return None
    if isinstance(request_times, pa.Array | pa.ChunkedArray):
        values = request_times.cast(pa.timestamp("us", tz="UTC"))
        bounds = pc.min_max(values)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
    else:
        known = [
            as_utc(dt.datetime.fromisoformat(t) if isinstance(t, str) else t)
            for t in request_times
            if t is not None
        ]
        low, high = (min(known), max(known)) if known else (None, None)
    if low is None or high is None:
        return None
    start = dt.datetime.combine(low.date(), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(high.date(), dt.time(), tzinfo=dt.UTC) + _DAY
    return start, end
