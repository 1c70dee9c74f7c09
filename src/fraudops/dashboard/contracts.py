"""What a dashboard page's data is: the typed shape between the page queries and the web layer.

Every page is a function ``(runtime: Runtime, filters: Filters) -> PageData`` in
``fraudops.dashboard.pages.<page>``. The web layer
turns a ``PageData`` into JSON (``to_dict()``) for ``GET /api/page/<page>`` and each of its
tables into CSV for ``GET /api/page/<page>/table/<table>.csv``; the page's script draws the
charts with plotly.js from that JSON. Nothing here knows HTTP or HTML.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

ChartKind = Literal["line", "bar", "stacked_bar", "histogram", "scatter", "step"]
Severity = Literal["ok", "info", "warning", "critical"]


@dataclass(frozen=True)
class Filters:
    """The filters every page takes (query string ``start``, ``end``, ``version``, ``spec``).

    ``start``/``end`` bound the time the page is about (request time, run time, event time),
    ``end`` exclusive; None is open. ``version`` keeps one model version's rows where a row
    has a version.
    """

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    version: str | None = None
    spec: str | None = None
    feature: str | None = None  # the Features page's picker
    run_id: str | None = None  # the Runs page's drill-down


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | int | str | None
    unit: str = ""  # "%", "ms", "$", ""
    severity: Severity = "ok"
    hint: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    y: list[float | int | None]
    x: list[Any] | None = None  # defaults to the chart's x


@dataclass(frozen=True)
class Marker:
    """A vertical marker on a time chart: a promotion, a rollback, a drift alert."""

    at: dt.datetime
    label: str
    kind: str  # a model_events event_type, or "alert"


@dataclass(frozen=True)
class Band:
    """A horizontal band (PSI severity bands: 0.1 moderate, 0.2 significant, ...)."""

    low: float
    high: float
    label: str
    severity: Severity


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: ChartKind
    x: list[Any]
    series: list[Series]
    x_title: str = ""
    y_title: str = ""
    markers: list[Marker] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(v is not None for s in self.series for v in s.y)


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    frame: pd.DataFrame
    # Columns whose values link somewhere: column -> URL template with {value}.
    links: dict[str, str] = field(default_factory=dict)


@dataclass
class PageData:
    page: str
    title: str
    kpis: list[Kpi] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "aggregates are 120 rows behind", ...
    options: dict[str, list[str]] = field(default_factory=dict)  # picker values: versions, features

    def table(self, key: str) -> Table:
        for t in self.tables:
            if t.key == key:
                return t
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "title": self.title,
            "kpis": [_kpi(k) for k in self.kpis],
            "charts": [_chart(c) for c in self.charts],
            "tables": [_table(t) for t in self.tables],
            "notes": list(self.notes),
            "options": {k: list(v) for k, v in self.options.items()},
        }


def _json_value(value: Any) -> Any:
    # NaT is a datetime too (it would leave as the string "NaT"); NA is not JSON.
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value


def _kpi(k: Kpi) -> dict[str, Any]:
    return {
        "key": k.key,
        "label": k.label,
        "value": _json_value(k.value),
        "unit": k.unit,
        "severity": k.severity,
        "hint": k.hint,
    }


def _chart(c: Chart) -> dict[str, Any]:
    return {
        "key": c.key,
        "title": c.title,
        "kind": c.kind,
        "x": [_json_value(v) for v in c.x],
        "series": [
            {
                "name": s.name,
                "y": [_json_value(v) for v in s.y],
                "x": None if s.x is None else [_json_value(v) for v in s.x],
            }
            for s in c.series
        ],
        "x_title": c.x_title,
        "y_title": c.y_title,
        "markers": [{"at": m.at.isoformat(), "label": m.label, "kind": m.kind} for m in c.markers],
        "bands": [
            {"low": b.low, "high": b.high, "label": b.label, "severity": b.severity}
            for b in c.bands
        ],
        "has_data": c.has_data,
    }


def _table(t: Table) -> dict[str, Any]:
    frame = t.frame
    return {
        "key": t.key,
        "title": t.title,
        "columns": [str(c) for c in frame.columns],
        "rows": [[_json_value(v) for v in row] for row in frame.itertuples(index=False)],
        "links": dict(t.links),
    }
