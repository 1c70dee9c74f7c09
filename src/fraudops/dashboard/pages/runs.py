"""Runs: one monitoring run's drill-down: its figures, its features, its reports, its MLflow run."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

from fraudops.dashboard.contracts import Chart, Filters, Kpi, PageData, Series, Severity, Table
from fraudops.dashboard.pages.common import column_list, number, parse_json, psi_bands
from fraudops.dashboard.pages.drift import monitoring_runs
from fraudops.dashboard.pages.signals import signal_charts, signal_kpis, signal_table
from fraudops.dashboard.store import small_table
from fraudops.lake.schemas import FEATURE_DRIFT
from fraudops.runtime import Runtime

FEATURE_COLUMNS = [
    "feature",
    "kind",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "chi2_pvalue",
    "wasserstein",
    "jensen_shannon",
    "severity",
    "drifted",
]
FIGURES = ("n_current", "n_labelled", "drifted_count", "max_psi", "roc_auc", "pr_auc", "recall")
# The fraud team's figures at the operating point, from the summary's performance
# (``Metrics.to_dict``; absent on runs recorded before them).
TEAM_FIGURES = (
    "precision",
    "flagged_per_day",
    "precision_at_k",
    "card_precision_at_k",
    "amount_caught",
    "amount_missed",
)


def reports_root(runtime: Runtime) -> Path:
    """The only folder the dashboard serves report files from."""
    return (runtime.settings.home_dir / "reports").resolve()


def report_files(runtime: Runtime, report_path: object) -> list[Path]:
    """The files beside a run's summary, when they lie under the home's reports folder."""
    if not isinstance(report_path, str) or not report_path:
        return []
    folder = Path(report_path).parent.resolve()
    root = reports_root(runtime)
    if not folder.is_relative_to(root) or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".html", ".json"))


def build(runtime: Runtime, filters: Filters) -> PageData:
    runs = monitoring_runs(runtime, Filters(spec=filters.spec, version=filters.version))
    windowed = monitoring_runs(runtime, filters)
    ids = windowed["run_id"].tolist()
    if filters.run_id is not None:
        chosen = runs[runs["run_id"] == filters.run_id]
    else:
        chosen = windowed.tail(1)
    if chosen.empty:
        note = (
            f"no monitoring run {filters.run_id!r}" if filters.run_id else "no monitoring run yet"
        )
        return PageData("runs", "Runs", notes=[note], options={"runs": ids[::-1]})
    run = chosen.iloc[-1]
    run_id = str(run["run_id"])
    drift = small_table(runtime, FEATURE_DRIFT, filters.spec)
    features = drift[drift["run_id"] == run_id].sort_values("psi", ascending=False)
    features = features[[c for c in FEATURE_COLUMNS if c in features]].reset_index(drop=True)
    summary = parse_json(run["summary"])
    files = report_files(runtime, run["report_path"])
    reports = pd.DataFrame(
        {
            "report": [p.name for p in files],
            "bytes": [p.stat().st_size for p in files],
            "url": [f"/reports/{quote(run_id)}/{quote(p.name)}" for p in files],
        }
    )
    mlflow_run = summary.get("mlflow_run_id")
    links = pd.DataFrame(
        {
            "what": ["MLflow run"],
            "id": [mlflow_run],
            "url": [_mlflow_url(runtime, mlflow_run)],
        }
    )
    kpis = [Kpi("as_of", "As of", str(run["as_of"])[:16], hint=run_id)]
    kpis.append(Kpi("version", "Model version", f"v{run['model_version']}"))
    kpis.append(
        Kpi("status", "Status", str(run["status"]), severity=_status_severity(run["status"]))
    )
    kpis += [Kpi(f, f.replace("_", " "), _figure(run[f])) for f in FIGURES]
    performance = summary.get("performance")
    if isinstance(performance, dict):
        kpis += [
            Kpi(f, f.replace("_", " "), _figure(performance[f]))
            for f in TEAM_FIGURES
            if performance.get(f) is not None
        ]
    signals = summary.get("signals") or None
    if signals:
        kpis += signal_kpis(signals)
    return PageData(
        page="runs",
        title=f"Run {run_id}",
        kpis=kpis,
        charts=[
            Chart(
                "psi",
                "PSI per feature",
                "bar",
                column_list(features, "feature"),
                [Series("PSI", column_list(features, "psi"))],
                y_title="PSI",
                bands=psi_bands(runtime),
            ),
            *(signal_charts(signals) if signals and signals.get("days") else []),
        ],
        tables=[
            *([signal_table(signals)] if signals else []),
            Table("features", "Features of this run", features),
            Table(
                "reports", "Reports (Evidently HTML, summary)", reports, links={"url": "{value}"}
            ),
            Table("links", "MLflow", links, links={"url": "{value}"}),
        ],
        notes=[
            *([] if len(files) > 1 else ["no Evidently HTML report for this run (made on drift)"]),
            *(
                [f"fast signals: {signals.get('reason')}"]
                if signals and not signals.get("days")
                else []
            ),
        ],
        options={"runs": ids[::-1], "run_id": [run_id]},
    )


def _status_severity(status: object) -> Severity:
    return "ok" if status == "ok" else "warning"


def _mlflow_url(runtime: Runtime, run_id: object) -> str | None:
    base = runtime.settings.dashboard.mlflow_ui_url
    if not base or not isinstance(run_id, str) or not run_id:
        return None
    from fraudops.registry.store import sqlite_path

    store = sqlite_path(runtime.settings.tracking_uri)
    if store is not None and not store.is_file():
        return None  # opening the client would create the store
    try:
        experiment = runtime.mlflow.get_run(run_id).info.experiment_id
    except Exception:  # the run is gone from the tracking store
        return None
    return f"{base.rstrip('/')}/#/experiments/{quote(experiment)}/runs/{quote(run_id)}"


def _figure(value: object) -> float | int | None:
    figure = number(value)
    return int(figure) if figure is not None and figure.is_integer() else figure
