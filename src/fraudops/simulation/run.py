"""``run_simulation``: data → the first champion → ``months`` simulated months, and the settings
of the simulation's own home.

Every simulated day's traffic goes through the serving process (``world``); every
``monitor_every_days`` the log is drained into the lake, the outcomes confirmed by then are
delivered as labels, a monitoring run (``now`` = the clock) checks drift and mature performance
and alerts into the simulation's alert log, the retrain policy may retrain, and a new champion
(or shadow) is hot-reloaded before the next day's traffic.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudops.alerting.channels import AlertChannel, LogChannel
from fraudops.config import Scenario, Settings
from fraudops.data.synthetic import time_range
from fraudops.errors import ConfigError, FraudopsError
from fraudops.monitoring.retraining import retrain_after_monitoring
from fraudops.monitoring.run import run_monitoring
from fraudops.progress import Reporter
from fraudops.runtime import Runtime
from fraudops.simulation import readings
from fraudops.simulation.chart import render_chart
from fraudops.simulation.months import month_rows, outcome
from fraudops.simulation.outcomes import Outcomes
from fraudops.simulation.results import SimulationResult
from fraudops.simulation.signals_check import cbpe_check, onset_timings
from fraudops.simulation.traffic import DAYS_PER_MONTH, Traffic
from fraudops.simulation.world import ServingWorld
from fraudops.training.first_champion import DEMO_SPEC, prepare_champion

MARKER = ".fraudops-simulation"  # a folder with it may be wiped by the next run
ALERT_LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def simulation_settings(settings: Settings, scenario: str, home: Path | None = None) -> Settings:
    """The settings of a simulation home: embedded lake and MLflow under it, spool log, alerts
    to the log only, no HTML reports on every drifted run (only for runs that retrain)."""
    home = (home or settings.home_dir / "simulations" / scenario).resolve()
    return settings.model_copy(
        update={
            "home": home,
            "lake": settings.lake.model_copy(update={"catalog_uri": None, "warehouse": None}),
            "mlflow": settings.mlflow.model_copy(
                update={"tracking_uri": None, "artifact_location": None}
            ),
            "serving": settings.serving.model_copy(
                update={"log_backend": "spool", "spool_dir": None, "tokens": []}
            ),
            "alerts": settings.alerts.model_copy(update={"channels": ["log"]}),
            "monitoring": settings.monitoring.model_copy(update={"html_reports": "never"}),
        }
    )


def scenario_of(settings: Settings, name: str | None) -> tuple[str, Scenario]:
    name = name or settings.simulation.scenario
    try:
        return name, settings.simulation.scenarios[name]
    except KeyError:
        known = ", ".join(sorted(settings.simulation.scenarios))
        raise ConfigError(f"unknown scenario {name!r}: simulation.scenarios has {known}") from None


def run_simulation(
    settings: Settings,
    *,
    scenario: str | None = None,
    months: int | None = None,
    tx_per_day: int | None = None,
    home: Path | None = None,
    rows: int | None = None,
    progress: Reporter | None = None,
) -> SimulationResult:
    """Data → initial training → ``months`` simulated months. ``rows``: training-set size
    (default ``data.rows``); traffic is generated at that scale too (velocity features)."""
    progress = progress or Reporter()
    name, plan = scenario_of(settings, scenario)
    months = months or settings.simulation.months
    tx_per_day = tx_per_day or settings.simulation.tx_per_day
    for label, month in (
        ("data_drift_month", plan.data_drift_month),
        ("concept_drift_month", plan.concept_drift_month),
    ):
        if month is not None and month > months:
            raise ConfigError(
                f"scenario {name!r}: {label} {month} is after the last simulated month ({months})"
            )
    if rows is not None:
        settings = settings.model_copy(
            update={"data": settings.data.model_copy(update={"rows": rows})}
        )
    sim = simulation_settings(settings, name, home)
    _fresh_home(sim.home_dir)
    with Runtime(sim, DEMO_SPEC, actor="simulation") as runtime:
        return _simulate(runtime, name, plan, months, tx_per_day, progress)


def _simulate(
    runtime: Runtime,
    name: str,
    plan: Scenario,
    months: int,
    tx_per_day: int,
    progress: Reporter,
) -> SimulationResult:
    sim, spec = runtime.settings, runtime.spec
    champion, training = readings.initial_champion(
        prepare_champion(runtime.training_context(), drifted_sets=False, progress=progress)
    )
    start = _start_of(sim)
    result = SimulationResult(
        scenario=name,
        description=plan.description,
        months=months,
        tx_per_day=tx_per_day,
        start=start.isoformat(),
        home=str(sim.home_dir),
        data_drift_month=plan.data_drift_month,
        concept_drift_month=plan.concept_drift_month,
        initial_champion=champion,
        training=training,
        reports_dir=str(sim.home_dir / "reports" / spec.name),
        tracking_uri=sim.tracking_uri,
        mlflow_ui=f"mlflow ui --backend-store-uri {sim.tracking_uri}",
    )
    out = sim.home_dir / "simulation"
    out.mkdir(parents=True, exist_ok=True)
    alerts_log = out / "alerts.log"
    result.alerts_log = str(alerts_log)
    traffic = Traffic(sim, spec, plan, start, tx_per_day)
    outcomes = Outcomes(runtime)
    world = ServingWorld(runtime, start)
    try:
        days = months * DAYS_PER_MONTH
        label = f"Simulating {months} month{'s' if months != 1 else ''} ({name})"
        with alert_log(alerts_log) as channel, progress.step(label, total=days) as step:
            for day in range(days):
                outcomes.served(traffic.serve_day(world, day))
                if (day + 1) % sim.simulation.monitor_every_days == 0:
                    now = start + timedelta(days=day + 1)
                    _monitor(runtime, world, outcomes, now, result, [channel])
                step.advance()
        with progress.step("Collecting the last predictions"):
            world.flush()
    finally:
        world.close()
    with progress.step("Month-by-month figures"):
        result.month_rows = month_rows(runtime.lake(), outcomes.truth, result, start)
        result.outcome = outcome(result, plan)
        result.outcome.onsets = onset_timings(result, plan) or None
        result.outcome.fast_signals = cbpe_check(
            runtime.lake(), outcomes.truth, result, sim.monitoring.data_window_days
        )
    with progress.step("Chart and summary"):
        result.chart = str(render_chart(result, out / "simulation.png"))
        result.summary_path = str(out / "simulation.json")
        result.timings = dict(progress.timings)
        Path(result.summary_path).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


def _monitor(
    runtime: Runtime,
    world: ServingWorld,
    outcomes: Outcomes,
    now: datetime,
    result: SimulationResult,
    channels: list[AlertChannel],
) -> None:
    """The weekly cycle: drain, deliver labels, monitor, maybe retrain, hot reload."""
    world.clock = now
    world.flush()
    delivered = outcomes.deliver(now)
    monitoring = runtime.monitoring_context()
    run = run_monitoring(monitoring, now=now, html=False, channels=channels)
    # Evidently's HTML reports take ~10-50 s a run: made for the first retrain's evidence only.
    evidence = runtime.settings.simulation.evidence_report and not result.retrains
    check = retrain_after_monitoring(monitoring, run, html_report=evidence, channels=channels)
    result.monitoring_runs.append(readings.monitoring_run(runtime.settings, run, check, delivered))
    promoted = readings.shadow_promotion(run, check, now, result.retrains)
    if promoted is not None:
        result.retrains.append(promoted)
        world.reload()
    retrain = readings.automatic_retrain(run, check, now)
    if retrain is not None:
        result.retrains.append(retrain)
        if retrain.decision in readings.RELOADING_DECISIONS:
            world.reload()


@contextmanager
def alert_log(path: Path) -> Iterator[AlertChannel]:
    """A log channel writing to ``path`` for the run (dozens of alerts would bury the table).

    Its logger is not registered with ``logging``: nothing else writes to it, and the records
    go to this file only.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(ALERT_LOG_FORMAT))
    logger = logging.Logger("fraudops.simulation.alerts")
    logger.addHandler(handler)
    try:
        yield LogChannel(logger)
    finally:
        logger.removeHandler(handler)
        handler.close()


def _fresh_home(home: Path) -> None:
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise FraudopsError(
                f"{home} exists and is not a simulation home (no {MARKER}): "
                "choose another --home or empty it"
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("recreated by every `fraudops simulate` of this scenario\n")


def _start_of(sim: Settings) -> datetime:
    """Midnight after both the training data and the wall clock: the model goes live after its
    data, and simulated model_events sort after the initial training's."""
    _, data_end = time_range(sim.data)
    latest = max(datetime.now(UTC), data_end.to_pydatetime())
    return (latest + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
