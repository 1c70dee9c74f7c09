"""Drift: drifted features per monitoring run, the mature cohorts' performance, drift alerts."""

from __future__ import annotations

import pandas as pd

from fraudops.dashboard.contracts import Chart, Filters, Kpi, Marker, PageData, Series, Table
from fraudops.dashboard.pages.common import (
    RUN_LINK,
    alerts,
    column_list,
    counts,
    event_markers,
    in_window,
    model_events,
    number,
    of_version,
    parse_json,
    sorted_by,
    versions_of,
)
from fraudops.dashboard.store import small_table
from fraudops.lake.schemas import MONITORING_RUNS
from fraudops.runtime import Runtime

RUN_COLUMNS = [
    "run_id",
    "as_of",
    "model_version",
    "status",
    "n_current",
    "n_labelled",
    "drifted_count",
    "drifted_share",
    "max_psi",
    "score_psi",
    "roc_auc",
    "baseline_roc_auc",
    "pr_auc",
    "recall",
    "precision",
    "data_drift_detected",
    "model_drift_detected",
]
PERFORMANCE = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("recall", "recall"))


def monitoring_runs(runtime: Runtime, filters: Filters) -> pd.DataFrame:
    """The runs in the filters' window and version, oldest first, with their baseline ROC-AUC."""
    frame = small_table(runtime, MONITORING_RUNS, filters.spec)
    frame = of_version(in_window(frame, "as_of", filters), "model_version", filters)
    frame = sorted_by(frame, "as_of")
    baseline = [
        number(parse_json(s).get("performance", {}).get("baseline_roc_auc"))
        for s in frame["summary"]
    ]
    return frame.assign(baseline_roc_auc=pd.Series(baseline, index=frame.index, dtype="float64"))


def build(runtime: Runtime, filters: Filters) -> PageData:
    runs = monitoring_runs(runtime, filters)
    events = model_events(runtime, filters)
    markers = event_markers(events)
    drift_alerts = alerts(runtime, filters)
    if not drift_alerts.empty:
        drift_alerts = drift_alerts[drift_alerts["run_id"].isin(set(runs["run_id"]))]
    x = column_list(runs, "as_of")
    share = [None if v is None else 100.0 * v for v in column_list(runs, "drifted_share")]
    # Figures come from mature cohorts only; a run without enough mature labels has none, and
    # its window's labels are still coming in: shown apart, as labelled vs not yet labelled.
    mature = runs["roc_auc"].notna()
    labelled = runs["n_labelled"].fillna(0).astype("int64")
    unlabelled = (runs["n_current"].fillna(0).astype("int64") - labelled).clip(lower=0)
    charts = [
        Chart(
            "drifted_share",
            "Share of drifted features",
            "line",
            x,
            [Series("drifted features", share)],
            y_title="% of features",
            markers=markers,
        ),
        Chart(
            "drifted_count",
            "Drifted features per run",
            "bar",
            x,
            [Series("drifted features", column_list(runs, "drifted_count"))],
            y_title="features",
            markers=markers,
        ),
        Chart(
            "roc_auc",
            "ROC-AUC: baseline vs current (mature cohorts)",
            "line",
            x,
            [
                Series("baseline", column_list(runs, "baseline_roc_auc")),
                Series("current", column_list(runs, "roc_auc")),
            ],
            y_title="ROC-AUC",
            markers=markers,
        ),
        Chart(
            "performance",
            "Performance on mature cohorts",
            "line",
            x,
            [Series(label, column_list(runs, key)) for key, label in PERFORMANCE]
            + [Series("precision", column_list(runs, "precision"))],
            markers=markers,
        ),
        Chart(
            "maturity",
            "Labels per run window (runs without mature cohorts report no figures)",
            "stacked_bar",
            x,
            [
                Series("labelled, mature cohorts measured", column_list(labelled.where(mature))),
                Series("labelled, not mature yet", column_list(labelled.where(~mature))),
                Series("not labelled yet", counts(unlabelled)),
            ],
            y_title="predictions",
            markers=markers,
        ),
        _alert_timeline(drift_alerts, markers),
    ]
    table = runs[[c for c in RUN_COLUMNS if c in runs]].iloc[::-1].reset_index(drop=True)
    return PageData(
        page="drift",
        title="Drift",
        kpis=_kpis(runs, drift_alerts),
        charts=charts,
        tables=[Table("runs", "Monitoring runs", table, links={"run_id": RUN_LINK})],
        notes=[] if not runs.empty else ["no monitoring run in this window yet"],
        options={"versions": versions_of((runs, "model_version"), (events, "version"))},
    )


def _alert_timeline(frame: pd.DataFrame, markers: list[Marker]) -> Chart:
    if frame.empty:
        return Chart("alerts", "Drift alerts per day", "stacked_bar", [], [], markers=markers)
    days = pd.to_datetime(frame["created_at"], utc=True).dt.floor("D")
    per_day = frame.assign(day=days).groupby(["day", "severity"]).size().unstack(fill_value=0)
    return Chart(
        "alerts",
        "Drift alerts per day",
        "stacked_bar",
        list(per_day.index),
        [Series(str(sev), counts(per_day[sev])) for sev in per_day.columns],
        y_title="alerts",
        markers=markers,
    )


def _kpis(runs: pd.DataFrame, drift_alerts: pd.DataFrame) -> list[Kpi]:
    if runs.empty:
        return [Kpi("runs", "Monitoring runs", 0)]
    last = runs.iloc[-1]
    measured = runs[runs["roc_auc"].notna()]
    latest = measured.iloc[-1] if not measured.empty else None
    share = number(last["drifted_share"])
    drifted = int(runs["data_drift_detected"].eq(True).sum())
    kpis = [
        Kpi("runs", "Monitoring runs", len(runs)),
        Kpi(
            "drifted_share",
            "Drifted features (latest run)",
            None if share is None else round(100 * share, 1),
            "%",
            "critical" if bool(last["data_drift_detected"]) else "ok",
            hint=str(last["run_id"]),
        ),
        Kpi("runs_with_drift", "Runs with data drift", drifted, "", "warning" if drifted else "ok"),
        Kpi("drift_alerts", "Drift alerts", len(drift_alerts)),
    ]
    if latest is not None:
        degraded = bool(latest["model_drift_detected"])
        kpis.append(
            Kpi(
                "roc_auc",
                "ROC-AUC (latest mature)",
                round(float(latest["roc_auc"]), 4),
                severity="critical" if degraded else "ok",
                hint=f"baseline {_fmt(latest['baseline_roc_auc'])}",
            )
        )
    return kpis


def _fmt(value: object) -> str:
    figure = number(value)
    return "–" if figure is None else f"{figure:.4f}"
