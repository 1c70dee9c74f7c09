"""Training's sequence, written once: split → features → fit → calibration and operating point →
evaluate → champion comparison → gate → MLflow run → registry → model_events.

The rows are handled by the backend of the context's engine (training/backend.py: this
process, training/local.py, or a Dask cluster, training/dask.py); the operating point and the
evaluation run here on the (score, label) pairs either backend gathers, and everything after
them is the same code for both.

One MLflow run per execution, FAILED if a step raises. The gate's verdict is decided before any
artifact is written, and recorded everywhere (run tags, version tags, model_events) before the
pipeline reports it: with ``raise_on_gate`` as a GateFailed (exit 3) or NotPromoted (exit 4),
otherwise in the returned ``TrainingResult``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudops import registry
from fraudops.config import Settings
from fraudops.errors import ConfigError, GateFailed, NotPromoted
from fraudops.models.calibration import Calibrator
from fraudops.models.decision import OperatingPoint
from fraudops.progress import Reporter
from fraudops.registry.client import experiment_id
from fraudops.registry.events import Trigger
from fraudops.spec import FeatureSpec
from fraudops.training.backend import Matrices, TrainingBackend, TrainingContext, open_backend
from fraudops.training.evaluation import Evaluation, SliceContext, evaluate
from fraudops.training.gate import decide
from fraudops.training.operating import choose_operating_point
from fraudops.training.outcome import Trained
from fraudops.training.record import Scored, record, run_name, run_tags
from fraudops.training.result import TrainingResult
from fraudops.training.trainers import TRAINERS

if TYPE_CHECKING:
    from mlflow import MlflowClient


def run_training(
    ctx: TrainingContext,
    *,
    trainer: str | None = None,
    progress: Reporter | None = None,
    raise_on_gate: bool = True,
    trigger: Trigger = "train",
    reason: str | None = None,
    monitoring_run_id: str | None = None,
    retrain_as_of: datetime | None = None,
    hold_baseline: bool = False,
    reasons: Sequence[str] = (),
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
    ``reasons``: the retrain policy's reason kinds, kept in model_events (the follow-up rule
    reads them).
    """
    settings, spec = ctx.settings, ctx.spec
    trainer = trainer or settings.training.trainer
    if trainer not in TRAINERS:
        raise ConfigError(f"unknown trainer {trainer!r}: use one of {', '.join(TRAINERS)}")
    backend = open_backend(ctx)
    backend.check_trainer(trainer)
    progress = progress or Reporter()
    with progress.step("Connecting to MLflow"):
        client = ctx.mlflow
        experiment = experiment_id(client, settings, settings.mlflow.training_experiment)
        run = client.create_run(
            experiment,
            run_name=run_name(spec, trainer),
            tags=run_tags(spec, trainer, trigger, reason, monitoring_run_id),
        )
    run_id = run.info.run_id
    try:
        trained = fit_and_evaluate(ctx, trainer, progress, retrain_as_of, backend=backend)
        scored = _judge(settings, trainer, trained)
        if hold_baseline:
            scored.baseline_floor = _champion_baseline(settings, spec, client)
        scored.reasons = tuple(reasons)
        result = record(
            settings,
            spec,
            trainer,
            client,
            ctx.lake,
            run_id,
            scored,
            progress,
            trigger=trigger,
            reason=reason,
            monitoring_run_id=monitoring_run_id,
            event_time=retrain_as_of,
            actor=ctx.actor,
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


# ---- modelling: the same steps over either backend's slices ---------------------------------


def fit_and_evaluate(
    ctx: TrainingContext,
    trainer: str,
    progress: Reporter,
    retrain_as_of: datetime | None = None,
    *,
    backend: TrainingBackend | None = None,
) -> Trained:
    """Everything before the gate, nothing recorded: split, build features, fit, calibrate and
    choose the operating point, evaluate, score the champion on the same holdout, describe the
    reference."""
    settings, spec, cfg = ctx.settings, ctx.spec, ctx.settings.training
    backend = backend or open_backend(ctx)
    backend.check_trainer(trainer)
    split = backend.split(retrain_as_of, progress)
    retrain = split.retrain
    with progress.step("Building features"):
        matrices = split.features()
    with progress.step(f"Training {trainer}"):
        model = matrices.fit(trainer)
    with progress.step("Calibrating and choosing the operating point"):
        val_scores, val_labels = matrices.predict(model, "validation")
        val_context = matrices.context("validation")
        # The calibrator is fitted on the validation scores (held out from the fit), never on
        # the holdout, which stays for the evaluation below.
        operating = choose_operating_point(val_labels, val_scores, cfg, spec, val_context)
        model = model.with_decision(
            operating.threshold, operating.calibrator.to_dict(), operating.point.to_dict()
        )
    with progress.step("Evaluating"):
        hold_scores, hold_labels = matrices.predict(model, "holdout")
        hold_context = matrices.context("holdout")
        figures: dict[str, Any] = {
            "cost_fn": cfg.cost_fn,
            "cost_fp": cfg.cost_fp,
            "k": cfg.alerts_per_day,
        }
        holdout = evaluate(
            hold_labels,
            hold_scores,
            operating.threshold,
            flagged=operating.flag(hold_scores, hold_context),
            context=hold_context,
            **figures,
        )
        validation = evaluate(
            val_labels,
            val_scores,
            operating.threshold,
            flagged=operating.flag(val_scores, val_context),
            context=val_context,
            **figures,
        )
    with progress.step("Comparing with the champion"):
        before, champion_metrics = _champion_on(
            settings, spec, ctx.mlflow, matrices, hold_labels, hold_context
        )
    with progress.step("Profiling the reference"):
        # A retrain's reference is the recent traffic it was judged on: once a retrain has
        # seen a drift, the drifted world is the new normal (a mix with the old lake rows would
        # keep every later run alarmed). A first training's reference is its training rows.
        reference = matrices.reference("holdout" if retrain is not None else "train")
    return Trained(
        model,
        split.stats,
        reference,
        hold_labels,
        hold_scores,
        val_scores,
        operating.choice,
        holdout,
        validation,
        before,
        champion_metrics,
        retrain,
    )


def _champion_on(
    settings: Settings,
    spec: FeatureSpec,
    client: MlflowClient,
    matrices: Matrices,
    labels: np.ndarray,
    context: SliceContext,
) -> tuple[str | None, Evaluation | None]:
    """The champion's version and its metrics on the challenger's holdout, at its own operating
    point (its threshold when it predates operating points)."""
    name = settings.registered_model_name(spec.name)
    version = registry.champion_version(client, settings, name)
    if version is None:
        return None, None
    champion = registry.load_model(settings, spec, version, client=client)
    scores = matrices.champion_scores(champion.model, champion.manifest.feature_names)
    manifest = champion.manifest
    flagged = None
    if manifest.decision is not None:
        point = OperatingPoint.from_dict(manifest.decision)
        calibrator = Calibrator.from_dict(manifest.calibration) if manifest.calibration else None
        flagged = point.flag(scores, calibrator, context.amounts if point.uses_amount else None)
    metrics = evaluate(
        labels,
        scores,
        manifest.threshold,
        cost_fn=settings.training.cost_fn,
        cost_fp=settings.training.cost_fp,
        flagged=flagged,
        context=context,
        k=settings.training.alerts_per_day,
    )
    return version, metrics


# ---- judging -----------------------------------------------------------------------------------


def _judge(settings: Settings, trainer: str, trained: Trained) -> Scored:
    """The gate's verdict on what was trained (the same for every engine)."""
    champion = trained.champion_holdout
    gate = decide(
        trained.holdout.to_dict(),
        trainer,
        settings.gate,
        champion_metrics=None if champion is None else champion.to_dict(),
        champion_version=trained.champion_before,
        # a retrain replaces a working model only when it does better on recent traffic
        margin=-settings.retrain.min_improvement if trained.retrain is not None else None,
        # ...and replaces a collapsing one even under the floors (a person is alerted)
        below_floor=trained.retrain is not None,
    )
    return Scored(**{f.name: getattr(trained, f.name) for f in fields(Trained)}, gate=gate)


def _champion_baseline(settings: Settings, spec: FeatureSpec, client: MlflowClient) -> float | None:
    try:
        profile, _ = registry.load_reference_profile(settings, spec, client=client)
    except Exception:  # no champion (or no profile): nothing to hold
        return None
    value = (profile.baseline_metrics or {}).get("roc_auc")
    return None if value is None else float(value)
