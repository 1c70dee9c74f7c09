"""Models: every version's history from ``model_events``, the champion against the previous
champion, each retrain's challenger against the champion it faced, and the shadow verdicts."""

from __future__ import annotations

import pandas as pd

from fraudops.dashboard.contracts import Chart, Filters, Kpi, PageData, Series, Table
from fraudops.dashboard.pages.common import (
    RUN_LINK,
    event_markers,
    model_events,
    number,
    parse_json,
    versions_of,
)
from fraudops.dashboard.pages.drift import monitoring_runs
from fraudops.dashboard.store import champion_of, small_table
from fraudops.lake.schemas import MODEL_EVENTS
from fraudops.registry.events import CHAMPION_MOVES, champion_history
from fraudops.runtime import Runtime

METRICS = ("roc_auc", "pr_auc", "recall", "precision", "f1")  # the chart's: all in [0, 1]
# The comparison table adds the fraud team's figures at the operating point (None on versions
# and runs recorded before them).
TEAM_METRICS = (
    "precision_at_k",
    "card_precision_at_k",
    "flagged_per_day",
    "amount_caught",
    "amount_missed",
    "amount_caught_share",
)
TABLE_METRICS = METRICS + TEAM_METRICS
EVENT_COLUMNS = [
    "event_time",
    "version",
    "event_type",
    "trigger",
    "actor",  # who, for the governance actions
    "champion_before",
    "champion_after",
    "reason",
    "monitoring_run_id",
]


def build(runtime: Runtime, filters: Filters) -> PageData:
    spec = filters.spec or runtime.spec_name
    model_name = runtime.settings.registered_model_name(spec)
    every = small_table(runtime, MODEL_EVENTS, filters.spec)
    every = every[every["model_name"] == model_name].sort_values("event_time", kind="stable")
    events = model_events(runtime, filters)
    events = events[events["model_name"] == model_name]
    if filters.version is not None:
        events = events[events["version"].astype(str) == filters.version]
    champion = champion_of(runtime, filters.spec)
    history = champion_history(every, model_name)
    previous = _previous(history, champion)
    registered = _registration_metrics(every)
    runs = monitoring_runs(runtime, Filters(spec=filters.spec))
    live = _live_metrics(runs)
    compare = _compare(champion, previous, registered, live)
    charts = [
        _timeline(events),
        Chart(
            "compare",
            f"Champion v{champion or '–'} vs previous v{previous or '–'}",
            "bar",
            list(METRICS),
            [
                Series(str(column), [number(v) for v in compare[column][: len(METRICS)]])
                for column in compare.columns[1:]
            ],
            y_title="score",
        ),
        _retrains(every, filters),
    ]
    shadow = _shadow(monitoring_runs(runtime, filters))
    versions = versions_of((every, "version"))
    table = events[[c for c in EVENT_COLUMNS if c in events]].iloc[::-1].reset_index(drop=True)
    kpis = [
        Kpi("champion", "Champion", f"v{champion}" if champion else "none"),
        Kpi("previous", "Previous champion", f"v{previous}" if previous else "none"),
        Kpi("versions", "Registered versions", len(versions)),
        Kpi("promotions", "Champion moves", int(events["event_type"].isin(_MOVES).sum())),
    ]
    notes = [] if not shadow.empty else ["no shadow comparison recorded (serving.shadow_alias)"]
    return PageData(
        page="models",
        title="Models",
        kpis=kpis,
        charts=charts,
        tables=[
            Table("events", "Version timeline", table, links={"monitoring_run_id": RUN_LINK}),
            Table("compare", "Champion vs previous", compare),
            Table("shadow", "Shadow comparisons", shadow, links={"run_id": RUN_LINK}),
        ],
        notes=notes,
        options={
            "versions": versions,
            "champion": [champion] if champion else [],
            "promotable": [v for v in versions if v != champion],
            "rollback_to": [previous] if previous else [],
        },
    )


_MOVES = CHAMPION_MOVES


def _previous(history: list[str], champion: str | None) -> str | None:
    """What a rollback restores: the champion before the current one."""
    if champion is not None and history and history[-1] == champion:
        return history[-2] if len(history) > 1 else None
    return history[-1] if history else None


def _registration_metrics(events: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Each version's figures on its holdout, as recorded when it was registered."""
    out: dict[str, dict[str, float | None]] = {}
    for row in events[events["event_type"] == "registered"].itertuples(index=False):
        metrics = parse_json(row.metrics)
        out[str(row.version)] = {m: number(metrics.get(m)) for m in TABLE_METRICS}
    return out


def _live_metrics(runs: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Each version's latest mature-cohort figures from the monitoring runs it answered (the
    fraud team's from the run summary's ``performance``: ``Metrics.to_dict``)."""
    out: dict[str, dict[str, float | None]] = {}
    measured = runs[runs["roc_auc"].notna()]
    for row in measured.itertuples(index=False):
        performance = parse_json_dict(parse_json(getattr(row, "summary", None)).get("performance"))
        out[str(row.model_version)] = {
            **{m: number(performance.get(m)) for m in TEAM_METRICS},
            **{m: number(getattr(row, m, None)) for m in METRICS},
        }
    return out


def _compare(
    champion: str | None,
    previous: str | None,
    registered: dict[str, dict[str, float | None]],
    live: dict[str, dict[str, float | None]],
) -> pd.DataFrame:
    columns: dict[str, list[float | None]] = {}
    for who, version in (("champion", champion), ("previous", previous)):
        if version is None:
            continue
        reg, now = registered.get(version, {}), live.get(version, {})
        columns[f"{who} v{version} at registration"] = [reg.get(m) for m in TABLE_METRICS]
        columns[f"{who} v{version} live (mature cohorts)"] = [now.get(m) for m in TABLE_METRICS]
    return pd.DataFrame({"metric": list(TABLE_METRICS), **columns})


def _timeline(events: pd.DataFrame) -> Chart:
    """One point per event at (time, version), a series per event type."""
    series = []
    # Registrations first: the promotion at the same time and version is drawn over them.
    kinds = sorted(events["event_type"].dropna().unique(), key=lambda k: (k in _MOVES, k))
    for kind in kinds:
        group = events[events["event_type"] == kind]
        series.append(
            Series(
                str(kind),
                [number(v) for v in group["version"]],
                x=list(group["event_time"]),
            )
        )
    return Chart(
        "timeline",
        "Version timeline",
        "scatter",
        list(events["event_time"]),
        series,
        y_title="version",
        markers=event_markers(events),
    )


def _retrains(events: pd.DataFrame, filters: Filters) -> Chart:
    """Each retrain's challenger against the champion it faced, on the same recent holdout."""
    rows = events[(events["event_type"] == "registered") & (events["trigger"] == "retrain")]
    labels, challenger, champion = [], [], []
    for row in rows.itertuples(index=False):
        metrics = parse_json(row.metrics)
        labels.append(f"v{row.version}")
        challenger.append(number(metrics.get("pr_auc")))
        champion.append(number(parse_json_dict(metrics.get("champion")).get("pr_auc")))
    return Chart(
        "retrains",
        "Retrains: challenger vs champion PR-AUC on the same holdout",
        "bar",
        labels,
        [Series("challenger", challenger), Series("champion it faced", champion)],
        y_title="PR-AUC",
    )


def parse_json_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _shadow(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run in runs.itertuples(index=False):
        for c in parse_json(run.summary).get("shadow") or []:
            champion = parse_json_dict(c.get("champion"))
            challenger = parse_json_dict(c.get("challenger"))
            rows.append(
                {
                    "run_id": run.run_id,
                    "as_of": run.as_of,
                    "champion_version": c.get("champion_version"),
                    "challenger_version": c.get("challenger_version"),
                    "rows": c.get("rows"),
                    "positives": c.get("positives"),
                    "champion_pr_auc": number(champion.get("pr_auc")),
                    "challenger_pr_auc": number(challenger.get("pr_auc")),
                    "challenger_better": c.get("better"),
                }
            )
    columns = [
        "run_id",
        "as_of",
        "champion_version",
        "challenger_version",
        "rows",
        "positives",
        "champion_pr_auc",
        "challenger_pr_auc",
        "challenger_better",
    ]
    return pd.DataFrame(rows, columns=columns)
