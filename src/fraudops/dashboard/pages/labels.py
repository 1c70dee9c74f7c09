"""The Labels page: label coverage and maturity by prediction day, sources, unknown and
conflicting labels per ingestion — from ``label_stats``, ``prediction_stats`` (the day's
volume, always current) and ``label_ingests``."""

from __future__ import annotations

import pandas as pd

from fraudops.aggregates import read
from fraudops.aggregates.labels import DELAYS, SOURCE_PREFIX
from fraudops.dashboard.contracts import Chart, Filters, Kpi, PageData, Series, Table
from fraudops.dashboard.pages.inference import promotion_markers, ys
from fraudops.lake.catalog import LakeMissingError
from fraudops.runtime import Runtime
from fraudops.timeutil import as_utc

PAGE = "labels"
DELAY_LABELS = {
    "delay_1d": "< 1 day",
    "delay_3d": "1-3 days",
    "delay_7d": "3-7 days",
    "delay_14d": "7-14 days",
    "delay_30d": "14-30 days",
    "delay_over_30d": "> 30 days",
}


def build(runtime: Runtime, filters: Filters) -> PageData:
    with read.pinned():  # one state of each table for the whole page
        return _build(runtime, filters)


def _build(runtime: Runtime, filters: Filters) -> PageData:
    lake = runtime.lake(filters.spec)
    try:
        all_stats = read.prediction_stats(lake)
        volume = read.prediction_stats(lake, filters.start, filters.end, filters.version, "D")
        days = read.label_stats(lake, filters.start, filters.end, filters.version)
        ingests = read.label_ingests(lake, filters.start, filters.end)
    except LakeMissingError as exc:
        return PageData(page=PAGE, title="Labels", notes=[str(exc)])
    page = PageData(
        page=PAGE,
        title="Labels",
        options={"versions": sorted(v for v in all_stats["model_version"].unique() if v)},
    )
    coverage = _coverage(volume, days)
    if coverage.empty:
        page.notes.append("no predictions in this range")
    start = pd.Timestamp(as_utc(filters.start)) if filters.start else None
    end = pd.Timestamp(as_utc(filters.end)) if filters.end else None
    if not coverage.empty:
        start = start if start is not None else coverage["day"].min()
        end = end if end is not None else coverage["day"].max() + pd.Timedelta(days=1)
    markers = promotion_markers(lake, start, end)
    sources = _sources(days)
    predictions, labelled = int(coverage["n"].sum()), int(coverage["labelled"].sum())
    unknown = int(ingests["unknown"].sum()) if not ingests.empty else 0
    conflicts = int(ingests["conflicts"].sum()) if not ingests.empty else 0
    page.kpis = [
        Kpi("coverage", "Predictions labelled", _pct(labelled, predictions), "%"),
        Kpi("labelled", "Labelled predictions", labelled),
        Kpi(
            "fraud_labels",
            "Confirmed fraud",
            int(days["tp"].sum() + days["fn"].sum()) if not days.empty else 0,
        ),
        Kpi(
            "unknown",
            "Unknown label events",
            unknown,
            severity="warning" if unknown else "ok",
            hint="events naming no logged prediction: not stored",
        ),
        Kpi(
            "conflicts",
            "Conflicting labels",
            conflicts,
            severity="info" if conflicts else "ok",
            hint="a prediction given another label: the latest confirmation is in force",
        ),
    ]
    x = list(coverage["day"])
    page.charts = [
        Chart(
            "coverage",
            "Label coverage by prediction day",
            "line",
            x,
            [Series("labelled %", coverage["coverage_pct"].tolist())],
            x_title="prediction day",
            y_title="%",
            markers=markers,
        ),
        Chart(
            "maturity",
            "Label maturity by prediction day (confirmation delay)",
            "stacked_bar",
            x,
            [Series(DELAY_LABELS[d], ys(coverage[d])) for d in DELAYS]
            + [Series("unlabelled", ys(coverage["unlabelled"]))],
            x_title="prediction day",
            y_title="predictions",
            markers=markers,
        ),
        Chart(
            "sources",
            "Labels by source",
            "bar",
            sources["source"].tolist(),
            [Series("labels", sources["labels"].tolist())],
            y_title="labels in force",
        ),
        Chart(
            "ingests",
            "Unknown and conflicting label events per ingestion",
            "bar",
            list(ingests["ingested_at"]) if not ingests.empty else [],
            [
                Series(name, ys(ingests[name]) if not ingests.empty else [])
                for name in ("unknown", "conflicts", "duplicates")
            ],
            x_title="ingested at",
            y_title="events",
            markers=markers,
        ),
    ]
    page.tables = [
        Table("coverage", "Coverage and maturity by prediction day", coverage),
        Table("sources", "Labels by source", sources),
        Table("ingests", "Label ingestions", ingests),
    ]
    return page


def _coverage(volume: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """Per prediction day: predictions (from prediction_stats: current even when label_stats
    has not been recomputed since), labelled, coverage, labels per delay bucket."""
    columns = ["day", "n", "labelled", "unlabelled", "coverage_pct", *DELAYS]
    if volume.empty and days.empty:
        return pd.DataFrame(columns=columns)
    n = volume.assign(day=volume["hour"].dt.floor("D")).groupby("day")["n"].sum()
    labelled = days.groupby("day")[["labelled", "n", *DELAYS]].sum()
    frame = labelled.rename(columns={"n": "n_labels_view"}).join(n.rename("n"), how="outer")
    frame = frame.fillna(0)
    # The larger of the two counts: prediction_stats may lag the log by a commit too.
    frame["n"] = frame[["n", "n_labels_view"]].max(axis=1)
    frame["unlabelled"] = frame["n"] - frame["labelled"]
    frame["coverage_pct"] = (100 * frame["labelled"] / frame["n"].where(frame["n"] > 0)).round(2)
    frame = frame.reset_index()
    for column in ["n", "labelled", "unlabelled", *DELAYS]:
        frame[column] = frame[column].astype(int)
    return frame[columns].sort_values("day").reset_index(drop=True)


def _sources(days: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in days.columns if c.startswith(SOURCE_PREFIX)]
    totals = days[columns].sum() if columns else pd.Series(dtype="int64")
    return (
        pd.DataFrame(
            {
                "source": [c[len(SOURCE_PREFIX) :] for c in totals.index],
                "labels": totals.astype(int).tolist(),
            }
        )
        .sort_values("labels", ascending=False)
        .reset_index(drop=True)
    )


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None
