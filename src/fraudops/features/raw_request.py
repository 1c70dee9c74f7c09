"""A raw transaction as a client sends it: checked against the spec, named errors when not.

A raw request is a JSON object with the spec's ``timestamp_column`` (an ISO 8601 time for
``timestamp_kind: datetime``, naive taken as UTC; a number of seconds for ``seconds``), its
``keys`` (strings or integers), its plain features by column name, and optionally
``transaction_id`` (or the spec's ``id_column``) and the spec's ``customer_column``. Nothing
else: the derived features are computed, never sent. Every problem is reported at once, in
FastAPI's 422 shape (``loc``, ``msg``, ``type``), so a refused request updates nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fraudops.errors import ValidationError
from fraudops.spec import Feature, FeatureKind, FeatureSpec
from fraudops.timeutil import as_utc, utc_now

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)
MAX_ID_LENGTH = 256
TRANSACTION_ID = "transaction_id"


def to_time_us(value: Any) -> int:
    """Microseconds since the epoch of a datetime (naive: UTC), or of a number of seconds."""
    if isinstance(value, dt.datetime):
        return int((as_utc(value) - _EPOCH) // _ONE_US)
    numeric = isinstance(value, int | float) or hasattr(value, "dtype")  # NumPy scalars too
    if isinstance(value, bool) or not numeric:
        raise TypeError(f"not a time: {value!r}")
    return round(float(value) * 1_000_000)


@dataclass(frozen=True, slots=True)
class RawTransaction:
    """A validated raw transaction: its time (``time_us``, see to_time_us), key values as
    strings, plain feature values by column name, and its id once known."""

    time_us: int
    keys: Mapping[str, str]
    values: Mapping[str, float]
    transaction_id: str | None = None
    customer_id: str | None = None

    def with_id(self, transaction_id: str) -> RawTransaction:
        return replace(self, transaction_id=transaction_id)


class RawRequestInvalid(ValidationError):
    """A raw request broke the spec; ``errors`` lists each bad field (FastAPI's 422 shape)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        )
        self.errors = errors


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


class RawRequestParser:
    """Checks raw transaction objects for one spec; build once, reuse for every request."""

    def __init__(self, spec: FeatureSpec, max_clock_skew_s: float = 300.0) -> None:
        self.spec = spec
        self.max_clock_skew = dt.timedelta(seconds=max_clock_skew_s)
        self.features = list(spec.features)
        self.id_fields = [TRANSACTION_ID]
        if spec.id_column and spec.id_column != TRANSACTION_ID:
            self.id_fields.append(spec.id_column)
        extra = [spec.customer_column] if spec.customer_column else []
        self.known = {
            spec.timestamp_column,
            *spec.keys,
            *(f.name for f in self.features),
            *self.id_fields,
            *extra,
        }

    def parse(
        self, obj: Any, *, now: dt.datetime | None = None, where: list[Any] | None = None
    ) -> RawTransaction:
        """``obj`` (a decoded JSON object) as a RawTransaction, or RawRequestInvalid."""
        loc = list(where or ["body"])
        if not isinstance(obj, dict):
            raise RawRequestInvalid([_error(loc, "expected a transaction object", "dict_type")])
        errors: list[dict[str, Any]] = []
        if not self.known.issuperset(obj):
            errors.extend(
                _error([*loc, name], "Extra inputs are not permitted", "extra_forbidden")
                for name in sorted(set(obj) - self.known)
            )
        time_us = self._time(obj, loc, errors, now)
        keys = {}
        for key in self.spec.keys:
            value = self._string(obj, key, loc, errors, required=True)
            if value is not None:
                keys[key] = value
        values = {}
        for feature in self.features:
            number = self._number(obj, feature, loc, errors)
            if number is not None:
                values[feature.name] = number
        ids = [
            (name, self._string(obj, name, loc, errors, required=False)) for name in self.id_fields
        ]
        given = [(name, v) for name, v in ids if v is not None]
        if len(given) > 1:
            errors.append(
                _error([*loc, given[1][0]], f"the id twice (also {given[0][0]!r})", "value_error")
            )
        customer = None
        column = self.spec.customer_column
        if column in self.spec.keys:
            customer = keys.get(column)
        elif column is not None:
            customer = self._string(obj, column, loc, errors, required=False)
        if errors:
            raise RawRequestInvalid(errors)
        assert time_us is not None
        return RawTransaction(
            time_us=time_us,
            keys=keys,
            values=values,
            transaction_id=given[0][1] if given else None,
            customer_id=customer,
        )

    def parse_many(self, payload: Any, *, now: dt.datetime | None = None) -> list[RawTransaction]:
        """One object or a list of them; the errors of every row at once."""
        if isinstance(payload, dict):
            return [self.parse(payload, now=now)]
        if not isinstance(payload, list) or not payload:
            raise RawRequestInvalid(
                [_error(["body"], "expected a transaction object or a non-empty list", "type")]
            )
        parsed, errors = [], []
        for i, obj in enumerate(payload):
            try:
                parsed.append(self.parse(obj, now=now, where=["body", i]))
            except RawRequestInvalid as exc:
                errors.extend(exc.errors)
        if errors:
            raise RawRequestInvalid(errors)
        return parsed

    def _time(
        self, obj: dict[str, Any], loc: list[Any], errors: list[dict[str, Any]], now: Any
    ) -> int | None:
        name = self.spec.timestamp_column
        where = [*loc, name]
        if name not in obj:
            errors.append(_error(where, "Field required", "missing"))
            return None
        value = obj[name]
        if self.spec.timestamp_kind == "seconds":
            if type(value) not in (int, float) or not math.isfinite(value):
                errors.append(
                    _error(where, "Input should be a finite number (seconds)", "float_type")
                )
                return None
            return to_time_us(value)
        if type(value) is not str:
            errors.append(_error(where, "Input should be an ISO 8601 time string", "datetime_type"))
            return None
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            errors.append(_error(where, f"{value!r} is no ISO 8601 time", "datetime_parsing"))
            return None
        if stamp.tzinfo is None:  # naive: UTC (aware ones compare and subtract as they are)
            stamp = stamp.replace(tzinfo=dt.UTC)
        limit = (utc_now() if now is None else as_utc(now)) + self.max_clock_skew
        if stamp > limit:
            errors.append(
                _error(
                    where,
                    f"{value} is later than now + features.max_clock_skew_s "
                    f"({self.max_clock_skew.total_seconds():g} s)",
                    "value_error",
                )
            )
            return None
        return (stamp - _EPOCH) // _ONE_US

    @staticmethod
    def _string(
        obj: dict[str, Any],
        name: str,
        loc: list[Any],
        errors: list[dict[str, Any]],
        *,
        required: bool,
    ) -> str | None:
        value = obj.get(name)
        if value is None:
            if required:
                errors.append(_error([*loc, name], "Field required", "missing"))
            return None
        if type(value) is int:
            return str(value)
        if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH:
            return value
        errors.append(
            _error(
                [*loc, name],
                f"Input should be an integer or a non-empty string of at most {MAX_ID_LENGTH} "
                "characters",
                "string_type",
            )
        )
        return None

    @staticmethod
    def _number(
        obj: dict[str, Any], feature: Feature, loc: list[Any], errors: list[dict[str, Any]]
    ) -> float | None:
        where = [*loc, feature.name]
        if feature.name not in obj:
            errors.append(_error(where, "Field required", "missing"))
            return None
        value = obj[feature.name]
        # bool is an int subclass: refused by the exact type test, as a flag is no amount.
        if type(value) not in (int, float):
            errors.append(_error(where, "Input should be a valid number", "float_type"))
            return None
        number = float(value)
        if not math.isfinite(number):
            errors.append(_error(where, "Input should be a finite number", "finite_number"))
            return None
        lo, hi = feature.bounds
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            low = "-inf" if lo is None else f"{lo:g}"
            high = "inf" if hi is None else f"{hi:g}"
            errors.append(_error(where, f"Input should be between {low} and {high}", "value_error"))
            return None
        if feature.dtype == "int" and not number.is_integer():
            errors.append(_error(where, "Input should be a whole number", "value_error"))
            return None
        if (
            feature.kind is FeatureKind.categorical
            and feature.categories
            and int(number) not in feature.categories
        ):
            errors.append(
                _error(
                    where, f"Input should be one of the codes {feature.categories}", "value_error"
                )
            )
            return None
        return number
