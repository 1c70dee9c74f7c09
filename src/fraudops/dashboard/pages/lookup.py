"""Lookup: one prediction by inference id or transaction id, with its label when known.

A lookup reads ``predictions`` through an Iceberg row filter on the id (files whose id range
excludes it are skipped); when the id carries its time (a UUIDv7), the day partitions around
it are the only ones read; a transaction id's days come from the process's index
(``lookup_index``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
from pyiceberg.expressions import And, BooleanExpression, Or

from fraudops.dashboard.contracts import Filters, Kpi, PageData, Table
from fraudops.dashboard.lookup_index import lake_index
from fraudops.dashboard.pages.common import between, equals
from fraudops.ids import minted_at, parse_uuid
from fraudops.lake.schemas import LABELS, PREDICTIONS, PREDICTIONS_PARTITION_SOURCE
from fraudops.runtime import Runtime

MAX_ID_CHARS = 128
MAX_MATCHES = 20
PREDICTION_FIELDS = [
    "inference_id",
    "transaction_id",
    "customer_id",
    PREDICTIONS_PARTITION_SOURCE,
    "model_name",
    "model_version",
    "probability",
    "prediction",
    "threshold",
    "risk_tier",
    "latency_ms",
    "model_latency_ms",
    "shadow_version",
    "shadow_probability",
]
LABEL_COLUMNS = ["event_id", "inference_id", "transaction_id", "label", "confirmed_at", "source"]


class LookupInputError(ValueError):
    """An id that cannot be looked up (empty, too long)."""


def build(runtime: Runtime, filters: Filters) -> PageData:
    """The page before a search: nothing is read."""
    return PageData(
        page="lookup",
        title="Lookup",
        notes=["enter an inference id or a transaction id"],
    )


def id_day(value: str) -> dt.date | None:
    """The day a UUIDv7 was minted on, else None."""
    at = minted_at(value)
    return None if at is None else at.date()


def _on_days(days: list[dt.date]) -> BooleanExpression:
    spans = [
        between(
            PREDICTIONS_PARTITION_SOURCE,
            dt.datetime.combine(day, dt.time(), dt.UTC),
            dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1),
        )
        for day in days
    ]
    where = spans[0]
    for span in spans[1:]:
        where = Or(where, span)
    return where


def check_id(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise LookupInputError("id: give an inference id or a transaction id")
    if len(value) > MAX_ID_CHARS or not value.isprintable():
        raise LookupInputError(f"id: not an id (at most {MAX_ID_CHARS} printable characters)")
    return value


def lookup(runtime: Runtime, value: str, spec: str | None = None) -> PageData:
    """The predictions whose inference id or transaction id is ``value``, and their labels."""
    value = check_id(value)
    lake = runtime.lake(spec)
    table = lake.table(PREDICTIONS)
    where: BooleanExpression = Or(equals("inference_id", value), equals("transaction_id", value))
    day = id_day(value)
    if day is not None:  # a day either side: the clock of the minting host vs the request time
        start = dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(days=1)
        end = start + dt.timedelta(days=3)
        where = And(where, between(PREDICTIONS_PARTITION_SOURCE, start, end))
    elif parse_uuid(value) is None:  # the server mints UUIDs: this is a transaction id
        days = lake_index(lake.settings.home_dir, lake.spec.name, table).days(table, value)
        if days == []:
            return PageData("lookup", "Lookup", notes=[f"no prediction with id {value!r}"])
        if days is not None:
            where = And(equals("transaction_id", value), _on_days(days))
    found = table.scan(row_filter=where, limit=MAX_MATCHES).to_arrow().to_pandas()
    if found.empty:
        return PageData("lookup", "Lookup", notes=[f"no prediction with id {value!r}"])
    found = found.sort_values(PREDICTIONS_PARTITION_SOURCE, kind="stable").reset_index(drop=True)
    first = found.iloc[0]
    labels = _labels(runtime, spec, found)
    features = [f for f in lake.spec.feature_names if f in found.columns]
    fields = [c for c in PREDICTION_FIELDS if c in found]
    prediction = pd.DataFrame({"field": fields, "value": [first[c] for c in fields]})
    feature_rows = pd.DataFrame(
        {"feature": features, "value": [first[f] for f in features]}, columns=["feature", "value"]
    )
    label = labels["label"].iloc[-1] if not labels.empty else None
    kpis = [
        Kpi("probability", "Fraud probability", round(float(first["probability"]), 4)),
        Kpi(
            "tier",
            "Risk tier",
            str(first["risk_tier"]),
            severity="critical" if first["risk_tier"] in ("high", "critical") else "ok",
        ),
        Kpi("version", "Model version", f"v{first['model_version']}"),
        Kpi(
            "label",
            "Label",
            "not known yet" if label is None or pd.isna(label) else int(label),
            hint="1 = fraud confirmed, 0 = legitimate",
        ),
    ]
    notes = [] if len(found) == 1 else [f"{len(found)} predictions match; the first is shown"]
    return PageData(
        page="lookup",
        title=f"Prediction {first['inference_id']}",
        kpis=kpis,
        tables=[
            Table("prediction", "Prediction", prediction),
            Table("features", "Features", feature_rows),
            Table("reasons", "Reason codes", _reasons(first.get("reason_codes"))),
            Table("labels", "Label events", labels),
        ],
        notes=notes,
    )


def _labels(runtime: Runtime, spec: str | None, found: pd.DataFrame) -> pd.DataFrame:
    """The label events of the found predictions, by inference id (the key a label is in force
    by, labels.store): time-ordered ids, so the files' id bounds skip most of the table."""
    ids = sorted(str(v) for v in found["inference_id"].dropna().unique())
    if not ids:
        return pd.DataFrame(columns=LABEL_COLUMNS)
    where = equals("inference_id", ids[0])
    for value in ids[1:]:
        where = Or(where, equals("inference_id", value))
    table = runtime.lake(spec).table(LABELS)
    mine = table.scan(row_filter=where, selected_fields=tuple(LABEL_COLUMNS)).to_arrow()
    frame = mine.to_pandas().sort_values("confirmed_at", kind="stable")
    return frame.reset_index(drop=True)


def _reasons(raw: Any) -> pd.DataFrame:
    """Reason codes are JSON: a list of {feature, value, contribution} (explain=true)."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else []
    except ValueError:
        parsed = []
    rows = [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []
    if not rows:
        return pd.DataFrame({"reason": ["none logged (scored without explain=true)"]})
    return pd.DataFrame(rows)
