"""What several pages share: the time and version filters on a frame, the promotion markers
every time chart carries, JSON columns, run links."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd
from pyiceberg import expressions

from fraudops.dashboard.contracts import Band, Filters, Marker
from fraudops.dashboard.store import small_table
from fraudops.lake.schemas import ALERTS, MODEL_EVENTS
from fraudops.registry.events import CHAMPION_MOVES
from fraudops.runtime import Runtime

RUN_LINK = "/runs?run_id={value}"
SEVERITY_ORDER = ("normal", "warning", "moderate", "critical")
# pyiceberg's predicates take (term, value) positionally; its stubs only know keywords.
_ice: Any = expressions


def between(column: str, start: datetime, end: datetime) -> expressions.BooleanExpression:
    """An Iceberg filter ``start <= column < end`` (prunes day partitions)."""
    return expressions.And(
        _ice.GreaterThanOrEqual(column, pd.Timestamp(start).isoformat()),
        _ice.LessThan(column, pd.Timestamp(end).isoformat()),
    )


def equals(column: str, value: str) -> expressions.BooleanExpression:
    result: expressions.BooleanExpression = _ice.EqualTo(column, value)
    return result


def counts(values: Iterable[Any]) -> list[float | int | None]:
    return [int(v) for v in values]


def in_window(frame: pd.DataFrame, column: str, filters: Filters) -> pd.DataFrame:
    """Rows whose ``column`` lies in [start, end)."""
    if frame.empty or (filters.start is None and filters.end is None):
        return frame
    times = pd.to_datetime(frame[column], utc=True)
    keep = pd.Series(True, index=frame.index)
    if filters.start is not None:
        keep &= times >= pd.Timestamp(filters.start)
    if filters.end is not None:
        keep &= times < pd.Timestamp(filters.end)
    return frame[keep]


def of_version(frame: pd.DataFrame, column: str, filters: Filters) -> pd.DataFrame:
    if filters.version is None or frame.empty:
        return frame
    return frame[frame[column].astype(str) == filters.version]


def sorted_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.sort_values(column, kind="stable").reset_index(drop=True)


def model_events(runtime: Runtime, filters: Filters) -> pd.DataFrame:
    frame = small_table(runtime, MODEL_EVENTS, filters.spec)
    return sorted_by(in_window(frame, "event_time", filters), "event_time")


def alerts(runtime: Runtime, filters: Filters) -> pd.DataFrame:
    frame = small_table(runtime, ALERTS, filters.spec)
    return sorted_by(in_window(frame, "created_at", filters), "created_at")


def event_markers(events: pd.DataFrame) -> list[Marker]:
    """A vertical line per champion move of ``model_events`` (promotion, rollback), labelled with
    the version it made champion: a drop and its fix seen together. A shadowing moves no
    champion and draws none (the README: "the promotions and rollbacks as markers")."""
    if events.empty:
        return []
    markers = []
    for row in events[events["event_type"].isin(CHAMPION_MOVES)].to_dict("records"):
        at, kind = row["event_time"], str(row["event_type"])
        if at is None or pd.isna(at):
            continue
        version = row.get("champion_after") or row["version"]
        label = f"{kind.replace('_', ' ')}: v{version}"
        markers.append(Marker(at=pd.Timestamp(at).to_pydatetime(), label=label, kind=kind))
    return markers


def psi_bands(runtime: Runtime) -> list[Band]:
    cfg = runtime.settings.monitoring
    return [
        Band(0.0, cfg.psi_warning, "stable", "ok"),
        Band(cfg.psi_warning, cfg.psi_threshold, "moderate shift", "warning"),
        Band(cfg.psi_threshold, max(1.0, cfg.psi_threshold * 3), "significant shift", "critical"),
    ]


def parse_json(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def number(value: Any) -> float | None:
    """A finite float, else None (NaN, None, text)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def column_list(frame: pd.DataFrame | pd.Series, column: str | None = None) -> list[Any]:
    """A column (or a series) as a list, missing values None."""
    if isinstance(frame, pd.Series):
        return [None if pd.isna(v) else v for v in frame]
    return [None if pd.isna(v) else v for v in frame[column]] if column in frame else []


def versions_of(*frames: tuple[pd.DataFrame, str]) -> list[str]:
    """Every model version named in the frames' columns, numerically sorted (the picker)."""
    found: set[str] = set()
    for frame, column in frames:
        if column in frame:
            found.update(str(v) for v in frame[column].dropna().unique())
    return sorted(found, key=lambda v: (len(v), v))
