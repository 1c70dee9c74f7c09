"""``label_stats``: per prediction day x model_version, the day's predictions against the label
in force of each (the latest confirmed_at wins: ``labels.store.latest_of``).

Labels arrive late and can flip, so a day is never patched: it is recomputed whole from its
``predictions`` partitions (day of request_time) and the labels of those predictions, and its
rows replaced in one overwrite commit. ``refresh`` finds the days to recompute from the
watermarks (the ``predictions`` and ``labels`` snapshots folded in, in the table's snapshot
summary): days of predictions added since, and prediction days of labels added since (given by
the ingestion that wrote them as a ``LabelsHint``, else looked up in ``predictions``).
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    Or,
)
from pyiceberg.table import Table

from fraudops.aggregates.folding import merge, pack_json, unpack_json
from fraudops.aggregates.predictions import (
    COMMIT_ATTEMPTS,
    RefreshReport,
    raced,
)
from fraudops.aggregates.watermark import (
    FOLDED_ROWS,
    KIND,
    AggregatesStaleError,
    Watermark,
    new_appends,
    snapshot_key,
    uuid_key,
)
from fraudops.errors import LakeError
from fraudops.lake.catalog import Lake, conform
from fraudops.lake.schemas import (
    LABEL_DELAY_BUCKETS,
    LABEL_STATS,
    LABELS,
    PREDICTIONS,
    predictions_amount_column,
)

KEYS = ["day", "model_version"]
SOURCE_PREFIX = "source:"
NO_SOURCE = "(none)"  # a label event that named no source
COUNTS = ["n", "labelled", "unlabelled", "tp", "fp", "tn", "fn"]
AMOUNTS = ("tp_amount", "fn_amount", "fp_amount")
DELAYS = [name for name, _ in LABEL_DELAY_BUCKETS]
_DELAY_LIMITS = np.array([limit for _, limit in LABEL_DELAY_BUCKETS])
_LABEL_COLUMNS = ["event_id", "inference_id", "label", "confirmed_at", "source", "ingested_at"]
# Up to this many ids a look-up is an Iceberg `In` filter; beyond, an Arrow match of a scan.
IN_FILTER_MAX_IDS = 1_000
_PREDICTION_COLUMNS = ["inference_id", "request_time", "model_version", "prediction"]
_DAY = dt.timedelta(days=1)
# pyiceberg's expressions are pydantic models whose __init__ mypy's plugin misreads.
_In: Any = In
_Ge: Any = GreaterThanOrEqual
_Lt: Any = LessThan
_Gt: Any = GreaterThan


@dataclass(frozen=True)
class LabelsHint:
    """What a label ingestion knows: the ``labels`` snapshot it committed and the prediction
    days its labels belong to (saves the refresh looking them up)."""

    labels_snapshot: int
    days: frozenset[dt.date]


def empty_partial() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in [*COUNTS, *DELAYS]})
    for column in AMOUNTS:
        frame[column] = pd.Series(dtype="float64")
    frame.insert(0, "model_version", pd.Series(dtype=object))
    frame.insert(0, "day", pd.Series(dtype="datetime64[us, UTC]"))
    return frame


@dataclass(frozen=True)
class InForce:
    """The label in force per inference_id, as arrays for a look-up by position."""

    ids: pa.Array
    label: np.ndarray  # float: 0/1
    confirmed_us: np.ndarray  # float µs since the epoch
    source: np.ndarray  # codes into source_names
    source_names: list[str]

    @classmethod
    def of(cls, latest: pa.Table) -> InForce:
        sources, names = _codes(latest["source"], NO_SOURCE)
        return cls(
            ids=latest["inference_id"].combine_chunks().cast(pa.string()),
            label=_floats(latest["label"]),
            confirmed_us=_micros(latest["confirmed_at"]),
            source=sources,
            source_names=names,
        )


def day_partials(predictions: pa.Table, latest: InForce, amount: str | None) -> pd.DataFrame:
    """Counts per (day, model_version) of ``predictions`` against the labels in force: an
    Arrow hash look-up of the ids, then numpy bincounts over a group code."""
    if predictions.num_rows == 0:
        return empty_partial()
    at = pc.index_in(predictions["inference_id"].cast(pa.string()), value_set=latest.ids)
    position = pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    found = position >= 0
    safe = np.where(found, position, 0)

    def looked_up(values: np.ndarray, missing: float) -> np.ndarray:
        if not len(values):
            return np.full(len(position), missing)
        return np.where(found, values[safe], missing)

    request = _micros(predictions["request_time"])
    known = ~np.isnan(request)
    label = looked_up(latest.label, np.nan)
    labelled = known & ~np.isnan(label)
    flagged = np.nan_to_num(_floats(predictions["prediction"])) == 1
    fraud, legit = labelled & (label == 1), labelled & (label == 0)
    money = np.nan_to_num(_floats(predictions[amount])) if amount else np.zeros(len(position))
    delay_days = (looked_up(latest.confirmed_us, np.nan) - request) / 86_400e6
    bucket = np.searchsorted(_DELAY_LIMITS, np.nan_to_num(delay_days), side="left")
    sources = looked_up(latest.source, -1).astype(np.int64)
    joined = predictions
    versions, version_names = _codes(joined["model_version"])
    day = np.where(known, np.nan_to_num(request) // 86_400e6, 0).astype(np.int64)
    unique, group = np.unique((day * len(version_names) + versions)[known], return_inverse=True)
    groups = len(unique)

    def total(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = mask[known].astype(np.float64) if weights is None else np.where(mask, weights, 0)[known]
        return np.bincount(group, weights=w, minlength=groups)

    columns: dict[str, Any] = {
        "day": pd.to_datetime((unique // len(version_names)) * 86_400, unit="s", utc=True),
        "model_version": [version_names[v] for v in unique % len(version_names)],
        "n": total(known),
        "labelled": total(labelled),
        "unlabelled": total(known & ~labelled),
        "tp": total(fraud & flagged),
        "fp": total(legit & flagged),
        "tn": total(legit & ~flagged),
        "fn": total(fraud & ~flagged),
        "tp_amount": total(fraud & flagged, money),
        "fn_amount": total(fraud & ~flagged, money),
        "fp_amount": total(legit & flagged, money),
    }
    for i, name in enumerate(DELAYS):
        columns[name] = total(labelled & (bucket == i))
    for i, name in enumerate(latest.source_names):
        if (counts := total(labelled & (sources == i))).any():
            columns[f"{SOURCE_PREFIX}{name}"] = counts
    frame = pd.DataFrame(columns)
    for column in frame.columns[2:]:
        if column not in AMOUNTS:
            frame[column] = frame[column].astype(np.int64)
    return frame


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp column as float µs since the epoch, NaN for null."""
    values = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return values.to_numpy(zero_copy_only=False).astype(np.float64)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _codes(column: pa.ChunkedArray, null: str = "") -> tuple[np.ndarray, list[str]]:
    encoded = pc.fill_null(column.cast(pa.string()), null).combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()] or [null]


def refresh(lake: Lake, hint: LabelsHint | None = None) -> RefreshReport:
    """Recompute the prediction days touched since the watermarks (see the module docstring)."""
    for _ in range(COMMIT_ATTEMPTS):
        try:
            return _refresh_once(lake, hint)
        except (CommitFailedException, CommitValidationError):
            continue  # another refresh committed first: start over from its watermarks
    raise LakeError(
        f"{lake.namespace}.{LABEL_STATS}: {COMMIT_ATTEMPTS} refreshes in a row lost a race with "
        "another writer; the next refresh catches up"
    )


def rebuild(lake: Lake) -> RefreshReport:
    """Recompute every day from all predictions and labels, in one overwrite commit."""
    started = time.perf_counter()
    stats = lake.table(LABEL_STATS)
    try:
        return _recompute(lake, stats, None, started, "rebuild")
    except (CommitFailedException, CommitValidationError):
        raise LakeError(raced(lake, LABEL_STATS)) from None


def _refresh_once(lake: Lake, hint: LabelsHint | None) -> RefreshReport:
    started = time.perf_counter()
    stats = lake.table(LABEL_STATS)
    pmark, lmark = Watermark.of(stats, PREDICTIONS), Watermark.of(stats, LABELS)
    if pmark.snapshot_id is None and lmark.snapshot_id is None:
        current = stats.current_snapshot()
        if current is not None and int(current.summary.get("total-records", "0")):  # type: ignore[union-attr]
            raise AggregatesStaleError(
                f"{lake.namespace}.{LABEL_STATS} has rows but no watermark: run "
                "`fraudops lake aggregates --rebuild`"
            )
        return _recompute(lake, stats, None, started, "rebuild")
    predictions, labels = lake.table(PREDICTIONS), lake.table(LABELS)
    new_predictions = new_appends(predictions, pmark, LABEL_STATS)
    new_labels = new_appends(labels, lmark, LABEL_STATS)
    if not new_predictions and not new_labels:
        return RefreshReport(
            LABEL_STATS, "nothing-new", 0, 0, pmark.snapshot_id, pmark.folded_rows, _since(started)
        )
    days: set[dt.date] = set()
    if new_predictions:
        scan = predictions.incremental_append_scan(
            from_snapshot_id_exclusive=pmark.snapshot_id,
            to_snapshot_id_inclusive=new_predictions[-1].snapshot_id,
            selected_fields=("request_time",),
        )
        days |= _days_of(scan.to_arrow()["request_time"])
    if new_labels:
        if hint is not None and [s.snapshot_id for s in new_labels] == [hint.labels_snapshot]:
            days |= hint.days
        else:
            scan = labels.incremental_append_scan(
                from_snapshot_id_exclusive=lmark.snapshot_id,
                to_snapshot_id_inclusive=new_labels[-1].snapshot_id,
                selected_fields=("inference_id",),
            )
            ids = set(scan.to_arrow()["inference_id"].drop_null().to_pylist())
            days |= _prediction_days(predictions, ids)
    return _recompute(lake, stats, days, started, "refresh")


def _recompute(
    lake: Lake, stats: Table, days: Collection[dt.date] | None, started: float, mode: str
) -> RefreshReport:
    """Recompute ``days`` (None: every day) and replace their rows in one commit."""
    predictions, labels = lake.table(PREDICTIONS), lake.table(LABELS)
    ptarget, ltarget = predictions.current_snapshot(), labels.current_snapshot()
    amount = predictions_amount_column(lake.spec)
    columns = [*_PREDICTION_COLUMNS, *([amount] if amount else [])]
    where: Any = _day_filter(days) if days is not None else None
    if ptarget is None:
        frames: Iterable[pa.Table] = []
    else:
        scan = predictions.scan(
            snapshot_id=ptarget.snapshot_id,
            selected_fields=tuple(columns),
            **({"row_filter": where} if where is not None else {}),
        )
        frames = _batches(scan.to_arrow_batch_reader())
    latest = _latest(lake, days)
    partials, read = [], 0
    for frame in frames:
        read += frame.num_rows
        partials.append(day_partials(frame, latest, amount))
    result = merge(partials, KEYS, AMOUNTS, empty_partial)
    if days is not None:  # a prediction whose request_time has no day never has a row
        keep = {pd.Timestamp(d, tz="UTC") for d in days}
        result = result[result["day"].isin(keep)]
    rows = conform(
        pa.Table.from_pandas(pack_json(result, SOURCE_PREFIX, "sources"), preserve_index=False),
        stats.schema(),
        f"{lake.namespace}.{LABEL_STATS}",
    )
    props = {KIND: mode, FOLDED_ROWS: str(read)}
    for name, table, target in ((PREDICTIONS, predictions, ptarget), (LABELS, labels, ltarget)):
        props[uuid_key(name)] = str(table.metadata.table_uuid)
        props[snapshot_key(name)] = str(target.snapshot_id) if target else ""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        if days is None:
            stats.overwrite(rows, snapshot_properties=props)
        else:
            stats.overwrite(
                rows,
                overwrite_filter=_In("day", [_midnight(d).isoformat() for d in sorted(days)])
                if days
                else AlwaysFalse(),
                snapshot_properties=props,
            )
    return RefreshReport(
        table=LABEL_STATS,
        mode=mode,
        rows_folded=read,
        rows_written=rows.num_rows,
        watermark=ptarget.snapshot_id if ptarget else None,
        folded_total=read,
        seconds=_since(started),
    )


def _latest(lake: Lake, days: Collection[dt.date] | None) -> InForce:
    """The label in force of the predictions that may be on ``days`` (None: all); the join
    keeps those of the days recomputed."""
    where: Any = AlwaysTrue()
    if days is not None and not days:
        where = AlwaysFalse()
    elif days:
        # A prediction's labels are confirmed after it was made: older events cannot be in
        # force for these days (the labels' confirmed_at bounds prune the files).
        after = _midnight(min(days)) - dt.timedelta(microseconds=1)
        where = _Gt("confirmed_at", after.isoformat())
    events = lake.table(LABELS).scan(row_filter=where, selected_fields=tuple(_LABEL_COLUMNS))
    return InForce.of(latest_in_force(events.to_arrow()))


def latest_in_force(events: pa.Table) -> pa.Table:
    """One row per inference_id: the event with the latest confirmed_at, ties to the later
    ingestion then the later event id — ``fraudops.labels.store.latest_of``'s rule (this
    package sits below ``labels``, whose ingestion calls it; a test holds the two equal)."""
    usable = pc.and_(
        pc.and_(pc.is_valid(events["inference_id"]), pc.is_valid(events["label"])),
        pc.is_valid(events["confirmed_at"]),
    )
    events = events.filter(usable)
    if events.num_rows == 0:
        return events
    ordered = events.sort_by(
        [("confirmed_at", "ascending"), ("ingested_at", "ascending"), ("event_id", "ascending")]
    )
    ids = ordered["inference_id"].combine_chunks().dictionary_encode().indices.to_numpy()
    # The first of each id read backwards is its last in order.
    _, first_backwards = np.unique(ids[::-1], return_index=True)
    return ordered.take(pa.array(len(ids) - 1 - first_backwards))


def _batches(reader: pa.RecordBatchReader, rows: int = 2_500_000) -> Iterable[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _day_filter(days: Collection[dt.date]) -> Any:
    """request_time within any of ``days`` (contiguous days as one range: partition pruning)."""
    if not days:
        return AlwaysFalse()
    ranges: list[list[dt.date]] = []
    for day in sorted(days):
        if ranges and day - ranges[-1][1] == _DAY:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    parts = [
        And(
            _Ge("request_time", _midnight(a).isoformat()),
            _Lt("request_time", _midnight(b + _DAY).isoformat()),
        )
        for a, b in ranges
    ]
    return parts[0] if len(parts) == 1 else Or(*parts)


def _days_of(times: pa.ChunkedArray | pa.Array) -> set[dt.date]:
    days = pc.unique(times.cast(pa.timestamp("us", tz="UTC")).cast(pa.date32())).drop_null()
    return set(days.to_pylist())


def _prediction_days(predictions: Table, ids: set[str]) -> set[dt.date]:
    """The request days of the predictions ``ids`` (an In filter when few, else a scan)."""
    if not ids:
        return set()
    small = len(ids) <= IN_FILTER_MAX_IDS
    scan = predictions.scan(
        row_filter=_In("inference_id", sorted(ids)) if small else AlwaysTrue(),
        selected_fields=("inference_id", "request_time"),
    )
    found = scan.to_arrow()
    if not small:
        found = found.filter(pc.is_in(found["inference_id"], pa.array(sorted(ids))))
    return _days_of(found["request_time"])


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def from_rows(table: pa.Table) -> pd.DataFrame:
    """``label_stats`` rows as a frame with ``source:<name>`` columns."""
    frame = table.to_pandas()
    if frame.empty:
        return empty_partial()
    frame["model_version"] = frame["model_version"].fillna("")
    return unpack_json(frame, "sources", SOURCE_PREFIX)
