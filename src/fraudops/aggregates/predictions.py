"""``prediction_stats``: kept up to date from ``predictions``, exactly once, whoever writes.

``refresh`` reads only the data files that ``predictions`` snapshots added after the watermark
(pyiceberg's incremental append scan over the snapshot lineage) and appends their partial
counts in one commit whose snapshot summary carries the new watermark. The stats table refuses
a commit that lost a race (``commit.retry.num-retries`` 0, see lake.schemas), so two refreshes
at once cannot both fold the same rows: the loser starts over from the winner's watermark.
Every ``COMPACT_AT_FILES`` data files, a refresh rewrites the table as one row per key.
``rebuild`` recomputes everything from a full scan, in one overwrite commit.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.table import Table

from fraudops.aggregates import folding
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
from fraudops.lake.schemas import PREDICTION_STATS, PREDICTIONS, predictions_amount_column
from fraudops.spec import FeatureSpec

log = logging.getLogger(__name__)

COMPACT_AT_FILES = 64
COMMIT_ATTEMPTS = 4  # a refresh that keeps losing races gives up (the next one catches up)


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh (or rebuild) of an aggregate table did."""

    table: str
    mode: str  # refresh | rebuild | compact | nothing-new
    rows_folded: int  # source rows read and folded in by this call
    rows_written: int  # aggregate rows committed
    watermark: int | None  # the source snapshot now folded in
    folded_total: int  # source rows folded in since the last rebuild
    seconds: float
    skipped: int = 0  # source rows left out (no request_time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh(lake: Lake) -> RefreshReport:
    """Fold the predictions added since the watermark into ``prediction_stats``."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return _refresh_once(lake)
        except (CommitFailedException, CommitValidationError):
            log.info("aggregates: prediction_stats refresh lost a race, retrying (%d)", attempt + 1)
    raise LakeError(
        f"{lake.namespace}.{PREDICTION_STATS}: {COMMIT_ATTEMPTS} refreshes in a row lost a race "
        "with another writer; the next refresh catches up"
    )


def _refresh_once(lake: Lake) -> RefreshReport:
    started = time.perf_counter()
    stats = lake.table(PREDICTION_STATS)  # loaded first: the commit requires this snapshot
    mark = Watermark.of(stats, PREDICTIONS)
    source = lake.table(PREDICTIONS)
    if mark.snapshot_id is None:
        if stats.current_snapshot() is not None and _has_rows(stats):
            raise AggregatesStaleError(
                f"{lake.namespace}.{PREDICTION_STATS} has rows but no watermark: run "
                "`fraudops lake aggregates --rebuild`"
            )
        return _rebuild(lake, stats, source, started)
    snapshots = new_appends(source, mark, PREDICTION_STATS)
    if not snapshots:
        return _report("nothing-new", 0, 0, mark.snapshot_id, mark.folded_rows, started)
    target = snapshots[-1].snapshot_id
    columns = folding.prediction_columns(predictions_amount_column(lake.spec))
    scan = source.incremental_append_scan(
        from_snapshot_id_exclusive=mark.snapshot_id,
        to_snapshot_id_inclusive=target,
        selected_fields=tuple(columns),
    )
    partials, read, skipped = _fold_batches(scan.to_arrow_batch_reader(), lake.spec)
    new = folding.merge(partials)
    folded_total = mark.folded_rows + read
    props = _properties(source, target, folded_total, "refresh")
    files = int(stats.current_snapshot().summary.get("total-data-files", "0"))  # type: ignore[union-attr]
    if files + 1 >= COMPACT_AT_FILES:
        existing = folding.from_rows(stats.scan().to_arrow())
        merged = folding.merge([existing, new])
        props[KIND] = "compact"
        written = _overwrite(stats, merged, props, lake)
        mode = "compact"
    else:
        written = _append(stats, new, props, lake)
        mode = "refresh"
    return _report(mode, read, written, target, folded_total, started, skipped)


def rebuild(lake: Lake) -> RefreshReport:
    """Recompute ``prediction_stats`` from every prediction, in one overwrite commit."""
    started = time.perf_counter()
    stats = lake.table(PREDICTION_STATS)
    source = lake.table(PREDICTIONS)
    try:
        return _rebuild(lake, stats, source, started)
    except (CommitFailedException, CommitValidationError):
        raise LakeError(raced(lake, PREDICTION_STATS)) from None


def raced(lake: Lake, table: str) -> str:
    return (
        f"{lake.namespace}.{table} was changed by a refresh during the rebuild; nothing was "
        "replaced, run the rebuild again"
    )


def _rebuild(lake: Lake, stats: Table, source: Table, started: float) -> RefreshReport:
    current = source.current_snapshot()
    if current is None:  # nothing logged yet
        return _report("nothing-new", 0, 0, None, 0, started)
    columns = folding.prediction_columns(predictions_amount_column(lake.spec))
    scan = source.scan(snapshot_id=current.snapshot_id, selected_fields=tuple(columns))
    partials, read, skipped = _fold_batches(scan.to_arrow_batch_reader(), lake.spec)
    merged = folding.merge(partials)
    props = _properties(source, current.snapshot_id, read, "rebuild")
    written = _overwrite(stats, merged, props, lake)
    return _report("rebuild", read, written, current.snapshot_id, read, started, skipped)


def _fold_batches(reader: pa.RecordBatchReader, spec: FeatureSpec) -> tuple[list[Any], int, int]:
    amount = predictions_amount_column(spec)
    partials, read, skipped = [], 0, 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows, skipped
        if pending:
            partial, left_out = folding.fold(pa.Table.from_batches(pending), amount)
            partials.append(partial)
            skipped += left_out
            pending, pending_rows = [], 0

    for batch in reader:
        read += batch.num_rows
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= 1_000_000:
            flush()
    flush()
    return partials, read, skipped


def _has_rows(table: Table) -> bool:
    current = table.current_snapshot()
    return bool(current and int(current.summary.get("total-records", "0")))  # type: ignore[union-attr]


def _properties(source: Table, snapshot_id: int, folded: int, kind: str) -> dict[str, str]:
    return {
        snapshot_key(PREDICTIONS): str(snapshot_id),
        uuid_key(PREDICTIONS): str(source.metadata.table_uuid),
        FOLDED_ROWS: str(folded),
        KIND: kind,
    }


def _append(stats: Table, partial: Any, props: dict[str, str], lake: Lake) -> int:
    rows = conform(folding.to_rows(partial), stats.schema(), f"{lake.namespace}.{PREDICTION_STATS}")
    stats.append(rows, snapshot_properties=props)
    return rows.num_rows


def _overwrite(stats: Table, partial: Any, props: dict[str, str], lake: Lake) -> int:
    rows = conform(folding.to_rows(partial), stats.schema(), f"{lake.namespace}.{PREDICTION_STATS}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        stats.overwrite(rows, snapshot_properties=props)
    return rows.num_rows


def _report(
    mode: str,
    read: int,
    written: int,
    watermark: int | None,
    total: int,
    started: float,
    skipped: int = 0,
) -> RefreshReport:
    return RefreshReport(
        table=PREDICTION_STATS,
        mode=mode,
        rows_folded=read,
        rows_written=written,
        watermark=watermark,
        folded_total=total,
        seconds=round(time.perf_counter() - started, 3),
        skipped=skipped,
    )
