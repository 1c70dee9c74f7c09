"""`fraudops simulate` and `fraudops retrain`: the closed loop, by hand or on a simulated clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from fraudops.cli._common import (
    EngineOption,
    JsonOption,
    RichReporter,
    SpecOption,
    emit,
    fmt,
    installed,
    out,
    settings_from,
    shown_path,
)
from fraudops.cli.train_cmd import TrainerOption, check_trainer, render_training

if TYPE_CHECKING:
    from fraudops.simulation.results import MonthRow, Outcome, SimulationResult

# The simulation `make demo` runs (the default scenario under ./fraudops-home) and `make dashboard`
# shows.
DEFAULT_DEMO_HOME = "fraudops-home/simulations/drift"

MonthsOption = Annotated[
    int | None, typer.Option("--months", min=1, help="Simulated months (default 12).")
]
TxPerDayOption = Annotated[
    int | None,
    typer.Option("--tx-per-day", min=10, help="Transactions per simulated day (default 1000)."),
]
ScenarioOption = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        help="A simulation.scenarios key: drift (default), data_drift, concept_drift, control.",
    ),
]
SimHomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The simulation's own folder (default <home>/simulations/<scenario>); recreated.",
    ),
]
RowsOption = Annotated[
    int | None,
    typer.Option("--rows", min=1000, help="Training-set rows (default data.rows)."),
]


def simulate(
    ctx: typer.Context,
    months: MonthsOption = None,
    tx_per_day: TxPerDayOption = None,
    scenario: ScenarioOption = None,
    home: SimHomeOption = None,
    rows: RowsOption = None,
    as_json: JsonOption = False,
) -> None:
    """A time-compressed production run on a simulated clock, through the real components.

    Data → first champion → month after month: generated traffic (with the scenario's data and
    concept drift) through the serving app and its durable log, delayed labels, weekly
    monitoring runs with alerts to the log, automatic retraining and hot reload. Prints the
    month table; writes simulation.json and simulation.png in the simulation's folder.
    """
    from fraudops.simulation.run import run_simulation  # the whole loop: slow to import

    settings = settings_from(ctx)
    with RichReporter() as progress:
        result = run_simulation(
            settings,
            scenario=scenario,
            months=months,
            tx_per_day=tx_per_day,
            home=home,
            rows=rows,
            progress=progress,
        )
    emit(result.to_dict(), as_json, lambda: render_simulation(result))


def retrain(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option("--reason", help="Why: recorded on the MLflow run and in model_events.")
    ] = "retrain by hand",
    now: Annotated[
        datetime | None,
        typer.Option("--now", help="Retrain as of this time (ISO; default: now)."),
    ] = None,
    trainer: TrainerOption = None,
    spec: SpecOption = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train a challenger on the lake's data plus recent labelled predictions, judge it and the
    champion on the same recent mature holdout, promote it only if it wins.

    --engine dask trains and evaluates it on a Dask cluster (XGBoost only).

    Exit codes: 0 promoted; 3 gate thresholds failed; 4 the champion stays (challenger did not
    beat it); 5 not enough mature labelled predictions.
    """
    from fraudops.monitoring.retraining import retrain as run_retrain
    from fraudops.runtime import Runtime

    check_trainer(trainer)
    with (
        Runtime(settings_from(ctx), spec, engine=engine) as runtime,
        RichReporter() as progress,
    ):
        monitoring = runtime.monitoring_context()
        result = run_retrain(monitoring, now=now, reason=reason, trainer=trainer, progress=progress)

    def render() -> None:
        render_training(result)
        data = result.retrain
        if data is not None:
            out.print(
                f"Trained on {data.lake_rows:,} lake rows + {data.labelled_train_rows:,} "
                f"labelled predictions; judged on {data.holdout_rows:,} mature labelled "
                f"predictions of {data.holdout_start} – {data.holdout_end} "
                f"({data.holdout_positives} frauds)",
                highlight=False,
            )

    emit(result.to_dict(), as_json, render)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


MONTH_COLUMNS = (  # (key, header): short enough for an 80-column terminal (the volume is
    # the title's tx/day × 30; simulation.json carries it)
    ("month", "mo"),
    ("frauds", "frauds"),
    ("recall", "rec"),
    ("precision", "prec"),
    ("flagged_per_day", "f/d"),
    ("amount_caught", "caught"),
    ("amount_missed", "missed"),
    ("roc_auc", "ROC"),
    ("pr_auc", "PR"),
    ("drifted_features", "drift"),
    ("alerts", "alert"),
    ("retrains", "retr"),
    ("champion", "champ"),
)


def _cell(row: MonthRow, key: str) -> str:
    value = getattr(row, key)
    if key == "retrains":
        return f"{value}/{row.promoted}" if value else "–"
    if key == "champion":
        return f"v{value}"
    if key in ("amount_caught", "amount_missed"):
        return "–" if value is None else _money(value)
    if key == "flagged_per_day":
        return "–" if value is None else f"{value:.1f}"
    if key == "month":
        onset = "".join(
            mark for mark, on in (("d", row.data_drift), ("c", row.concept_drift)) if on
        )
        return f"{value}{onset}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else fmt(value)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _money(value: float) -> str:
    return f"${value / 1000:,.0f}K" if abs(value) >= 1000 else f"${value:,.0f}"


def render_simulation(result: SimulationResult) -> None:
    onsets = [
        f"{what} drift from month {month}"
        for what, month in (
            ("data", result.data_drift_month),
            ("concept", result.concept_drift_month),
        )
        if month
    ]
    table = Table(
        title=f"Simulation '{result.scenario}': {result.months} "
        f"month{'s' if result.months != 1 else ''} from {result.start[:10]}, "
        f"{result.tx_per_day:,} tx/day; " + ("; ".join(onsets) or "no drift"),
        caption="d/c: data/concept drift active · f/d: alerts a day · caught/missed: fraud "
        "amount flagged/not · drift: features at alarm level · retr: tried/promoted · "
        "champ: champion at month end",
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    for _, header in MONTH_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    for row in result.month_rows:
        table.add_row(*(Text(_cell(row, key)) for key, _ in MONTH_COLUMNS))
    out.print(table)
    for retrain in result.retrains:
        challenger, champion = retrain.challenger, retrain.champion
        out.print(
            Text(
                f"{retrain.as_of[:10]} retrain after {retrain.monitoring_run_id}: "
                f"{retrain.decision} (v{retrain.version or '–'}); challenger ROC-AUC "
                f"{fmt(challenger.get('roc_auc'))} PR-AUC {fmt(challenger.get('pr_auc'))} vs "
                f"champion {fmt(champion.get('roc_auc'))} / {fmt(champion.get('pr_auc'))}"
            )
        )
    out.print()
    if result.outcome is not None:
        out.print(_verdict(result.outcome), highlight=False)
    # Paths and commands unwrapped, so they can be copied whatever the terminal's width; the
    # commands with the venv's path, so that they work as printed in a fresh shell.
    fraudops, home = installed("fraudops"), shown_path(result.home)
    for label, value in (
        ("Chart:         ", result.chart),
        ("Summary (JSON):", result.summary_path),
        ("Reports:       ", result.reports_dir),
        ("Alerts (log):  ", result.alerts_log),
        ("MLflow runs:   ", f"{installed('mlflow')} ui --backend-store-uri {result.tracking_uri}"),
    ):
        out.print(Text(f"{label} {value}"), soft_wrap=True)
    out.print(
        Text(
            f"Audit trail:    FRAUDOPS_HOME={home} {fraudops} lake query 'SELECT "
            "event_time, trigger, event_type, version, monitoring_run_id FROM model_events'"
        ),
        soft_wrap=True,
    )
    dashboard = f"{fraudops} dashboard --home {home}"
    if home == DEFAULT_DEMO_HOME and Path("Makefile").exists():
        dashboard = f"make dashboard   (= {dashboard})"
    out.print(Text(f"Dashboard:      {dashboard}   (http://127.0.0.1:8090)"), soft_wrap=True)


def _verdict(outcome: Outcome) -> str:
    if outcome.quiet is not None:
        return (
            f"Control: {outcome.drift_alerts} drift alerts, {outcome.retrains} retrains "
            f"({'quiet, as it should be' if outcome.quiet else 'NOT quiet'})"
        )
    return (
        f"Drift detected at monitoring run {outcome.detected_at_run} after the onset "
        f"({outcome.detected_as_of or 'never'}); {outcome.retrains} automatic "
        f"retrains, {outcome.promotions} promoted. Recall before the drift "
        f"{fmt(outcome.pre_drift_recall)} ({_share(outcome.pre_drift_amount_caught_share)} "
        "of the fraud amount caught), after the retrain "
        f"{fmt(outcome.post_retrain_recall)}: "
        f"{'recovered' if outcome.recovered else 'NOT recovered'}"
    )
