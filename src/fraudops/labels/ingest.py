"""Label ingestion: validate a batch of label events, resolve them to predictions, append them.

A batch is all or nothing on *form*: one malformed entry (no id, a label that is not 0/1, a
value that cannot be represented, a ``confirmed_at`` later than now + ``labels.max_clock_skew_s``
or earlier than the ``request_time`` of the prediction it labels, less the same skew) refuses the
whole batch with every bad entry named, and nothing is written. "Now" is the caller's clock: the
wall clock for the API and the CLI, the simulated one in a simulation. Past that, each event is
judged on its own and the report says what became of it:

- **unknown**: no logged prediction has its ``inference_id`` / ``transaction_id`` (or the two
  disagree): not written.
- **duplicate**: the same prediction, label and ``confirmed_at`` is already stored, or repeated
  earlier in the batch; for an event without ``confirmed_at``, the same label is already the one
  in force for the prediction: not written again (so re-sending a batch is harmless).
- **conflict**: the prediction has another label, stored or elsewhere in the batch: written and
  reported; the event with the latest ``confirmed_at`` is the label in force.

An event keyed by ``transaction_id`` alone labels every prediction of that transaction (a
transaction scored twice gets the truth twice), one row per ``inference_id``. The predictions are
found by reading only the days the ids name (``labels.resolve``).

**Concurrency** (the same batch re-sent while the first is still being written): the accepted
events go to ``labels`` in one Iceberg append *conditional on the snapshot the duplicates were
checked against* (optimistic concurrency, no lock). If another batch committed in between, the
append fails without writing, the events are checked again against what landed, and the append
is retried; so an event is stored once however many copies race, and unrelated batches never
wait for each other, only retry their commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.labels.events import (
    FUTURE_TOLERANCE,
    MAX_ERRORS_SHOWN,
    DuplicateLabel,
    IngestReport,
    LabelConflict,
    LabelEvent,
    LabelsValidationError,
    UnknownLabel,
    future_error,
    time_error,
    validate_events,
)
from fraudops.labels.resolve import find_predictions
from fraudops.labels.store import LABEL_COLUMNS, label_events, latest_of
from fraudops.lake.catalog import Lake
from fraudops.lake.commits import CommitListeners, LabelCounts, LabelsCommitted, WrittenLabel
from fraudops.lake.conditional import ConcurrentCommitError, append_if_current
from fraudops.lake.schemas import LABELS
from fraudops.timeutil import as_utc

__all__ = [
    "FUTURE_TOLERANCE",
    "MAX_ERRORS_SHOWN",
    "DuplicateLabel",
    "IngestReport",
    "LabelConflict",
    "LabelEvent",
    "LabelsValidationError",
    "UnknownLabel",
    "ingest_events",
    "ingest_labels",
    "validate_events",
]

log = logging.getLogger(__name__)

# Commits of one batch that lost a race to another writer before it gives up (503: retry).
MAX_COMMIT_ATTEMPTS = 12

# (entry index, event, inference_id, transaction_id) of an event resolved to a prediction.
Row = tuple[int, LabelEvent, str, str | None]


def ingest_labels(
    lake: Lake,
    events: Sequence[Mapping[str, Any] | LabelEvent],
    *,
    now: dt.datetime | None = None,
    origin: str = "api",
    listeners: CommitListeners | None = None,
) -> IngestReport:
    """Validate the whole batch, resolve it against ``lake``'s ``predictions``, append what is
    accepted.

    ``now`` (default: the clock) is the ingestion time and the default ``confirmed_at``.
    ``origin`` is recorded in the Iceberg snapshot's properties (api, file, simulator).
    ``listeners`` are told what was committed (``Runtime.commits``: aggregates, maintenance).
    """
    now = as_utc(now)
    valid = validate_events(events, now=now, max_skew=max_skew(lake.settings))
    return ingest_events(lake, valid, now=now, origin=origin, listeners=listeners)


def max_skew(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.labels.max_clock_skew_s)


def ingest_events(
    lake: Lake,
    events: Sequence[LabelEvent],
    *,
    now: dt.datetime,
    origin: str,
    listeners: CommitListeners | None = None,
) -> IngestReport:
    """Resolve, sort out and append already validated events (see the module docstring);
    LabelsValidationError when a time is out of range (nothing written)."""
    now = as_utc(now)
    report = IngestReport(spec=lake.spec.name, received=len(events))
    if not events:
        return report
    skew = max_skew(lake.settings)
    errors = [e for i, ev in enumerate(events) if (e := future_error(i, ev, now, skew))]
    if errors:
        raise LabelsValidationError(errors)
    rows, day_of = _resolve(lake, events, report, now, skew)
    # Every stored event of these predictions was confirmed after the first of them (less the
    # skew): a filter on confirmed_at lets the labels scan skip older files.
    times = [_ts(day_of[i]) for _, _, i, _ in rows if day_of[i] is not None]
    complete = times and len(times) == len(rows)
    since = min(times) - skew - dt.timedelta(seconds=1) if complete else None
    batch, accepted = _append(lake, rows, report, now, origin, since)
    written = [row["inference_id"] for row in accepted]
    days = set(pd.DatetimeIndex([day_of.get(i) for i in written]).date)
    if listeners is not None:  # best effort: the labels are committed whatever they do
        listeners.publish(
            LabelsCommitted(
                lake.spec.name,
                LABELS,
                len(written),
                batch=batch,
                origin=origin,
                at=now,
                days=frozenset(days),
                counts=LabelCounts(
                    received=report.received,
                    written=report.written,
                    unknown=len(report.unknown),
                    duplicates=len(report.duplicates),
                    conflicts=len(report.conflicts),
                ),
                labels=tuple(
                    WrittenLabel(
                        row["inference_id"],
                        row["transaction_id"],
                        bool(row["label"]),
                        as_utc(row["confirmed_at"]),
                    )
                    for row in accepted
                ),
                lake=lake,
            )
        )
    return report


def _resolve(
    lake: Lake,
    events: Sequence[LabelEvent],
    report: IngestReport,
    now: dt.datetime,
    skew: dt.timedelta,
) -> tuple[list[Row], dict[str, Any]]:
    """The events resolved to predictions (the unknown ones reported), and each prediction's
    request_time; LabelsValidationError for a confirmation before its prediction."""
    predictions = find_predictions(lake, events)
    day_of = dict(zip(predictions["inference_id"], predictions["request_time"], strict=True))
    by_inference = predictions.set_index("inference_id")["transaction_id"].to_dict()
    by_transaction: dict[str, list[str]] = {}
    for inference_id, transaction_id in zip(
        predictions["inference_id"], predictions["transaction_id"], strict=True
    ):
        if transaction_id is not None:
            by_transaction.setdefault(transaction_id, []).append(inference_id)

    rows: list[Row] = []
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        if event.inference_id is not None:
            if event.inference_id not in by_inference:
                report.unknown.append(
                    _unknown(index, event, f"no prediction has inference_id {event.inference_id!r}")
                )
                continue
            logged = by_inference[event.inference_id]
            if event.transaction_id is not None and logged not in (None, event.transaction_id):
                report.unknown.append(
                    _unknown(
                        index,
                        event,
                        f"inference_id {event.inference_id!r} scored transaction {logged!r}, "
                        f"not {event.transaction_id!r}",
                    )
                )
                continue
            found = [(event.inference_id, event.transaction_id or logged)]
        else:
            assert event.transaction_id is not None  # the model guarantees one id
            ids = by_transaction.get(event.transaction_id)
            if not ids:
                report.unknown.append(
                    _unknown(
                        index, event, f"no prediction has transaction_id {event.transaction_id!r}"
                    )
                )
                continue
            found = [(inference_id, event.transaction_id) for inference_id in ids]
        # Confirmed before the (first) prediction it labels, less the clocks' skew: impossible.
        served = [_ts(day_of[i]) for i, _ in found if day_of[i] is not None]
        confirmed = event.confirmed_at or now
        first = min(served) if served else None
        if first is not None and confirmed < first - skew:
            errors.append(
                time_error(
                    index,
                    f"confirmed_at {confirmed.isoformat()} is before the prediction it labels "
                    f"({found[0][0]}, request_time {first.isoformat()})",
                )
            )
            continue
        rows += [(index, event, inference_id, tx) for inference_id, tx in found]
        if event.inference_id is None:
            report.resolved_by_transaction += len(found)
    if errors:
        raise LabelsValidationError(errors)
    return rows, day_of


def _append(
    lake: Lake,
    rows: list[Row],
    report: IngestReport,
    now: dt.datetime,
    origin: str,
    since: dt.datetime | None,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Append the rows not already stored, conditional on the snapshot they were checked
    against; on a lost race, check again and retry. The batch id (None: nothing written) and
    the rows written."""
    ids = {inference_id for _, _, inference_id, _ in rows}
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    batch = uuid.uuid4().hex[:8]
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        table = lake.table(LABELS)  # this attempt's snapshot: checked against, appended to
        stored = label_events(lake, ids, table=table, confirmed_after=since)
        accepted = _accepted(rows, stored, report, now)
        report.conflicts = _conflicts(accepted, stored)
        if not accepted:
            return None, []
        # Time-ordered ids: within one batch (same ingested_at) a later entry sorts later, so
        # "latest wins" breaks a tie of confirmed_at by batch order.
        for seq, row in enumerate(accepted):
            row["event_id"] = f"{stamp}-{batch}-{seq:06d}"
            row["ingested_at"] = now
        data = pa.Table.from_pylist([{c: row[c] for c in LABEL_COLUMNS} for row in accepted])
        try:
            report.written = append_if_current(
                lake,
                table,
                data,
                snapshot_properties={
                    "fraudops.labels.origin": origin,
                    "fraudops.labels.batch": batch,
                },
            )
        except ConcurrentCommitError:
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # desynchronise
            continue
        report.event_ids = [row["event_id"] for row in accepted]
        return batch, accepted
    raise LakeError(
        f"labels: {MAX_COMMIT_ATTEMPTS} commits in a row lost to other writers of "
        f"{lake.namespace}.labels; nothing was written, send the batch again"
    )


def _accepted(
    rows: list[Row], stored: pd.DataFrame, report: IngestReport, now: dt.datetime
) -> list[dict[str, Any]]:
    """The rows to write (the duplicates reported instead)."""
    report.duplicates = []
    records = _records(stored)
    stored_keys = {
        (r["inference_id"], int(r["label"]), _ts(r["confirmed_at"])): str(r["event_id"])
        for r in records
    }
    in_force = {r["inference_id"]: r for r in _records(latest_of(stored))}
    seen: dict[tuple[str, int, dt.datetime], int] = {}
    accepted: list[dict[str, Any]] = []
    for index, event, inference_id, transaction_id in rows:
        confirmed_at = event.confirmed_at or now
        key = (inference_id, event.label, confirmed_at)
        current = in_force.get(inference_id)
        if key in stored_keys:
            reason = f"already stored as event {stored_keys[key]}"
        elif key in seen:
            reason = f"repeats entry {seen[key]}"
        elif (
            event.confirmed_at is None
            and current is not None
            and int(current["label"]) == event.label
        ):  # no time of its own: a resend of the label in force
            reason = f"label {event.label} already in force (event {current['event_id']})"
        else:
            seen[key] = index
            accepted.append(
                {
                    "index": index,
                    "inference_id": inference_id,
                    "transaction_id": transaction_id,
                    "label": event.label,
                    "confirmed_at": confirmed_at,
                    "source": event.source,
                    "notes": event.notes,
                }
            )
            continue
        report.duplicates.append(DuplicateLabel(index, inference_id, reason))
    return accepted


# ---- helpers ------------------------------------------------------------------------------


def _conflicts(accepted: list[dict[str, Any]], stored: pd.DataFrame) -> list[LabelConflict]:
    """Per prediction with differing labels (in the batch, or batch vs stored): who wins."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in accepted:
        by_id.setdefault(row["inference_id"], []).append(row)
    in_force = {row["inference_id"]: row for row in _records(latest_of(stored))}
    conflicts: list[LabelConflict] = []
    for inference_id, rows in by_id.items():
        previous = in_force.get(inference_id)
        labels = {row["label"] for row in rows}
        if previous is not None:
            labels.add(int(previous["label"]))
        if len(labels) < 2:
            continue
        # The batch is ingested after everything stored: on a confirmed_at tie it wins, and
        # within the batch the later entry wins.
        winner: dict[str, Any] | None = None
        for row in rows:
            if winner is None or row["confirmed_at"] >= winner["confirmed_at"]:
                winner = row
        assert winner is not None
        # The stored label stays in force when it was confirmed after the batch's latest.
        stored_wins = previous is not None and (
            _ts(previous["confirmed_at"]) > winner["confirmed_at"]
        )
        conflicts.append(
            LabelConflict(
                inference_id=inference_id,
                entries=[row["index"] for row in rows],
                batch_labels=[row["label"] for row in rows],
                stored_label=None if previous is None else int(previous["label"]),
                stored_event_id=None if previous is None else str(previous["event_id"]),
                label_in_force=(
                    int(previous["label"]) if stored_wins and previous else winner["label"]
                ),
                decided_by=(
                    f"stored event {previous['event_id']}"
                    if stored_wins and previous
                    else f"entry {winner['index']}"
                ),
            )
        )
    return conflicts


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _unknown(index: int, event: LabelEvent, reason: str) -> UnknownLabel:
    return UnknownLabel(index, event.inference_id, event.transaction_id, reason)


def _ts(value: Any) -> dt.datetime:
    """A stored timestamp (pandas or datetime) as an aware datetime comparable with events'."""
    return as_utc(pd.Timestamp(value).to_pydatetime())
