"""`fraudops demo`: the main job end to end on embedded defaults."""

from __future__ import annotations

import typer

from fraudops.cli._common import JsonOption, RichReporter, emit, out, settings_from
from fraudops.cli.simulate_cmd import (
    MonthsOption,
    RowsOption,
    ScenarioOption,
    SimHomeOption,
    TxPerDayOption,
    render_simulation,
)


def demo(
    ctx: typer.Context,
    rows: RowsOption = None,
    months: MonthsOption = None,
    tx_per_day: TxPerDayOption = None,
    scenario: ScenarioOption = None,
    home: SimHomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Data → lake → train the first champion → 12 simulated months of production with the
    default scenario (data drift, then concept drift): detection, automatic retraining, hot
    reload, recovery. Prints the month table and where the chart, reports and MLflow runs are.

    Same as `fraudops simulate`; exit code 1 when the run shows no recovery (or, for the
    control, a retrain or drift alert).
    """
    from fraudops.simulation.run import run_simulation  # the whole loop: slow to import

    settings = settings_from(ctx)
    with RichReporter() as progress:
        result = run_simulation(
            settings,
            rows=rows,
            months=months,
            tx_per_day=tx_per_day,
            scenario=scenario,
            home=home,
            progress=progress,
        )
    summary = result.to_dict()

    def render() -> None:
        render_simulation(result)
        total = sum(result.timings.values())
        out.print(f"Total time:     {total:.0f} s")

    emit(summary, as_json, render)
    if result.outcome is None or not result.outcome.passed:
        raise typer.Exit(1)
