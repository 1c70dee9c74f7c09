"""The one UTC rule: every time the code stores or compares is an aware UTC datetime, and a naive
one is taken as UTC (as the lake stores them)."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None = None) -> dt.datetime:
    """``value`` (default: now) in UTC; a naive value is taken as UTC. A ``pd.Timestamp`` stays
    one."""
    if value is None:
        return utc_now()
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
