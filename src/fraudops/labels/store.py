"""Reading the labels: the stored events and the label in force per prediction.

Events are only appended; the label in force for a prediction is its event with the latest
``confirmed_at`` (ties: the later ingestion, then the later entry of a batch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd
from pyiceberg.expressions import AlwaysTrue, And, GreaterThan, In
from pyiceberg.table import Table

from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import LABELS
from fraudops.timeutil import as_utc

# Up to this many ids the look-ups are Iceberg `In` filters; beyond, a scan of two columns.
IN_FILTER_MAX_IDS = 1_000

LABEL_COLUMNS = [
    "event_id",
    "inference_id",
    "transaction_id",
    "label",
    "confirmed_at",
    "source",
    "notes",
    "ingested_at",
]

# pyiceberg's expressions are pydantic models whose __init__ mypy's plugin misreads.
_In: Any = In
_GreaterThan: Any = GreaterThan


def latest_labels(
    lake: Lake,
    *,
    as_of: dt.datetime | None = None,
    inference_ids: Iterable[str] | None = None,
    confirmed_after: dt.datetime | None = None,
) -> pd.DataFrame:
    """The label in force per ``inference_id``: its event with the latest ``confirmed_at``.

    Ties go to the later ingestion, then to the later entry of a batch. With ``as_of`` only
    events confirmed by then count (what was known at that time). ``confirmed_after`` skips
    older events in the scan — for predictions made after that time, whose labels can only
    be confirmed later. Columns: LABEL_COLUMNS.
    """
    events = label_events(
        lake,
        set(inference_ids) if inference_ids is not None else None,
        confirmed_after=confirmed_after,
    )
    if as_of is not None:
        events = events[events["confirmed_at"] <= pd.Timestamp(as_utc(as_of))]
    return latest_of(events)


def label_events(
    lake: Lake,
    inference_ids: set[str] | None = None,
    *,
    confirmed_after: dt.datetime | None = None,
    table: Table | None = None,
) -> pd.DataFrame:
    """Stored label events, of ``inference_ids`` only when given, confirmed after
    ``confirmed_after`` only when given; confirmed_at in UTC. ``table``: the ``labels`` table
    as loaded (its snapshot) rather than as it is now."""
    if inference_ids is not None and not inference_ids:
        return _empty_labels()
    if not lake.exists(LABELS):
        return _empty_labels()
    small = inference_ids is not None and len(inference_ids) <= IN_FILTER_MAX_IDS
    where: Any = AlwaysTrue()
    if small and inference_ids:
        where = _In("inference_id", sorted(inference_ids))
    if confirmed_after is not None:
        after: Any = _GreaterThan("confirmed_at", as_utc(confirmed_after).isoformat())
        where = after if isinstance(where, AlwaysTrue) else And(where, after)
    source = table if table is not None else lake.table(LABELS)
    frame = source.scan(row_filter=where).to_arrow().to_pandas()
    if inference_ids is not None and not small:
        frame = frame[frame["inference_id"].isin(inference_ids)]
    # Rows another writer left without an id, label or time cannot be a label in force.
    frame = frame[
        frame["inference_id"].notna() & frame["label"].notna() & frame["confirmed_at"].notna()
    ]
    return frame.reset_index(drop=True)


def _empty_labels() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in LABEL_COLUMNS})
    for column in ("confirmed_at", "ingested_at"):
        frame[column] = pd.Series(dtype="datetime64[us, UTC]")
    frame["label"] = pd.Series(dtype="Int32")
    return frame


def latest_of(events: pd.DataFrame) -> pd.DataFrame:
    """One row per inference_id: its latest event (see :func:`latest_labels`)."""
    if events.empty:
        return _empty_labels()
    ordered = events.sort_values(["confirmed_at", "ingested_at", "event_id"], kind="stable")
    latest = ordered.drop_duplicates("inference_id", keep="last")
    return latest.sort_values("inference_id").reset_index(drop=True)[LABEL_COLUMNS]


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
