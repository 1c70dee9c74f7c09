"""`fraudops monitor run|report`: data drift, performance with delayed labels, alerts."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fraudops.cli._common import (
    EngineOption,
    JsonOption,
    RichReporter,
    SpecOption,
    emit,
    out,
    settings_from,
)

if TYPE_CHECKING:
    from fraudops.monitoring.result import MonitoringResult
    from fraudops.monitoring.retraining import RetrainCheck
    from fraudops.monitoring.shadow import ShadowReport

app = typer.Typer(
    help="Monitoring: drift and performance checks, their reports.", no_args_is_help=True
)


@app.command("run")
def run(
    ctx: typer.Context,
    spec: SpecOption = None,
    window_days: Annotated[
        int | None,
        typer.Option(
            "--window-days", min=1, help="Data window (default: monitoring.data_window_days)."
        ),
    ] = None,
    now: Annotated[
        datetime | None,
        typer.Option(
            "--now", help="Evaluate as of this time (ISO; default: now). For simulations."
        ),
    ] = None,
    html: Annotated[
        bool | None,
        typer.Option(
            "--html/--no-html",
            help="Force the Evidently HTML reports on or off (default: monitoring.html_reports).",
        ),
    ] = None,
    no_alert: Annotated[bool, typer.Option("--no-alert", help="Do not send alerts.")] = False,
    retrain: Annotated[
        bool | None,
        typer.Option(
            "--retrain/--no-retrain",
            help="Apply the retrain policy to the findings (default: retrain.automatic).",
        ),
    ] = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """One monitoring run: drift over the data window, performance from the labels known at
    --now over the performance window; recorded in monitoring_runs, feature_drift and MLflow;
    alerts when drift or degradation is found; then the retrain policy (retrain.*) decides
    whether to retrain, and a winning challenger becomes champion.

    With --engine dask the windows are read and checked partition by partition on the cluster
    (drift from mergeable summaries: the same figures, the normalised Wasserstein within a
    stated bound; HTML reports from a bounded sample)."""
    # The services pull in the lake, MLflow's client and pandas: seconds a `--help` should not pay.
    from fraudops.monitoring.retraining import retrain_after_monitoring
    from fraudops.monitoring.run import run_monitoring
    from fraudops.runtime import Runtime

    settings = settings_from(ctx)
    with Runtime(settings, spec, engine=engine) as runtime, RichReporter() as progress:
        monitoring = runtime.monitoring_context()
        result = run_monitoring(
            monitoring,
            now=now,
            window_days=window_days,
            html=html,
            alert=not no_alert,
            progress=progress,
        )
        policy = settings.retrain.automatic if retrain is None else retrain
        check = retrain_after_monitoring(monitoring, result, progress=progress) if policy else None
    summary = result.to_dict()
    summary["retrain"] = check.to_dict() if check is not None else None

    def render_all() -> None:
        render(result)
        if check is not None:
            render_retrain_check(check)

    emit(summary, as_json, render_all)


@app.command("report")
def report(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A monitoring run id (see monitoring_runs).")],
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make Evidently's data-drift and classification HTML reports for a recorded run."""
    from fraudops.monitoring.run import report_for_run  # seconds of imports
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime, RichReporter() as progress:
        paths = report_for_run(runtime.monitoring_context(), run_id, progress=progress)

    def render_paths() -> None:
        for name, path in paths.items():
            out.print(f"{name}: {path}", highlight=False)

    emit(paths, as_json, render_paths)


def render_retrain_check(check: RetrainCheck) -> None:
    if not check.reasons:
        out.print("Retrain policy: nothing calls for a retrain.")
        return
    out.print(Text("Retrain policy: " + "; ".join(r.text for r in check.reasons)))
    if check.blocked:
        out.print(Text(f"  not retrained — {check.blocked}"))
        return
    training = check.training
    assert training is not None  # a due, unblocked check has retrained
    out.print(
        Text(
            f"  retrained: {training.decision} (version {training.version or '–'}, "
            f"champion now {training.champion_after}): {training.reason}"
        )
    )


def render(result: MonitoringResult) -> None:
    drift = result.drift
    out.print(
        f"Monitoring run [bold]{result.run_id}[/] — {result.model_name} "
        f"v{result.model_version}, as of {result.as_of.isoformat()}",
        highlight=False,
    )
    out.print(
        f"Data window: {result.data_window.predictions:,} predictions over "
        f"{result.data_window.days} days",
        highlight=False,
    )
    if drift is None:
        out.print("Drift: not enough predictions in the window (monitoring.min_samples)")
    else:
        table = Table(
            title=f"Feature drift — {drift.drifted_count} of {drift.features_analyzed} drifted"
        )
        for column in ("feature", "psi", "ks_pvalue", "severity", "drifted"):
            table.add_column(column)
        rows = sorted(drift.features, key=lambda f: -(_finite(f.psi) or 0))
        for f in rows[:15]:
            table.add_row(
                f.feature,
                _num(_finite(f.psi)),
                _num(_finite(f.ks_pvalue)),
                str(f.severity),
                "yes" if f.drifted else "",
            )
        out.print(table)
    perf = result.performance
    metrics = perf.metrics
    if metrics:
        out.print(
            f"Performance ({perf.evaluated_rows:,} labelled predictions in "
            f"{perf.mature_cohorts} mature day cohorts, {perf.immature_cohorts} "
            f"immature): ROC-AUC {metrics['roc_auc']:.4f}, PR-AUC {metrics['pr_auc']:.4f}, "
            f"recall {metrics['recall']:.3f}, precision {metrics['precision']:.3f}",
            highlight=False,
        )
    out.print(f"Performance: {perf.reason}", highlight=False)
    render_shadow(perf.shadow)
    flags = [
        name
        for name, on in (
            ("DATA DRIFT", result.data_drift_detected),
            ("MODEL DRIFT", result.model_drift_detected),
        )
        if on
    ]
    out.print(f"Status: [bold]{', '.join(flags) or 'no drift'}[/]")
    for name, path in result.reports.items():
        out.print(f"Report ({name}): {path}", highlight=False)
    if result.alert is not None:
        out.print(f"Alert: {result.alert.status} — {result.alert.reason}", highlight=False)


def render_shadow(shadow: ShadowReport | None) -> None:
    """Champion and shadow challenger on the same mature labelled predictions."""
    if shadow is None:
        return
    table = Table(title=f"Shadow scoring — the same {shadow.rows:,} labelled predictions")
    for column in ("model", "version", "ROC-AUC", "PR-AUC", "recall", "precision"):
        table.add_column(column)
    for entry in shadow.comparisons:
        for side, version, figures in (
            ("champion", entry.champion_version, entry.champion),
            ("challenger", entry.challenger_version, entry.challenger),
        ):
            table.add_row(
                side,
                str(version),
                *(
                    _num((figures or {}).get(k))
                    for k in ("roc_auc", "pr_auc", "recall", "precision")
                ),
            )
    out.print(table)
    for entry in shadow.comparisons:
        out.print(
            Text(
                f"v{entry.challenger_version} vs champion v{entry.champion_version} "
                f"({entry.positives} frauds): better = {entry.better}; {entry.reason or ''}"
            )
        )


def _finite(value: float | None) -> float | None:
    """NaN shown as empty, as in the JSON output."""
    return None if value is None or math.isnan(value) else value


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.4g}"
