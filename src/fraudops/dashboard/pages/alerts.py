"""Alerts: the feed of every alert sent, its severity, each channel's delivery, the incident."""

from __future__ import annotations

import pandas as pd

from fraudops.dashboard.contracts import Chart, Filters, Kpi, PageData, Series, Table
from fraudops.dashboard.pages.common import RUN_LINK, alerts, counts, event_markers, model_events
from fraudops.runtime import Runtime

FEED_COLUMNS = [
    "created_at",
    "severity",
    "subject",
    "channel",
    "delivered",
    "attempts",
    "error",
    "run_id",
    "alert_id",
    # Set by an acknowledgement (governance): who, when, why.
    "acknowledged_at",
    "acknowledged_by",
    "ack_note",
]


def build(runtime: Runtime, filters: Filters) -> PageData:
    feed = alerts(runtime, filters)
    markers = event_markers(model_events(runtime, filters))
    delivered = feed["delivered"].eq(True)
    severity = feed["severity"].fillna("").astype(str).str.lower()
    days = pd.to_datetime(feed["created_at"], utc=True).dt.floor("D")
    per_day = (
        feed.assign(day=days, sev=severity).groupby(["day", "sev"]).size().unstack(fill_value=0)
        if not feed.empty
        else pd.DataFrame()
    )
    outcome = (
        feed.assign(outcome=delivered.map({True: "delivered", False: "failed"}))
        .groupby(["channel", "outcome"])
        .size()
        .unstack(fill_value=0)
        if not feed.empty
        else pd.DataFrame()
    )
    charts = [
        Chart(
            "per_day",
            "Alerts per day by severity",
            "stacked_bar",
            list(per_day.index),
            [Series(str(s), counts(per_day[s])) for s in per_day.columns],
            y_title="alerts",
            markers=markers,
        ),
        Chart(
            "deliveries",
            "Deliveries per channel",
            "stacked_bar",
            [str(c) for c in outcome.index],
            [Series(str(o), counts(outcome[o])) for o in outcome.columns],
            y_title="alerts",
        ),
    ]
    table = feed[[c for c in FEED_COLUMNS if c in feed]].iloc[::-1].reset_index(drop=True)
    failed = int((~delivered).sum())
    return PageData(
        page="alerts",
        title="Alerts",
        kpis=[
            Kpi("alerts", "Alerts", len(feed)),
            Kpi(
                "critical",
                "Critical",
                int((severity == "critical").sum()),
                severity="critical" if (severity == "critical").any() else "ok",
            ),
            Kpi("failed", "Failed deliveries", failed, severity="warning" if failed else "ok"),
            Kpi("incidents", "Incidents (runs)", int(feed["run_id"].nunique())),
            *_open_kpi(feed),
        ],
        charts=charts,
        tables=[Table("feed", "Alert feed", table, links={"run_id": RUN_LINK})],
        notes=[] if not feed.empty else ["no alert in this window"],
    )


def _open_kpi(feed: pd.DataFrame) -> list[Kpi]:
    if "acknowledged_at" not in feed:
        return []
    waiting = int(feed.loc[feed["acknowledged_at"].isna(), "alert_id"].nunique())
    return [
        Kpi("unacknowledged", "Not acknowledged", waiting, severity="warning" if waiting else "ok")
    ]
