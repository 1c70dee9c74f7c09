"""The Inference page: traffic, scores, tiers, latency, outcomes and money, from the aggregates.

Everything comes from ``prediction_stats`` (hourly) and ``label_stats`` (daily), cached by
snapshot id in ``aggregates.read``: no page load scans ``predictions``. Ranges over
``HOURLY_UP_TO`` are drawn per day, shorter ones per hour. Every time chart carries the
champion moves of ``model_events`` as markers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from fraudops.aggregates import read
from fraudops.aggregates.bins import SCORE_EDGES, histogram_quantiles
from fraudops.aggregates.folding import TIER_PREFIX, tier_columns
from fraudops.dashboard.contracts import Chart, Filters, Kpi, Marker, PageData, Series, Table
from fraudops.dashboard.pages.common import event_markers
from fraudops.lake.catalog import Lake, LakeMissingError
from fraudops.lake.schemas import latency_bin_columns, score_bin_columns
from fraudops.runtime import Runtime
from fraudops.timeutil import as_utc

PAGE = "inference"
HOURLY_UP_TO = dt.timedelta(days=7)
QUANTILES = (0.5, 0.95, 0.99)


def promotion_markers(
    lake: Lake, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Marker]:
    """The champion moves of ``model_events`` in [start, end), from the snapshot cache."""
    return event_markers(read.model_events(lake, start, end))


def bucket_of(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """ "h" for ranges up to HOURLY_UP_TO, else "D"."""
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return "D"
    return "h" if end - start <= pd.Timedelta(HOURLY_UP_TO) else "D"


def _range(
    stats: pd.DataFrame, filters: Filters
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    start = pd.Timestamp(as_utc(filters.start)) if filters.start else None
    end = pd.Timestamp(as_utc(filters.end)) if filters.end else None
    if not stats.empty:
        start = start if start is not None else stats["hour"].min()
        end = end if end is not None else stats["hour"].max() + pd.Timedelta(hours=1)
    return start, end


def _missing_page(title: str, exc: LakeMissingError) -> PageData:
    return PageData(page=PAGE, title=title, notes=[str(exc)])


def build(runtime: Runtime, filters: Filters) -> PageData:
    with read.pinned():  # one state of each table for the whole page
        return _build(runtime, filters)


def _build(runtime: Runtime, filters: Filters) -> PageData:
    lake = runtime.lake(filters.spec)
    try:
        all_stats = read.prediction_stats(lake)
        start, end = _range(all_stats, filters)
        freq = bucket_of(start, end)
        stats = read.prediction_stats(lake, filters.start, filters.end, filters.version, freq)
        days = read.label_stats(lake, filters.start, filters.end, filters.version)
        freshness = read.freshness(lake)
    except LakeMissingError as exc:
        return _missing_page("Inference", exc)
    markers = promotion_markers(lake, start, end)
    training = runtime.settings.training
    page = PageData(
        page=PAGE,
        title="Inference",
        options={"versions": sorted(v for v in all_stats["model_version"].unique() if v)},
    )
    if freshness.note:
        page.notes.append(freshness.note)
    if stats.empty:
        page.notes.append("no predictions in this range")

    buckets = _per_bucket(stats, freq)
    total = int(stats["n"].sum())
    flagged = int(stats["flagged"].sum())
    money = _money(days, training.cost_fn, training.cost_fp)
    overall = histogram_quantiles(stats[latency_bin_columns()].sum().to_numpy(), QUANTILES)[0]
    page.kpis = [
        Kpi("total_inferences", "Total inferences", total),
        Kpi("flagged_rate", "Flagged as fraud", _pct(flagged, total), "%"),
        Kpi("latency_p95", "Latency p95", _round(overall[1]), "ms"),
        Kpi("fraud_caught", "Fraud amount caught", _round(money["caught"].sum()), "$"),
        Kpi(
            "fraud_missed",
            "Fraud amount missed",
            _round(money["missed"].sum()),
            "$",
            severity="warning" if money["missed"].sum() > money["caught"].sum() else "ok",
        ),
        Kpi(
            "expected_cost",
            "Expected cost",
            _round(money["expected_cost"].sum()),
            "$",
            hint=f"missed fraud x {training.cost_fn:g} + false alarm x {training.cost_fp:g}",
        ),
    ]
    tier_order = [t.name for t in sorted(runtime.settings.serving.risk_tiers, key=_threshold)]
    page.charts, page.tables = _charts_and_tables(
        stats, buckets, days, money, freq, markers, tier_order
    )
    return page


def _per_bucket(stats: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Per time bucket (all versions together): counts, sums and latency bins."""
    if stats.empty:
        return pd.DataFrame(columns=["bucket", "n", "flagged", "p50", "p95", "p99"])
    frame = stats.drop(columns=["model_version"]).copy()
    frame["bucket"] = frame.pop("hour").dt.floor(freq)
    grouped = frame.groupby("bucket", sort=True).sum(numeric_only=True).reset_index()
    quantiles = histogram_quantiles(grouped[latency_bin_columns()].to_numpy(), QUANTILES)
    for j, name in enumerate(["p50", "p95", "p99"]):
        grouped[name] = np.round(quantiles[:, j], 3)
    return grouped


def _money(days: pd.DataFrame, cost_fn: float, cost_fp: float) -> pd.DataFrame:
    """Per prediction day: fraud amount caught / missed, false-alarm amount, expected cost."""
    if days.empty:
        return pd.DataFrame(
            columns=["day", "labelled", "tp", "fp", "tn", "fn", "caught", "missed", "expected_cost"]
        )
    per_day = days.groupby("day", sort=True).sum(numeric_only=True).reset_index()
    return pd.DataFrame(
        {
            "day": per_day["day"],
            "labelled": per_day["labelled"],
            "tp": per_day["tp"],
            "fp": per_day["fp"],
            "tn": per_day["tn"],
            "fn": per_day["fn"],
            "caught": per_day["tp_amount"].round(2),
            "missed": per_day["fn_amount"].round(2),
            "false_alarm_amount": per_day["fp_amount"].round(2),
            "expected_cost": (cost_fn * per_day["fn"] + cost_fp * per_day["fp"]).round(2),
        }
    )


def _charts_and_tables(
    stats: pd.DataFrame,
    buckets: pd.DataFrame,
    days: pd.DataFrame,
    money: pd.DataFrame,
    freq: str,
    markers: list[Marker],
    tier_order: list[str],
) -> tuple[list[Chart], list[Table]]:
    unit = "hour" if freq == "h" else "day"
    x = list(buckets["bucket"])
    volume = _volume_by_version(stats, freq)
    versions = [c for c in volume.columns if c != "bucket"]
    score_counts = stats[score_bin_columns()].sum().astype(int).tolist() if not stats.empty else []
    centres = [round(float(v), 3) for v in (SCORE_EDGES[:-1] + SCORE_EDGES[1:]) / 2]
    scores = pd.DataFrame(
        {
            "bin_low": SCORE_EDGES[:-1].round(2),
            "bin_high": SCORE_EDGES[1:].round(2),
            "predictions": score_counts or [0] * len(centres),
        }
    )
    confusion = pd.DataFrame(
        {
            "outcome": ["TP", "FP", "TN", "FN"],
            "predictions": [
                int(days[c].sum()) if not days.empty else 0 for c in ("tp", "fp", "tn", "fn")
            ],
        }
    )
    # The configured tiers in order (zero when unseen), then any other tier the log named.
    seen = {c[len(TIER_PREFIX) :]: int(stats[c].sum()) for c in tier_columns(stats)}
    names = [*tier_order, *sorted(set(seen) - set(tier_order))]
    tiers = pd.DataFrame({"risk_tier": names, "predictions": [seen.get(n, 0) for n in names]})
    flagged_rate = [_pct(f, n) for f, n in zip(buckets["flagged"], buckets["n"], strict=True)]
    charts = [
        Chart(
            "volume",
            f"Predictions per {unit}",
            "stacked_bar",
            list(volume["bucket"]),
            [Series(f"v{v}" if v else "unknown", ys(volume[v])) for v in versions],
            x_title=unit,
            y_title="predictions",
            markers=markers,
        ),
        Chart(
            "flagged_rate",
            f"Flagged rate per {unit}",
            "line",
            x,
            [Series("flagged %", flagged_rate)],
            x_title=unit,
            y_title="%",
            markers=markers,
        ),
        Chart(
            "score_distribution",
            "Fraud probability distribution",
            "bar",
            centres,
            [Series("predictions", scores["predictions"].tolist())],
            x_title="fraud probability",
            y_title="predictions",
        ),
        Chart(
            "outcomes",
            "Labelled predictions: TP / FP / TN / FN",
            "bar",
            confusion["outcome"].tolist(),
            [Series("predictions", confusion["predictions"].tolist())],
            y_title="predictions",
        ),
        Chart(
            "risk_tiers",
            "Risk tiers",
            "bar",
            tiers["risk_tier"].tolist(),
            [Series("predictions", tiers["predictions"].tolist())],
            y_title="predictions",
        ),
        Chart(
            "latency",
            f"Latency per {unit} (p50 / p95 / p99)",
            "line",
            x,
            [Series(q, [_round(v) for v in buckets[q]]) for q in ("p50", "p95", "p99")],
            x_title=unit,
            y_title="ms",
            markers=markers,
        ),
        Chart(
            "money",
            "Fraud amount caught and missed, expected cost, per prediction day",
            "line",
            list(money["day"]),
            [
                Series("caught", money["caught"].tolist()),
                Series("missed", money["missed"].tolist()),
                Series("expected cost", money["expected_cost"].tolist()),
            ],
            x_title="prediction day",
            y_title="$",
            markers=markers,
        ),
    ]
    per_bucket = buckets[["bucket", "n", "flagged"]].copy() if not buckets.empty else buckets
    if not buckets.empty:
        per_bucket["flagged_pct"] = flagged_rate
    tables = [
        Table("volume", f"Predictions per {unit} and version", volume),
        Table("flagged_rate", f"Flagged per {unit}", per_bucket),
        Table("score_distribution", "Fraud probability distribution", scores),
        Table("outcomes", "Labelled predictions", confusion),
        Table("risk_tiers", "Risk tiers", tiers),
        Table("latency", f"Latency per {unit} (ms)", buckets[["bucket", "p50", "p95", "p99"]]),
        Table("money", "Money per prediction day", money),
    ]
    return charts, tables


def _volume_by_version(stats: pd.DataFrame, freq: str) -> pd.DataFrame:
    if stats.empty:
        return pd.DataFrame(columns=["bucket"])
    frame = stats[["hour", "model_version", "n"]].copy()
    frame["bucket"] = frame.pop("hour").dt.floor(freq)
    wide = frame.pivot_table(
        index="bucket", columns="model_version", values="n", aggfunc="sum", fill_value=0
    )
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def ys(values: Iterable[Any]) -> list[float | int | None]:
    """Chart values from a column (numpy scalars to Python, NaN to None)."""
    return [
        None if v is None or pd.isna(v) else v.item() if hasattr(v, "item") else v for v in values
    ]


def _threshold(tier: Any) -> float:
    return float(tier.min_probability)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 2)
