"""Finding the predictions a batch of label events names, without reading the table's history.

- An ``inference_id`` minted by fraudops is a UUIDv7 carrying the millisecond of its
  ``request_time`` (``fraudops.ids``): only the day partitions from the day before to the day
  after it are read (the margin the Lookup page uses too).
- A ``transaction_id`` carries no time: the persisted transaction index (``labels.txindex``, shared
  with the dashboard) names the days that hold it, and only those partitions are read; an id it
  does not hold is unknown without a read.
- Other inference ids (not UUIDv7: written by another tool) are looked up with the id filter
  alone, which reads every partition: the old cost, kept for them only.

So a batch reads the partitions of the days it names: its cost follows the traffic of those
days, not the age of the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import (
    AlwaysFalse,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    In,
    LessThan,
    Or,
)

from fraudops.ids import minted_at
from fraudops.labels.events import LabelEvent
from fraudops.labels.txindex import lake_index
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import PREDICTIONS, PREDICTIONS_PARTITION_SOURCE

COLUMNS = ("inference_id", "transaction_id", PREDICTIONS_PARTITION_SOURCE)
MARGIN_DAYS = 1  # the day partitions either side of a UUIDv7's minted day

# pyiceberg's expressions are pydantic models whose __init__ mypy's plugin misreads.
_In: Any = In
_Ge: Any = GreaterThanOrEqual
_Lt: Any = LessThan


def find_predictions(lake: Lake, events: Sequence[LabelEvent]) -> pd.DataFrame:
    """inference_id, transaction_id, request_time of the predictions the events may name (one
    row per inference_id; values None where null)."""
    by_day: set[dt.date] = set()
    timed: set[str] = set()
    untimed: set[str] = set()
    tx_only: set[str] = set()
    for event in events:
        if event.inference_id is not None:
            at = minted_at(event.inference_id)
            if at is None:
                untimed.add(event.inference_id)
            else:
                timed.add(event.inference_id)
                by_day.update(_around(at.date()))
        else:
            assert event.transaction_id is not None  # the model guarantees one id
            tx_only.add(event.transaction_id)
    # The days are pushed into the scan (partition pruning); the ids are matched in Arrow: an
    # Iceberg ``In`` of thousands of ids is re-bound for every data file's residual, which
    # cost ~8 s a weekly batch (a simulation's label ingest spent 256 s there).
    days: set[dt.date] = set(by_day)
    table = lake.table(PREDICTIONS)
    held: list[str] = []
    if tx_only:
        index = lake_index(lake.settings.home_dir, lake.spec.name, table)
        found_days = index.days_of(table, sorted(tx_only))
        held = sorted(value for value, found in found_days.items() if found)
        days.update(day for value in held for day in found_days[value])
    pieces: list[pa.Table] = []
    if days:
        read = table.scan(row_filter=_on_days(days), selected_fields=COLUMNS).to_arrow()
        keep = pc.is_in(read["inference_id"], value_set=pa.array(sorted(timed), pa.string()))
        if held:
            on_tx = pc.is_in(read["transaction_id"], value_set=pa.array(held, pa.string()))
            keep = pc.or_(pc.fill_null(keep, False), pc.fill_null(on_tx, False))
        pieces.append(read.filter(pc.fill_null(keep, False)))
    if untimed:  # no time to prune by: the id filter alone (rare: ids of another tool)
        where = _In("inference_id", sorted(untimed))
        pieces.append(table.scan(row_filter=where, selected_fields=COLUMNS).to_arrow())
    if not pieces:
        return _empty()
    frame = pa.concat_tables(pieces).to_pandas()
    frame = frame.drop_duplicates("inference_id")  # replays are deduplicated, but be sure
    return frame.astype(object).where(frame.notna(), None)


def _around(day: dt.date) -> list[dt.date]:
    return [day + dt.timedelta(days=d) for d in range(-MARGIN_DAYS, MARGIN_DAYS + 1)]


def _on_days(days: Iterable[dt.date]) -> BooleanExpression:
    """``request_time`` on one of ``days``: consecutive days as one range (prunes partitions)."""
    ordered = sorted(set(days))
    if not ordered:
        return AlwaysFalse()
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in ordered:
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + dt.timedelta(days=1))
        else:
            ranges.append((day, day + dt.timedelta(days=1)))
    spans: list[BooleanExpression] = [
        And(
            _Ge(PREDICTIONS_PARTITION_SOURCE, _midnight(start)),
            _Lt(PREDICTIONS_PARTITION_SOURCE, _midnight(end)),
        )
        for start, end in ranges
    ]
    return spans[0] if len(spans) == 1 else Or(*spans)


def _midnight(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
