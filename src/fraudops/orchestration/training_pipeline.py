"""The training pipeline: lake → validate → time split → features → train → threshold → evaluate
→ champion comparison (all on the runtime's engine: ``Engine.train``) → gate → MLflow run →
registry → model_events.

One MLflow run per execution, FAILED if a step raises. The gate's verdict is decided before any
artifact is written, and recorded everywhere (run tags, version tags, model_events) before the
pipeline reports it: with ``raise_on_gate`` as a GateFailed (exit 3) or NotPromoted (exit 4),
otherwise in the returned ``TrainingResult``.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING

from fraudops import registry
from fraudops.config import Settings
from fraudops.errors import ConfigError, GateFailed, NotPromoted
from fraudops.orchestration.training_record import Scored, record, run_name, run_tags
from fraudops.progress import Reporter
from fraudops.registry.client import experiment_id
from fraudops.registry.events import Trigger
from fraudops.spec import FeatureSpec
from fraudops.training.gate import decide
from fraudops.training.outcome import Trained
from fraudops.training.result import TrainingResult
from fraudops.training.trainers import TRAINERS

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.runtime import Runtime


def run_training(
    runtime: Runtime,
    *,
    trainer: str | None = None,
    progress: Reporter | None = None,
    raise_on_gate: bool = True,
    trigger: Trigger = "train",
    reason: str | None = None,
    monitoring_run_id: str | None = None,
    retrain_as_of: datetime | None = None,
    hold_baseline: bool = False,
) -> TrainingResult:
    """Train, evaluate, gate and register one model of the spec's lake data.

    ``trigger``/``reason``/``monitoring_run_id`` say why it ran (a retrain names the monitoring
    run that asked for it); they are recorded on the run and in model_events.

    With ``retrain_as_of`` it is a retrain as of that time: the training set adds the labelled
    predictions of ``retrain.window_days``, the holdout is the latest mature labelled traffic
    (see training/retrain_data.py), the challenger must beat the champion there by
    ``retrain.min_improvement``, and its model_events carry that time. ``hold_baseline`` (a
    retrain for degradation): the new model's degradation baseline stays at least the
    champion's, so monitoring keeps asking for retrains until the healthy level is back —
    a first retrain after a concept drift has seen only a few weeks of the new fraud.
    """
    settings, spec = runtime.settings, runtime.spec
    trainer = trainer or settings.training.trainer
    if trainer not in TRAINERS:
        raise ConfigError(f"unknown trainer {trainer!r}: use one of {', '.join(TRAINERS)}")
    runtime.engine.check_trainer(trainer)
    progress = progress or Reporter()
    with progress.step("Connecting to MLflow"):
        client = runtime.mlflow
        experiment = experiment_id(client, settings, settings.mlflow.training_experiment)
        run = client.create_run(
            experiment,
            run_name=run_name(spec, trainer),
            tags=run_tags(spec, trainer, trigger, reason, monitoring_run_id),
        )
    run_id = run.info.run_id
    try:
        # The modelling runs on the runtime's engine (this process, or a Dask cluster); the
        # gate, the MLflow run and the registry are the same for both.
        trained = runtime.engine.train(runtime, trainer, progress, retrain_as_of)
        scored = _judge(settings, trainer, trained)
        if hold_baseline:
            scored.baseline_floor = _champion_baseline(settings, spec, client)
        result = record(
            settings,
            spec,
            trainer,
            client,
            run_id,
            scored,
            progress,
            trigger=trigger,
            reason=reason,
            monitoring_run_id=monitoring_run_id,
            event_time=retrain_as_of,
            actor=runtime.actor,
        )
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    result.timings = dict(progress.timings)
    if raise_on_gate and result.decision == "rejected":
        raise GateFailed(
            f"gate failed for {spec.name}/{trainer} (run {run_id}, not registered): {result.reason}"
        )
    if raise_on_gate and result.decision == "not_promoted":
        raise NotPromoted(
            f"{result.model_name} version {result.version} registered but not "
            f"promoted: {result.reason}"
        )
    return result


# ---- judging -----------------------------------------------------------------------------------


def _judge(settings: Settings, trainer: str, trained: Trained) -> Scored:
    """The gate's verdict on what the engine trained (the same for every engine)."""
    champion = trained.champion_holdout
    gate = decide(
        trained.holdout.to_dict(),
        trainer,
        settings.gate,
        champion_metrics=None if champion is None else champion.to_dict(),
        champion_version=trained.champion_before,
        # a retrain replaces a working model only when it does better on recent traffic
        margin=-settings.retrain.min_improvement if trained.retrain is not None else None,
    )
    return Scored(**{f.name: getattr(trained, f.name) for f in fields(Trained)}, gate=gate)


def _champion_baseline(settings: Settings, spec: FeatureSpec, client: MlflowClient) -> float | None:
    try:
        profile, _ = registry.load_reference_profile(settings, spec, client=client)
    except Exception:  # no champion (or no profile): nothing to hold
        return None
    value = (profile.baseline_metrics or {}).get("roc_auc")
    return None if value is None else float(value)
