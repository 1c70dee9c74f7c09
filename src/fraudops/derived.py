"""Derived features: declared once in a spec, computed from a transaction's history.

A spec of raw transactions names its ``keys`` (the raw columns features aggregate by, e.g. the
card and the terminal) and, under ``derived:``, what to compute from them::

    - {name: is_night, calendar: night}
    - {name: cust_avg_amt_7d, by: customer_id, window: 7d, agg: mean, of: amount}
    - {name: term_risk_7d, by: terminal_id, window: 7d, delay: 7d, agg: fraud_rate}

Semantics (the README's "Derived features" states them too; the offline and online engines are
tested against an independent pandas computation of exactly these):

- a window of length ``w`` with delay ``d`` covers event times in ``(t - d - w, t - d]``; with no
  delay it includes the transaction itself (a 1-day count is at least 1);
- transactions of one key at the same timestamp see each other in id order (the earlier id is
  "before"; with no delay a row sees the rows of its timestamp up to itself);
- ``fraud_rate`` = frauds / transactions in the window (0 when the window is empty), counting a
  label only if it was known at ``t``: a loaded row's label counts once the row is older than
  ``t - delay`` (``delay`` is then required: a label is not known at the moment of the
  transaction), a served transaction's label when its label event was confirmed at or before ``t``;
- ``mean``/``min``/``max``/``sum`` of an empty window are 0; ``std`` is the population standard
  deviation (0 for fewer than two values);
- ``time_since_last``: seconds since the key's previous transaction, -1 when it has none
  within ``features.key_ttl_s`` (the online state forgets a key idle that long, so a previous
  transaction older than that counts as none offline too);
- calendar features read the timestamp in UTC: ``hour`` 0-23, ``day_of_week`` 0 = Monday,
  ``weekend`` Saturday or Sunday, ``night`` 00:00-06:59.
"""

from __future__ import annotations

import re
from enum import Enum, StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Calendar(StrEnum):
    hour = "hour"
    day_of_week = "day_of_week"
    weekend = "weekend"
    night = "night"


class Agg(Enum):  # not a StrEnum: a member named `count` would hide str.count
    count = "count"
    sum = "sum"
    mean = "mean"
    min = "min"
    max = "max"
    std = "std"
    fraud_rate = "fraud_rate"
    time_since_last = "time_since_last"


# Aggregations over a value column (`of`), and those that count rows or read time only.
VALUE_AGGS = frozenset({Agg.sum, Agg.mean, Agg.min, Agg.max, Agg.std})

# features.key_ttl_s by default: how long a key's history counts (FeatureSpec.key_ttl_s).
DEFAULT_KEY_TTL_S = 90 * 86_400.0

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str | int, *, field: str) -> int:
    """Seconds of ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` (or a plain number of seconds)."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ValueError(
                f"{field} {text!r} is no duration: write a whole number and a unit "
                "(s, m, h, d, w), e.g. 30m, 12h, 7d"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{field} {text!r} must be longer than zero")
    return seconds


class DerivedFeature(BaseModel):
    """One derived feature: a calendar reading of the timestamp, or a window over a key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    calendar: Calendar | None = None
    by: str | None = Field(None, description="The key column this feature aggregates by.")
    window: str | None = Field(None, description="Window length, e.g. 1d, 7d, 12h.")
    delay: str | None = Field(None, description="How far back the window ends, e.g. 7d.")
    agg: Agg | None = None
    of: str | None = Field(None, description="The value column of sum/mean/min/max/std.")
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> DerivedFeature:
        where = f"derived feature {self.name!r}"
        if self.calendar is not None:
            extra = [
                k for k in ("by", "window", "delay", "agg", "of") if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(
                    f"{where}: a calendar feature reads the timestamp only; remove {extra}"
                )
            return self
        if self.agg is None:
            raise ValueError(f"{where}: give either `calendar:` or `agg:` (with `by:`)")
        if self.by is None:
            raise ValueError(f"{where}: agg {self.agg.value!r} needs `by:` (one of the keys)")
        if self.agg in VALUE_AGGS and self.of is None:
            raise ValueError(f"{where}: agg {self.agg.value!r} needs `of:` (a numeric feature)")
        if self.agg not in VALUE_AGGS and self.of is not None:
            raise ValueError(f"{where}: agg {self.agg.value!r} takes no `of:`")
        if self.agg is Agg.time_since_last:
            if self.window is not None or self.delay is not None:
                raise ValueError(f"{where}: time_since_last takes no window or delay")
        elif self.window is None:
            raise ValueError(f"{where}: agg {self.agg.value!r} needs `window:` (e.g. 7d)")
        if self.agg is Agg.fraud_rate and self.delay is None:
            raise ValueError(
                f"{where}: fraud_rate needs `delay:` (how long labels take to be known, "
                "e.g. 7d): a transaction's own label is not known when it is scored"
            )
        if self.window is not None:
            parse_duration(self.window, field=f"{where}: window")
        if self.delay is not None:
            parse_duration(self.delay, field=f"{where}: delay")
        return self

    @property
    def window_s(self) -> int | None:
        return None if self.window is None else parse_duration(self.window, field="window")

    @property
    def delay_s(self) -> int:
        return 0 if self.delay is None else parse_duration(self.delay, field="delay")

    @property
    def lookback_s(self) -> int:
        """How much history before ``t`` this feature's window reads (0 for calendar and
        time_since_last, which reads the key's last time back to ``features.key_ttl_s``)."""
        return (self.window_s or 0) + self.delay_s
