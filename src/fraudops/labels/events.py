"""Label events' form: the event model, the batch refusal, what a report says of each event.

A batch is all or nothing on form (see ``labels.ingest``): every bad entry is named with its
field, in FastAPI's error shape (``loc`` starts with the entry's index).

Times: ``confirmed_at`` must be representable (a time that overflows when brought to UTC, such
as ``0001-01-01T00:00:00+01:00``, is a bad value, not a server error) and not later than now +
``labels.max_clock_skew_s``; "now" is the caller's clock (the wall clock, or a simulation's).
The lower bound, the prediction's ``request_time``, is checked once the predictions are found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from fraudops.errors import ValidationError
from fraudops.labels.store import jsonable
from fraudops.timeutil import as_utc

# A confirmation from a clock a little ahead of ours is not "in the future" (the default of
# labels.max_clock_skew_s).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# Ids longer than this are no id fraudops logged: refused, not looked up.
MAX_ID_CHARS = 256  # as /v1/predict's transaction_id
# Errors named in a refusal message (all of them are in `.errors`).
MAX_ERRORS_SHOWN = 5

_LABEL_WORDS = {"1": 1, "true": 1, "fraud": 1, "0": 0, "false": 0, "legit": 0, "legitimate": 0}


class LabelEvent(BaseModel):
    """One confirmation: prediction (or transaction), label, when, by whom, and notes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inference_id: str | None = Field(
        None, max_length=MAX_ID_CHARS, description="The prediction's inference id."
    )
    transaction_id: str | None = Field(
        None,
        max_length=MAX_ID_CHARS,
        description="The transaction; labels each of its predictions.",
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
        try:
            return as_utc(value)
        except (OverflowError, ValueError):
            # 0001-01-01T00:00:00+01:00 is a year-0 time in UTC: no datetime holds it.
            raise ValueError(
                f"{value.isoformat()} is out of the representable range once in UTC"
            ) from None

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


def validate_events(
    entries: Sequence[Any],
    *,
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = FUTURE_TOLERANCE,
) -> list[LabelEvent]:
    """Every entry as a LabelEvent, or LabelsValidationError naming each bad entry and field
    (a ``confirmed_at`` later than ``now`` + ``max_skew`` is one)."""
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
        if (error := future_error(index, event, now, max_skew)) is not None:
            errors.append(error)
            continue
        events.append(event)
    if errors:
        raise LabelsValidationError(errors)
    return events


def future_error(
    index: int, event: LabelEvent, now: dt.datetime, max_skew: dt.timedelta
) -> dict[str, Any] | None:
    """The error of an event confirmed later than ``now`` + ``max_skew``, else None."""
    if event.confirmed_at is None or event.confirmed_at <= now + max_skew:
        return None
    return time_error(
        index,
        f"confirmed_at {event.confirmed_at.isoformat()} is in the future (now is "
        f"{now.isoformat()}, labels.max_clock_skew_s {max_skew.total_seconds():g})",
    )


def time_error(index: int, msg: str) -> dict[str, Any]:
    return {"loc": [index, "confirmed_at"], "msg": msg, "type": "value_error"}
