"""The aggregates as pandas frames for the pages, cached in-process by snapshot id: the one
snapshot cache (the dashboard's small tables come through ``snapshot_frame`` too).

Each read loads the table's metadata (a few ms) and, only when its current snapshot is not the
one cached, its rows: a page load with nothing new scans nothing. Frames are shared between
callers: treat them as read-only (filters return new frames).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from pyiceberg.table import Table

from fraudops.aggregates import folding
from fraudops.aggregates import labels as label_aggregates
from fraudops.aggregates.watermark import Watermark
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import (
    LABEL_INGESTS,
    LABEL_STATS,
    MODEL_EVENTS,
    PREDICTION_STATS,
    PREDICTIONS,
)
from fraudops.timeutil import as_utc

_lock = threading.Lock()
CACHE_ENTRIES = 64  # (catalog, spec, table) frames kept, least recently used out first
# (catalog uri, namespace, table) -> (snapshot id, frame)
_cache: OrderedDict[tuple[str, str, str], tuple[int | None, pd.DataFrame]] = OrderedDict()
# (catalog uri, namespace, table, snapshot id, what) -> a frame derived from the cached one
_derived: dict[tuple[str, str, str, int | None, str], pd.DataFrame] = {}


# Tables loaded during one pinned page build: (namespace, table) -> pyiceberg table.
_pinned: ContextVar[dict[tuple[str, str], Table] | None] = ContextVar("pinned", default=None)


@contextmanager
def pinned() -> Iterator[None]:
    """Within the block, each table's metadata is loaded once: one page build reads one state
    of each table (and pays a few ms per table instead of per read)."""
    token = _pinned.set({})
    try:
        yield
    finally:
        _pinned.reset(token)


def _table(lake: Lake, name: str) -> Table:
    memo = _pinned.get()
    if memo is None:
        return lake.table(name)
    key = (lake.namespace, name)
    if key not in memo:
        memo[key] = lake.table(name)
    return memo[key]


def _cached(lake: Lake, name: str, load: Callable[[pa.Table], pd.DataFrame]) -> pd.DataFrame:
    table = _table(lake, name)
    current = table.current_snapshot()
    snapshot_id = current.snapshot_id if current is not None else None
    key = (lake.settings.catalog_uri, lake.namespace, name)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == snapshot_id:
            _cache.move_to_end(key)
            return hit[1]
    rows = (
        table.scan(snapshot_id=snapshot_id).to_arrow()
        if snapshot_id
        else table.schema().as_arrow().empty_table()
    )
    frame = load(rows)
    with _lock:
        _cache[key] = (snapshot_id, frame)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_ENTRIES:
            gone, _ = _cache.popitem(last=False)
            for old in [k for k in _derived if k[:3] == gone]:
                del _derived[old]
        for old in [k for k in _derived if k[:3] == key and k[3] != snapshot_id]:
            del _derived[old]
    frame.attrs["snapshot_id"] = snapshot_id
    return frame


def _derive(
    lake: Lake, name: str, frame: pd.DataFrame, what: str, make: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    """``make()``, computed once per snapshot of table ``name`` (a per-day roll-up, say)."""
    key = (lake.settings.catalog_uri, lake.namespace, name, frame.attrs.get("snapshot_id"), what)
    with _lock:
        hit = _derived.get(key)
    if hit is None:
        hit = make()
        with _lock:
            _derived[key] = hit
    return hit


def snapshot_frame(lake: Lake, name: str) -> pd.DataFrame:
    """Table ``name`` whole, as a frame, read once per snapshot id (the small tables)."""
    return _cached(lake, name, lambda rows: rows.to_pandas())


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _derived.clear()


def between(
    frame: pd.DataFrame,
    column: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """The rows of an aggregate frame in [start, end) (of ``column``), of ``version`` if given;
    the frame itself when nothing is filtered (read-only)."""
    return _filtered(frame, column, start, end, version)


def _between(
    frame: pd.DataFrame, column: str, start: dt.datetime | None, end: dt.datetime | None
) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame[column] >= pd.Timestamp(as_utc(start))
    if end is not None:
        keep &= frame[column] < pd.Timestamp(as_utc(end))
    return keep


def _filtered(
    frame: pd.DataFrame,
    column: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    version: str | None,
) -> pd.DataFrame:
    if start is None and end is None and version is None:
        return frame  # the cached frame itself: no copy of a year of rows
    keep = _between(frame, column, start, end)
    if version is not None:
        keep &= frame["model_version"] == version
    return frame[keep].reset_index(drop=True)


def _load_prediction_stats(rows: pa.Table) -> pd.DataFrame:
    frame = folding.merge([folding.from_rows(rows)])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return frame


def _load_label_stats(rows: pa.Table) -> pd.DataFrame:
    frame = label_aggregates.from_rows(rows)
    frame = folding.merge(
        [frame], label_aggregates.KEYS, label_aggregates.AMOUNTS, label_aggregates.empty_partial
    )
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame


def prediction_stats(
    lake: Lake,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    version: str | None = None,
    freq: str = "h",
) -> pd.DataFrame:
    """Per (hour, model_version) in [start, end): n, flagged, amounts, latency and score bins,
    ``tier:<name>`` counts; one row per key, sorted. ``freq="D"``: per day instead (``hour``
    is then the day's midnight), rolled up once per snapshot."""
    frame = _cached(lake, PREDICTION_STATS, _load_prediction_stats)
    if freq != "h":
        frame = _derive(lake, PREDICTION_STATS, frame, freq, lambda: _roll_up(frame, freq))
    return _filtered(frame, "hour", start, end, version)


def _roll_up(hourly: pd.DataFrame, freq: str) -> pd.DataFrame:
    frame = hourly.assign(hour=hourly["hour"].dt.floor(freq))
    return folding.merge([frame])


def label_stats(
    lake: Lake,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """Per (prediction day, model_version) in [start, end): labelled, TP/FP/TN/FN, amounts,
    ``source:<name>`` counts, delay buckets."""
    frame = _cached(lake, LABEL_STATS, _load_label_stats)
    return _filtered(frame, "day", start, end, version)


def label_ingests(
    lake: Lake, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pd.DataFrame:
    """One row per label ingestion in [start, end): received, written, unknown, duplicates,
    conflicts."""
    frame = _cached(lake, LABEL_INGESTS, lambda rows: rows.to_pandas().sort_values("ingested_at"))
    return frame[_between(frame, "ingested_at", start, end)].reset_index(drop=True)


def model_events(
    lake: Lake, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pd.DataFrame:
    """``model_events`` in [start, end), oldest first (a small table, read whole)."""
    rows = snapshot_frame(lake, MODEL_EVENTS)  # the one frame the pages' small tables share
    frame = _derive(lake, MODEL_EVENTS, rows, "by_time", lambda: rows.sort_values("event_time"))
    return frame[_between(frame, "event_time", start, end)].reset_index(drop=True)


@dataclass(frozen=True)
class Freshness:
    """How far ``prediction_stats`` is behind ``predictions`` (from snapshot summaries only)."""

    predictions_rows: int
    folded_rows: int
    watermark: int | None
    predictions_snapshot: int | None

    @property
    def behind_rows(self) -> int:
        return max(0, self.predictions_rows - self.folded_rows)

    @property
    def note(self) -> str | None:
        if not self.behind_rows:
            return None
        return (
            f"the aggregates are {self.behind_rows:,} prediction(s) behind the lake; they catch "
            "up at the next log commit (or `fraudops lake aggregates`)"
        )


def freshness(lake: Lake) -> Freshness:
    predictions = _table(lake, PREDICTIONS).current_snapshot()
    total = (
        int(predictions.summary.get("total-records", "0"))
        if predictions and predictions.summary
        else 0
    )
    mark = Watermark.of(_table(lake, PREDICTION_STATS), PREDICTIONS)
    return Freshness(
        predictions_rows=total,
        folded_rows=mark.folded_rows,
        watermark=mark.snapshot_id,
        predictions_snapshot=predictions.snapshot_id if predictions else None,
    )
