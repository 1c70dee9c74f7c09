"""A time-compressed production run on a simulated clock, through the real components.

Seed 003 simulated 12 months of production with data drift (shifting feature means) and concept
drift (labels flipped for high-value transactions). Here every simulated day's transactions come
from the generator (drifted from the scenario's onsets), go through the serving app in-process
(the ASGI app, its micro-batching service and the durable spool log, with the request time taken
from the simulated clock), and are committed to the lake by the spool writer. Their real outcomes
are confirmed with the label simulator's delays (fraud 1-7 days, legitimate 1-30) and ingested
as label events once the clock passes their confirmation time. Every ``monitor_every_days`` a
monitoring run (``now`` = the clock) checks drift and mature performance and alerts to the log;
the retrain policy may then retrain, and a promoted challenger is hot-reloaded by the serving
process's model holder before the next day's traffic.

A simulation lives in its own home (default ``<home>/simulations/<scenario>``, recreated each
run) with embedded lake and MLflow, so it never mixes with real predictions.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.config import Scenario, Settings
from fraudops.errors import ConfigError, FraudopsError
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from fraudops.orchestration.demo import PreparedChampion

DAYS_PER_MONTH = 30  # simulated months are 30 days: cohorts and charts line up
REQUEST_ROWS = 250  # transactions per simulated request
MARKER = ".fraudops-simulation"  # a folder with it may be wiped by the next run
RECOVERY_TOLERANCE = 0.05  # the "back within 0.05 of its pre-drift level"


@dataclass
class SimulationResult:
    scenario: str
    description: str
    months: int
    tx_per_day: int
    start: str
    home: str
    data_drift_month: int | None
    concept_drift_month: int | None
    initial_champion: str | None
    training: dict[str, Any] = field(default_factory=dict)  # the initial training
    month_rows: list[dict[str, Any]] = field(default_factory=list)
    monitoring_runs: list[dict[str, Any]] = field(default_factory=list)
    retrains: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    chart: str | None = None
    summary_path: str | None = None
    reports_dir: str | None = None
    alerts_log: str | None = None
    tracking_uri: str | None = None
    mlflow_ui: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    spec = sim.feature_spec("transactions30")
    prepared = _initial_champion(sim, progress)
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
        initial_champion=prepared.champion,
        training=prepared.training.to_dict(),
        reports_dir=str(sim.home_dir / "reports" / spec.name),
        tracking_uri=sim.tracking_uri,
        mlflow_ui=f"mlflow ui --backend-store-uri {sim.tracking_uri}",
    )
    out = sim.home_dir / "simulation"
    out.mkdir(parents=True, exist_ok=True)
    result.alerts_log = str(out / "alerts.log")
    world = _World(sim, spec, plan, start, tx_per_day)
    try:
        days = months * DAYS_PER_MONTH
        label = f"Simulating {months} month{'s' if months != 1 else ''} ({name})"
        with _alerts_to(Path(result.alerts_log)), progress.step(label, total=days) as step:
            for day in range(days):
                world.serve_day(day)
                if (day + 1) % sim.simulation.monitor_every_days == 0:
                    world.monitor(start + timedelta(days=day + 1), result)
                step.advance()
        with progress.step("Collecting the last predictions"):
            world.flush()
    finally:
        world.close()
    with progress.step("Month-by-month figures"):
        result.month_rows = _month_rows(sim, spec, world, result, months, start)
        result.outcome = _outcome(result, plan)
    with progress.step("Chart and summary"):
        result.chart = str(render_chart(result, out / "simulation.png"))
        result.summary_path = str(out / "simulation.json")
        result.timings = dict(progress.timings)
        Path(result.summary_path).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


# ---- setting up ----------------------------------------------------------------------------------


@contextmanager
def _alerts_to(path: Path) -> Iterator[None]:
    """The log channel's alerts go to a file for the run (dozens of them would bury the table)."""
    import logging

    from fraudops.alerting.channels import logger

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
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


def _initial_champion(sim: Settings, progress: Reporter) -> PreparedChampion:
    from fraudops.orchestration.demo import DEMO_SPEC, prepare_champion
    from fraudops.runtime import Runtime

    with Runtime(sim, DEMO_SPEC) as runtime:
        prepared = prepare_champion(runtime, drifted_sets=False, progress=progress)
    if prepared.champion is None:
        raise FraudopsError(
            f"the initial model did not pass the gate ({prepared.training.reason}): "
            "nothing to serve"
        )
    return prepared


def _start_of(sim: Settings) -> datetime:
    """Midnight after both the training data and the wall clock: the model goes live after its
    data, and simulated model_events sort after the initial training's."""
    from fraudops.data.synthetic import time_range

    _, data_end = time_range(sim.data)
    latest = max(datetime.now(UTC), data_end.to_pydatetime())
    return (latest + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


# ---- the simulated world -------------------------------------------------------------------------


class _World:
    """Traffic, outcomes and the serving process of one simulation."""

    def __init__(
        self, sim: Settings, spec: FeatureSpec, plan: Scenario, start: datetime, tx_per_day: int
    ) -> None:
        import httpx

        from fraudops.runtime import Runtime
        from fraudops.serving.app import create_app

        self.sim, self.spec, self.plan, self.start = sim, spec, plan, start
        self.tx_per_day = tx_per_day
        self.clock = start
        self.runtime = Runtime(sim, spec.name)  # the monitoring runs' lake and MLflow client
        self.app = create_app(sim, spec.name)
        self.state = self.app.state
        self.state.start()
        assert self.state.service is not None
        self.state.service.clock = lambda: self.clock  # request times from the simulated clock
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://simulation"
        )
        self.month_frame: pd.DataFrame | None = None
        self.truth: list[pd.DataFrame] = []  # inference_id, transaction_id, request_time, label
        self.truth_all = pd.DataFrame(columns=["inference_id", "label"])
        self.pending_labels: pd.DataFrame | None = None

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()
        self.state.stop()
        self.runtime.close()

    # -- traffic

    def serve_day(self, day: int) -> None:
        month, in_month = divmod(day, DAYS_PER_MONTH)
        if in_month == 0:
            self.month_frame = self._month_traffic(month)
        assert self.month_frame is not None
        per_day = self.tx_per_day
        rows = self.month_frame.iloc[in_month * per_day : (in_month + 1) * per_day]
        day_start = self.start + timedelta(days=day)
        self.loop.run_until_complete(self._send(rows, day_start))

    def _month_traffic(self, month: int) -> pd.DataFrame:
        """One month of transactions with their true labels, drifted as the scenario says."""
        from fraudops.data.drift import apply_drift, drift_rules
        from fraudops.data.synthetic import generate_transactions

        sim, spec, plan = self.sim, self.spec, self.plan
        volume = self.tx_per_day * DAYS_PER_MONTH
        seed = sim.simulation.seed * 1000 + month
        # At the training set's scale, then sampled: velocity features grow with the rows made.
        frame = generate_transactions(
            sim.data,
            spec,
            rows=max(volume, sim.data.rows),
            seed=seed,
            customer_seed=sim.data.seed,
            id_prefix=f"sim-m{month + 1:02d}-",
        )
        frame = frame.sample(volume, random_state=seed, replace=volume > len(frame))
        frame = frame.reset_index(drop=True)
        rng = np.random.default_rng([seed, 2])
        if plan.data_drift_month is not None and month + 1 >= plan.data_drift_month:
            rules = drift_rules(sim.data, plan.drift_pattern)
            frame = apply_drift(frame, rules, spec, rng, pattern=plan.drift_pattern)
        if plan.concept_drift_month is not None and month + 1 >= plan.concept_drift_month:
            frame = flip_high_value(frame, spec, plan, rng)
        return frame

    async def _send(self, rows: pd.DataFrame, day_start: datetime) -> None:
        import orjson

        spec = self.spec
        keys = [c for c in (spec.id_column, spec.customer_column) if c is not None]
        keys += spec.feature_names
        label = rows[spec.label_column].to_numpy()
        columns = [rows[k].to_numpy().tolist() for k in keys]
        records = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
        chunks = max(1, -(-len(records) // REQUEST_ROWS))
        ids: list[str] = []
        times: list[datetime] = []
        tx_ids: list[str] = []
        for k in range(chunks):
            part = records[k * REQUEST_ROWS : (k + 1) * REQUEST_ROWS]
            self.clock = day_start + timedelta(seconds=(k + 0.5) * 86_400 / chunks)
            response = await self.client.post("/v1/predict", content=orjson.dumps(part))
            if response.status_code != 200:
                raise FraudopsError(
                    f"simulated traffic: /v1/predict answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
            for result in response.json()["results"]:
                ids.append(result["inference_id"])
                tx_ids.append(result["transaction_id"])
                times.append(self.clock)
        self.truth.append(
            pd.DataFrame(
                {
                    "inference_id": ids,
                    "transaction_id": tx_ids,
                    "request_time": pd.to_datetime(times, utc=True),
                    "label": label[: len(ids)].astype(np.int64),
                }
            )
        )

    # -- the weekly cycle

    def flush(self) -> None:
        """Seal the serving process's spool and commit everything to the lake."""
        from fraudops.serving.inference_log import open_inference_log
        from fraudops.serving.writer import SpoolWriter

        state = self.state
        assert state.log is not None and state.service is not None
        state.log.close()  # seals the open segment; a fresh one takes the next day's records
        state.log = open_inference_log(self.sim, self.spec.name)
        state.service.log = state.log
        writer = SpoolWriter(self.sim, self.spec.name)
        try:
            writer.drain_all()
        finally:
            writer.close()

    def take_truth(self) -> None:
        """Move the outcomes of the traffic served so far into the confirmation queue."""
        from fraudops.labels.simulate import true_label_events

        if not self.truth:
            return
        served = pd.concat(self.truth, ignore_index=True)
        self.truth = []
        fresh = true_label_events(served, self.sim.labels, self.sim.labels.seed)
        self.truth_all = pd.concat(
            [self.truth_all, served[["inference_id", "label"]]], ignore_index=True
        )
        self.pending_labels = pd.concat([self.pending_labels, fresh], ignore_index=True)

    def deliver_labels(self, now: datetime) -> int:
        """Ingest the outcomes confirmed by ``now`` (through the label ingestion)."""
        from fraudops.labels.ingest import LabelEvent, ingest_events
        from fraudops.lake import Lake

        self.take_truth()
        if self.pending_labels is None or self.pending_labels.empty:
            return 0
        due_mask = self.pending_labels["confirmed_at"] <= pd.Timestamp(now)
        due = self.pending_labels[due_mask]
        self.pending_labels = self.pending_labels[~due_mask].reset_index(drop=True)
        if due.empty:
            return 0
        events = [
            LabelEvent(
                inference_id=inference_id,
                transaction_id=transaction_id,
                label=int(label),
                confirmed_at=pd.Timestamp(confirmed_at).to_pydatetime(),
                source=source,
                notes="simulation",
            )
            for inference_id, transaction_id, label, confirmed_at, source in zip(
                due["inference_id"].tolist(),
                due["transaction_id"].tolist(),
                due["label"].tolist(),
                due["confirmed_at"].tolist(),
                due["source"].tolist(),
                strict=True,
            )
        ]
        with Lake.open(self.sim, self.spec.name) as lake:
            report = ingest_events(lake, events, now=now, origin="simulation")
        return int(report.written)

    def monitor(self, now: datetime, result: SimulationResult) -> None:
        from fraudops.orchestration.monitoring import run_monitoring
        from fraudops.orchestration.retrain_policy import alarmed_features
        from fraudops.orchestration.retraining import retrain_after_monitoring

        self.clock = now
        self.flush()
        delivered = self.deliver_labels(now)
        run = run_monitoring(self.runtime, now=now, html=False)
        # Evidently's HTML reports take ~10 s a run: made for the first retrain's evidence only.
        check = retrain_after_monitoring(self.runtime, run, html_report=not result.retrains)
        alarmed = len(alarmed_features(self.sim, run.drift))
        perf = run.performance.metrics or {}
        shadow = run.performance.shadow
        result.monitoring_runs.append(
            {
                "run_id": run.run_id,
                "as_of": run.as_of.isoformat(),
                "champion": run.model_version,
                "labels_delivered": delivered,
                "predictions": run.data_window.predictions,
                "data_drift_detected": run.data_drift_detected,
                "model_drift_detected": run.model_drift_detected,
                "alarmed_features": alarmed,
                "mature_recall": perf.get("recall"),
                "mature_roc_auc": perf.get("roc_auc"),
                "alert": run.alert.status if run.alert is not None else None,
                "retrain_reasons": [r.text for r in check.reasons],
                "retrain_blocked": check.blocked,
                "shadow": shadow.to_dict() if shadow is not None else None,
                "shadow_verdict": check.shadow.to_dict() if check.shadow is not None else None,
            }
        )
        verdict = check.shadow.to_dict() if check.shadow is not None else None
        if verdict is not None and verdict["status"] == "promoted":
            # The challenger won on live traffic: it takes over like a promoted retrain.
            version = verdict["challenger_version"]
            shadowed = [r for r in result.retrains if r["version"] == version]
            result.retrains.append(
                {
                    **(shadowed[-1] if shadowed else {}),
                    "as_of": now.isoformat(),
                    "monitoring_run_id": run.run_id,
                    "decision": "promoted",
                    "via": "shadow",
                    "reason": verdict["why"],
                    "version": version,
                    "champion_before": verdict["champion_version"],
                    "champion_after": version,
                    "challenger": _key_metrics(verdict["metrics"]["challenger"]),
                    "champion": _key_metrics(verdict["metrics"]["champion"]),
                }
            )
            self.state.holder.check()  # the serving process's hot reload
        if check.training is not None:
            training = check.training.to_dict()
            result.retrains.append(
                {
                    "as_of": now.isoformat(),
                    "monitoring_run_id": run.run_id,
                    "reasons": [r.text for r in check.reasons],
                    "decision": training["decision"],
                    "reason": training["reason"],
                    "version": training["version"],
                    "champion_before": training["champion_before"],
                    "champion_after": training["champion_after"],
                    "mlflow_run_id": training["run_id"],
                    "challenger": _key_metrics(training["metrics"]),
                    "champion": _key_metrics(training["gate"].get("champion_metrics") or {}),
                    "retrain_data": training.get("retrain"),
                    "reports": check.report,
                }
            )
            if training["decision"] in ("promoted", "shadowed"):
                self.state.holder.check()  # hot reload: the new champion, or the new shadow


def flip_high_value(
    frame: pd.DataFrame, spec: FeatureSpec, plan: Scenario, rng: np.random.Generator
) -> pd.DataFrame:
    """Seed 003's concept drift: legitimate transactions at or above the amount quantile become
    fraud (a share ``flip_share`` of them) — fraudsters moving to high-value purchases that look
    like ordinary ones."""
    if spec.amount_column is None:
        raise ConfigError(f"spec {spec.name!r} has no amount_column: no high-value concept drift")
    drift = plan.concept_drift
    amount = frame[spec.amount_column].to_numpy(dtype=np.float64)
    high = amount >= np.quantile(amount, drift.amount_quantile)
    legit = frame[spec.label_column].to_numpy() == 0
    flip = high & legit & (rng.random(len(frame)) < drift.flip_share)
    out = frame.copy()
    out.loc[flip, spec.label_column] = 1
    return out


def _key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("roc_auc", "pr_auc", "recall", "precision", "f1", "threshold")
    return {k: metrics[k] for k in keys if k in metrics}


# ---- results -------------------------------------------------------------------------------------


def _month_rows(
    sim: Settings,
    spec: FeatureSpec,
    world: _World,
    result: SimulationResult,
    months: int,
    start: datetime,
) -> list[dict[str, Any]]:
    """Per month: what the served model really did (predictions against the true outcomes)."""
    from fraudops.lake import Lake
    from fraudops.monitoring.performance import classification_metrics

    world.take_truth()
    truth = world.truth_all[["inference_id", "label"]]
    with Lake.open(sim, spec.name) as lake:
        served = lake.read_frame(
            "predictions",
            columns=["inference_id", "request_time", "probability", "prediction", "model_version"],
        )
    frame = served.merge(truth, on="inference_id", how="inner")
    frame["month"] = _month_of(frame["request_time"], start)
    # A run (and its retrain) at the very end of a month belongs to that month.
    runs = pd.DataFrame(result.monitoring_runs)
    if len(runs):
        runs["month"] = _month_of(runs["as_of"], start, end_inclusive=True)
    retrains = pd.DataFrame(result.retrains)
    if len(retrains):
        retrains["month"] = _month_of(retrains["as_of"], start, end_inclusive=True)
    rows = []
    champion = result.initial_champion
    for month in range(1, months + 1):
        part = frame[frame["month"] == month]
        metrics = (
            classification_metrics(
                part["label"].to_numpy(),
                part["probability"].to_numpy(),
                part["prediction"].to_numpy(),
                cost_fn=sim.training.cost_fn,
                cost_fp=sim.training.cost_fp,
            )
            or {}
        )
        in_month = runs[runs["month"] == month] if len(runs) else runs
        tried = retrains[retrains["month"] == month] if len(retrains) else retrains
        promoted = tried[tried["decision"] == "promoted"] if len(tried) else tried
        if len(promoted):
            champion = str(promoted.iloc[-1]["version"])
        plan_data = result.data_drift_month is not None and month >= result.data_drift_month
        plan_concept = (
            result.concept_drift_month is not None and month >= result.concept_drift_month
        )
        rows.append(
            {
                "month": month,
                "start": (start + timedelta(days=(month - 1) * DAYS_PER_MONTH)).date().isoformat(),
                "volume": len(part),
                "frauds": int(part["label"].sum()),
                "recall": metrics.get("recall"),
                "precision": metrics.get("precision"),
                "roc_auc": metrics.get("roc_auc"),
                "pr_auc": metrics.get("pr_auc"),
                "drifted_features": int(in_month["alarmed_features"].max()) if len(in_month) else 0,
                "alerts": int(in_month["alert"].notna().sum()) if len(in_month) else 0,
                "retrains": len(tried),
                "promoted": len(promoted),
                "champion": champion,
                "served_by": sorted(part["model_version"].dropna().unique().tolist()),
                "data_drift": plan_data,
                "concept_drift": plan_concept,
            }
        )
    return rows


def _month_of(times: pd.Series, start: datetime, *, end_inclusive: bool = False) -> pd.Series:
    """The 1-based simulated month of each time (``end_inclusive``: a month's last instant is
    in it, not in the next)."""
    seconds = (pd.to_datetime(times, utc=True) - pd.Timestamp(start)).dt.total_seconds()
    if end_inclusive:
        seconds = seconds - 1
    return (seconds // (DAYS_PER_MONTH * 86_400)).astype(int) + 1


def _outcome(result: SimulationResult, plan: Scenario) -> dict[str, Any]:
    """What the run shows: detection, retrain, recovery (or, for a control, quiet)."""
    rows = result.month_rows
    onsets = [m for m in (plan.data_drift_month, plan.concept_drift_month) if m is not None]
    alerts = [r for r in result.monitoring_runs if r["alert"] is not None]
    automatic = result.retrains
    outcome: dict[str, Any] = {
        "drift_alerts": len(alerts),
        "retrains": len(automatic),
        "promotions": sum(r["decision"] == "promoted" for r in automatic),
        "final_champion": rows[-1]["champion"] if rows else None,
    }
    if not onsets:
        outcome["quiet"] = not alerts and not automatic
        return outcome
    first = min(onsets)
    onset_time = datetime.fromisoformat(result.start) + timedelta(days=(first - 1) * DAYS_PER_MONTH)
    pre = [r for r in rows if r["month"] < first]
    outcome["pre_drift_recall"] = _pooled_recall(pre)
    after = [r for r in result.monitoring_runs if datetime.fromisoformat(r["as_of"]) > onset_time]
    detected = next(
        (i for i, r in enumerate(after) if r["data_drift_detected"] or r["model_drift_detected"]),
        None,
    )
    outcome["detected_at_run"] = None if detected is None else detected + 1
    outcome["detected_as_of"] = None if detected is None else after[detected]["as_of"]
    # Recovery counts from the first promoted retrain judged wholly on traffic of the latest
    # drift (its holdout starts after the onset): one judged on labels from before the drift,
    # or on its first few days, cannot have learned it.
    last_onset = onset_time + timedelta(days=(max(onsets) - first) * DAYS_PER_MONTH)
    recovering = [
        r
        for r in automatic
        if r["decision"] == "promoted"
        and ((r.get("retrain_data") or {}).get("holdout_start") or "") >= f"{last_onset:%Y-%m-%d}"
    ]
    if recovering:
        retrain_time = datetime.fromisoformat(recovering[0]["as_of"])
        outcome["recovery_retrain"] = recovering[0]["version"]
        outcome["recovery_retrain_as_of"] = recovering[0]["as_of"]
        months_after = [
            r
            for r in rows
            if datetime.fromisoformat(r["start"]).replace(tzinfo=UTC) >= retrain_time
        ]
        outcome["post_retrain_months"] = [r["month"] for r in months_after]
        outcome["post_retrain_recall"] = _pooled_recall(months_after)
    post, before = outcome.get("post_retrain_recall"), outcome.get("pre_drift_recall")
    outcome["recovered"] = (
        post is not None and before is not None and post >= before - RECOVERY_TOLERANCE
    )
    return outcome


def _pooled_recall(rows: list[dict[str, Any]]) -> float | None:
    """Recall over several months, weighted by their frauds."""
    frauds = sum(r["frauds"] for r in rows if r["recall"] is not None)
    if not frauds:
        return None
    return sum(r["recall"] * r["frauds"] for r in rows if r["recall"] is not None) / frauds


def render_chart(result: SimulationResult, path: Path) -> Path:
    """Recall and PR-AUC by month, with the drift onsets and the retrains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.month_rows
    months = [r["month"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    ax.plot(months, [r["recall"] for r in rows], marker="o", label="recall")
    ax.plot(months, [r["pr_auc"] for r in rows], marker="s", label="PR-AUC")
    for month, what, color in (
        (result.data_drift_month, "data drift", "tab:orange"),
        (result.concept_drift_month, "concept drift", "tab:red"),
    ):
        if month is not None:
            ax.axvline(month - 0.5, color=color, linestyle="--", label=f"{what} onset")
    start = datetime.fromisoformat(result.start)
    for retrain in result.retrains:
        at = (datetime.fromisoformat(retrain["as_of"]) - start).total_seconds()
        x = 0.5 + at / (DAYS_PER_MONTH * 86_400)
        decision = retrain["decision"]
        color = {"promoted": "tab:green", "rejected": "tab:red"}.get(decision, "tab:gray")
        label = {"promoted": f"v{retrain['version']}", "rejected": "rejected"}.get(decision, "kept")
        ax.axvline(x, color=color, alpha=0.6)
        ax.annotate(label, (x, 0.02), rotation=90, fontsize=8, color=color)
    ax.set_xticks(months)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("simulated month")
    ax.set_title(
        f"fraudops simulate · {result.scenario} · {result.tx_per_day:,} tx/day "
        "(retrains: green promoted, grey lost, red rejected)"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
