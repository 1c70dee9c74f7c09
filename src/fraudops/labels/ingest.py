"""Label ingestion: validate a batch of label events, resolve them to predictions, append them.

A batch is all or nothing on *form*: one malformed entry (no id, a label that is not 0/1, a
time that does not parse or lies in the future) refuses the whole batch with every bad entry
named, and nothing is written. Past that, each event is judged on its own and the report says
what became of it:

- **unknown**: no logged prediction has its ``inference_id`` / ``transaction_id`` (or the two
  disagree): not written.
- **duplicate**: the same prediction, label and ``confirmed_at`` is already stored, or repeated
  earlier in the batch: not written again (so re-sending a batch is harmless).
- **conflict**: the prediction has another label, stored or elsewhere in the batch: written and
  reported; the event with the latest ``confirmed_at`` is the label in force.

An event keyed by ``transaction_id`` alone labels every prediction of that transaction (a
transaction scored twice gets the truth twice), one row per ``inference_id``. The accepted
events go to ``labels`` in one Iceberg append.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pyiceberg.expressions import AlwaysTrue, Or

from fraudops.aggregates.hooks import after_label_ingest
from fraudops.config import Settings
from fraudops.errors import FraudopsError, ValidationError
from fraudops.labels.store import (
    IN_FILTER_MAX_IDS,
    LABEL_COLUMNS,
    _In,
    as_utc,
    jsonable,
    label_events,
    latest_of,
)
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import LABELS, PREDICTIONS
from fraudops.spec import FeatureSpec

# A confirmation from a clock a little ahead of ours is not "in the future".
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# Errors named in a refusal message (all of them are in `.errors`).
MAX_ERRORS_SHOWN = 5

_LABEL_WORDS = {"1": 1, "true": 1, "fraud": 1, "0": 0, "false": 0, "legit": 0, "legitimate": 0}


class LabelEvent(BaseModel):
    """One confirmation: prediction (or transaction), label, when, by whom, and notes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inference_id: str | None = Field(None, description="The prediction's inference id.")
    transaction_id: str | None = Field(
        None, description="The transaction; labels each of its predictions."
    )
    label: int = Field(description="1 fraud, 0 legitimate (true/false, fraud/legit accepted).")
    confirmed_at: dt.datetime | None = Field(
        None, description="When it was confirmed (ISO 8601; naive = UTC; default: now)."
    )
    source: str | None = Field(
        None, max_length=200, description="chargeback, investigation, customer_report, ..."
    )
    notes: str | None = Field(None, max_length=10_000)

    @field_validator("inference_id", "transaction_id", "source", "notes", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # CSV cells and NaNs from a data frame mean "not given".
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # numeric ids from a file are still ids
        return value

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, value: Any) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float) and value in (0, 1):
            return int(value)
        if isinstance(value, str) and value.strip().lower() in _LABEL_WORDS:
            return _LABEL_WORDS[value.strip().lower()]
        raise ValueError("label must be 1 (fraud) or 0 (legitimate)")

    @field_validator("confirmed_at", mode="before")
    @classmethod
    def _blank_time(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, pd.Timestamp):
            return None if pd.isna(value) else value.to_pydatetime()
        if isinstance(value, float) and value != value:
            return None
        return value

    @field_validator("confirmed_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _has_id(self) -> LabelEvent:
        if self.inference_id is None and self.transaction_id is None:
            raise ValueError("an event needs an inference_id or a transaction_id")
        return self


class LabelsValidationError(ValidationError):
    """A batch with malformed entries, refused whole. ``errors``: FastAPI-style items whose
    ``loc`` starts with the entry's index in the batch."""

    def __init__(
        self, errors: list[dict[str, Any]], entry_name: Callable[[int], str] | None = None
    ) -> None:
        self.errors = errors
        name = entry_name or (lambda i: f"entry {i}")
        shown = []
        for err in errors[:MAX_ERRORS_SHOWN]:
            index, *where = err["loc"]
            place = name(index) if isinstance(index, int) else str(index)
            if where:
                place += f", field {'.'.join(map(str, where))!r}"
            shown.append(f"{place}: {err['msg']}")
        more = len(errors) - MAX_ERRORS_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(f"label batch refused, nothing written: {'; '.join(shown)}{tail}")

    def renamed(self, entry_name: Callable[[int], str]) -> LabelsValidationError:
        """The same errors, with entries named another way (file rows, say)."""
        return LabelsValidationError(self.errors, entry_name)


@dataclass(frozen=True)
class UnknownLabel:
    """An event naming no logged prediction (or an inference and a transaction that disagree)."""

    index: int
    inference_id: str | None
    transaction_id: str | None
    reason: str


@dataclass(frozen=True)
class DuplicateLabel:
    """An event already stored, or repeated earlier in the batch: not written again."""

    index: int
    inference_id: str
    reason: str


@dataclass(frozen=True)
class LabelConflict:
    """A prediction given differing labels (in the batch, or batch vs stored), and who wins."""

    inference_id: str
    entries: list[int]
    batch_labels: list[int]
    stored_label: int | None
    stored_event_id: str | None
    label_in_force: int
    decided_by: str


@dataclass
class IngestReport:
    """What became of each event of a batch."""

    spec: str
    received: int = 0
    written: int = 0  # rows appended to `labels`
    resolved_by_transaction: int = 0  # rows whose inference_id came from a transaction_id
    unknown: list[UnknownLabel] = field(default_factory=list)
    duplicates: list[DuplicateLabel] = field(default_factory=list)
    conflicts: list[LabelConflict] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def validate_events(entries: Sequence[Any], *, now: dt.datetime | None = None) -> list[LabelEvent]:
    """Every entry as a LabelEvent, or LabelsValidationError naming each bad entry and field."""
    now = as_utc(now)
    events: list[LabelEvent] = []
    errors: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            event = entry if isinstance(entry, LabelEvent) else LabelEvent.model_validate(entry)
        except PydanticValidationError as exc:
            errors += [
                {"loc": [index, *err["loc"]], "msg": err["msg"], "type": err["type"]}
                for err in exc.errors()
            ]
            continue
        if event.confirmed_at is not None and event.confirmed_at > now + FUTURE_TOLERANCE:
            errors.append(
                {
                    "loc": [index, "confirmed_at"],
                    "msg": f"confirmed_at {event.confirmed_at.isoformat()} is in the future",
                    "type": "value_error",
                }
            )
            continue
        events.append(event)
    if errors:
        raise LabelsValidationError(errors)
    return events


def ingest_labels(
    settings: Settings,
    spec_name: str | None,
    events: Sequence[Mapping[str, Any] | LabelEvent],
    *,
    now: dt.datetime | None = None,
    origin: str = "api",
) -> IngestReport:
    """Validate the whole batch, resolve it against ``predictions``, append what is accepted.

    ``now`` (default: the clock) is the ingestion time and the default ``confirmed_at``.
    ``origin`` is recorded in the Iceberg snapshot's properties (api, file, simulator).
    """
    now = as_utc(now)
    valid = validate_events(events, now=now)
    with Lake.open(settings, spec_name) as lake:
        return ingest_events(lake, valid, now=now, origin=origin)


def ingest_events(
    lake: Lake, events: Sequence[LabelEvent], *, now: dt.datetime, origin: str
) -> IngestReport:
    """Resolve, sort out and append already validated events (see the module docstring)."""
    report = IngestReport(spec=lake.spec.name, received=len(events))
    if not events:
        return report
    batch, days = _sort_out(lake, events, report, now, origin)
    after_label_ingest(lake, report, batch, origin=origin, at=now, days=days)  # best effort
    return report


def _sort_out(
    lake: Lake, events: Sequence[LabelEvent], report: IngestReport, now: dt.datetime, origin: str
) -> tuple[str | None, set[dt.date]]:
    """Fill ``report``, append the accepted: their batch (None: none), their predictions' days."""
    predictions = _predictions_of(lake, events)
    day_of = dict(zip(predictions["inference_id"], predictions["request_time"], strict=True))
    by_inference = predictions.set_index("inference_id")["transaction_id"].to_dict()
    by_transaction: dict[str, list[str]] = {}
    for inference_id, transaction_id in zip(
        predictions["inference_id"], predictions["transaction_id"], strict=True
    ):
        if transaction_id is not None:
            by_transaction.setdefault(transaction_id, []).append(inference_id)

    # (entry index, event, inference_id, transaction_id) of every event that names a prediction.
    rows: list[tuple[int, LabelEvent, str, str | None]] = []
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
            rows.append((index, event, event.inference_id, event.transaction_id or logged))
            continue
        assert event.transaction_id is not None  # the model guarantees one id
        found = by_transaction.get(event.transaction_id)
        if not found:
            report.unknown.append(
                _unknown(index, event, f"no prediction has transaction_id {event.transaction_id!r}")
            )
            continue
        for inference_id in found:
            rows.append((index, event, inference_id, event.transaction_id))
            report.resolved_by_transaction += 1

    stored = label_events(lake, {inference_id for _, _, inference_id, _ in rows})
    stored_keys = {
        (r["inference_id"], int(r["label"]), _ts(r["confirmed_at"])): str(r["event_id"])
        for r in _records(stored)
    }
    seen: dict[tuple[str, int, dt.datetime], int] = {}
    accepted: list[dict[str, Any]] = []
    for index, event, inference_id, transaction_id in rows:
        confirmed_at = event.confirmed_at or now
        key = (inference_id, event.label, confirmed_at)
        if key in stored_keys:
            report.duplicates.append(
                DuplicateLabel(index, inference_id, f"already stored as event {stored_keys[key]}")
            )
            continue
        if key in seen:
            report.duplicates.append(
                DuplicateLabel(index, inference_id, f"repeats entry {seen[key]}")
            )
            continue
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

    report.conflicts = _conflicts(accepted, stored)
    if not accepted:
        return None, set()
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    batch = uuid.uuid4().hex[:8]
    # Time-ordered ids: within one batch (same ingested_at) a later entry sorts later, so
    # "latest wins" breaks a tie of confirmed_at by batch order.
    for seq, row in enumerate(accepted):
        row["event_id"] = f"{stamp}-{batch}-{seq:06d}"
        row["ingested_at"] = now
    table = pa.Table.from_pylist([{c: row[c] for c in LABEL_COLUMNS} for row in accepted])
    report.written = lake.append(
        LABELS,
        table,
        snapshot_properties={"fraudops.labels.origin": origin, "fraudops.labels.batch": batch},
    )
    report.event_ids = [row["event_id"] for row in accepted]
    return batch, set(pd.DatetimeIndex([day_of.get(r["inference_id"]) for r in accepted]).date)


def labels_route_payload(
    settings: Settings,
    spec: FeatureSpec | str | None,
    body: bytes,
    *,
    now: dt.datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/labels``: one event (a JSON object) or a list of them.

    422 in FastAPI's error shape when the body is not JSON or an entry is malformed (``loc``
    ``["body", i, field]`` for entry ``i`` of a list, ``["body", field]`` for a single object);
    nothing is written then. 200 with the IngestReport otherwise; 503 when the lake fails.
    """
    spec_name = spec.name if isinstance(spec, FeatureSpec) else spec
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return 422, _detail(["body", exc.pos], f"JSON decode error: {exc.msg}", "json_invalid")
    single = isinstance(payload, dict)
    if not single and not isinstance(payload, list):
        return 422, _detail(["body"], "expected a label event object or a list of them", "type")
    entries = [payload] if single else payload
    limit = settings.labels.max_batch
    if len(entries) > limit:
        return 422, _detail(
            ["body"], f"at most {limit} label events per request (labels.max_batch)", "too_long"
        )
    try:
        report = ingest_labels(settings, spec_name, entries, now=now, origin="api")
    except LabelsValidationError as exc:
        detail = [
            {"loc": ["body", *(err["loc"][1:] if single else err["loc"])], **_msg_type(err)}
            for err in exc.errors
        ]
        return 422, {"detail": detail}
    except FraudopsError as exc:  # the lake is down or misconfigured: retry later
        return 503, {"detail": str(exc)}
    return 200, report.to_dict()


# ---- helpers ------------------------------------------------------------------------------


def _predictions_of(lake: Lake, events: Sequence[LabelEvent]) -> pd.DataFrame:
    """inference_id, transaction_id, request_time of the predictions the events may name."""
    inference_ids = sorted({e.inference_id for e in events if e.inference_id is not None})
    transaction_ids = sorted({e.transaction_id for e in events if e.transaction_id is not None})
    small = len(inference_ids) + len(transaction_ids) <= IN_FILTER_MAX_IDS
    where: Any = AlwaysTrue()
    if small:
        parts = []
        if inference_ids:
            parts.append(_In("inference_id", inference_ids))
        if transaction_ids:
            parts.append(_In("transaction_id", transaction_ids))
        where = parts[0] if len(parts) == 1 else Or(*parts)
    frame = (
        lake.table(PREDICTIONS)
        .scan(row_filter=where, selected_fields=("inference_id", "transaction_id", "request_time"))
        .to_arrow()
        .to_pandas()
    )
    if not small:
        keep = frame["inference_id"].isin(inference_ids) | frame["transaction_id"].isin(
            transaction_ids
        )
        frame = frame[keep]
    frame = frame.drop_duplicates("inference_id")  # replays are deduplicated, but be sure
    return frame.astype(object).where(frame.notna(), None)


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


def _detail(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


def _msg_type(err: Mapping[str, Any]) -> dict[str, Any]:
    return {"msg": err["msg"], "type": err["type"]}


def _ts(value: Any) -> dt.datetime:
    """A stored timestamp (pandas or datetime) as an aware datetime comparable with events'."""
    return as_utc(pd.Timestamp(value).to_pydatetime())
