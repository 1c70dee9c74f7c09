"""The training pipeline: lake → validate → time split → features → train → threshold → evaluate
→ champion comparison → gate → MLflow run → registry → model_events.

One MLflow run per execution, FAILED if a step raises. The gate's verdict is decided before any
artifact is written, and recorded everywhere (run tags, version tags, model_events) before the
pipeline reports it: with ``raise_on_gate`` as a GateFailed (exit 3) or NotPromoted (exit 4),
otherwise in the returned ``TrainingResult``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudops import registry
from fraudops.config import Settings
from fraudops.errors import ConfigError, GateFailed, NotPromoted, ValidationError
from fraudops.lake.catalog import Lake
from fraudops.orchestration.training_record import Scored, record, run_name, run_tags
from fraudops.progress import Reporter
from fraudops.registry.client import experiment_id
from fraudops.spec import FeatureSpec
from fraudops.training.evaluation import Evaluation, evaluate
from fraudops.training.events import Trigger
from fraudops.training.features import feature_matrix, label_vector, validate_training_frame
from fraudops.training.gate import decide
from fraudops.training.result import TrainingResult
from fraudops.training.retrain_data import RetrainSummary, build_retrain_data
from fraudops.training.split import time_split
from fraudops.training.threshold import choose_threshold
from fraudops.training.trainers import TRAINERS, train_model

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
        scored = _train_and_judge(
            settings, spec, runtime.lake(), trainer, client, progress, retrain_as_of
        )
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


# ---- modelling ---------------------------------------------------------------------------------


def _train_and_judge(
    settings: Settings,
    spec: FeatureSpec,
    lake: Lake,
    trainer: str,
    client: MlflowClient,
    progress: Reporter,
    retrain_as_of: datetime | None = None,
) -> Scored:
    cfg = settings.training
    weight: np.ndarray | None = None
    retrain: RetrainSummary | None = None
    if retrain_as_of is not None:
        with progress.step("Loading lake rows and labelled predictions"):
            data = build_retrain_data(settings, spec, lake, as_of=retrain_as_of)
        split, weight, retrain = data.split, data.train_weight, data.summary
    else:
        frame = _load(spec, lake, progress)
        with progress.step("Validating"):
            validate_training_frame(frame, spec)
        with progress.step("Splitting by time"):
            split = time_split(
                frame,
                spec,
                validation_fraction=cfg.validation_fraction,
                holdout_fraction=cfg.holdout_fraction,
            )
            del frame
    with progress.step("Building features"):
        slices = split.slices()
        X = {name: feature_matrix(part, spec.feature_names) for name, part in slices.items()}
        y = {name: label_vector(part, spec) for name, part in slices.items()}
    with progress.step(f"Training {trainer}"):
        model = train_model(
            trainer,
            cfg,
            spec,
            X["train"],
            y["train"],
            X["validation"],
            y["validation"],
            sample_weight=weight,
        )
    with progress.step("Evaluating"):
        val_scores = model.predict_proba(X["validation"])
        choice = choose_threshold(
            y["validation"],
            val_scores,
            cfg.threshold_policy,
            target_recall=cfg.target_recall,
            cost_fn=cfg.cost_fn,
            cost_fp=cfg.cost_fp,
        )
        model = model.with_threshold(choice.threshold)
        hold_scores = model.predict_proba(X["holdout"])
        costs = {"cost_fn": cfg.cost_fn, "cost_fp": cfg.cost_fp}
        holdout = evaluate(y["holdout"], hold_scores, choice.threshold, **costs)
        validation = evaluate(y["validation"], val_scores, choice.threshold, **costs)
    with progress.step("Comparing with the champion"):
        before, champion_metrics = _champion_on(settings, spec, client, split.holdout, y["holdout"])
        gate = decide(
            holdout.to_dict(),
            trainer,
            settings.gate,
            champion_metrics=None if champion_metrics is None else champion_metrics.to_dict(),
            champion_version=before,
            # a retrain replaces a working model only when it does better on recent traffic
            margin=-settings.retrain.min_improvement if retrain is not None else None,
        )
    return Scored(
        model,
        split,
        # A retrain's reference is the recent traffic it was judged on: once a retrain has
        # seen a drift, the drifted world is the new normal (a mix with the old lake rows would
        # keep every later run alarmed). A first training's reference is its training rows.
        X["holdout"] if retrain is not None else X["train"],
        y["holdout"],
        hold_scores,
        val_scores,
        choice,
        holdout,
        validation,
        gate,
        before,
        retrain,
        champion_metrics,
    )


def _champion_baseline(settings: Settings, spec: FeatureSpec, client: MlflowClient) -> float | None:
    try:
        profile, _ = registry.load_reference_profile(settings, spec, client=client)
    except Exception:  # no champion (or no profile): nothing to hold
        return None
    value = (profile.baseline_metrics or {}).get("roc_auc")
    return None if value is None else float(value)


def _load(spec: FeatureSpec, lake: Lake, progress: Reporter) -> pd.DataFrame:
    with progress.step("Loading transactions"):
        columns = list(
            dict.fromkeys([c for c in spec.required_columns if c != spec.customer_column])
        )
        id_column = spec.id_column or "transaction_id"
        if id_column not in columns:
            columns.append(id_column)
        frame = lake.read_frame("transactions", columns=columns)
    if frame.empty:
        raise ValidationError(
            f"lake table {spec.name}.transactions is empty: load data first "
            f"(`fraudops lake load FILE --spec {spec.name}`)"
        )
    return frame


def _champion_on(
    settings: Settings,
    spec: FeatureSpec,
    client: MlflowClient,
    holdout: pd.DataFrame,
    labels: np.ndarray,
) -> tuple[str | None, Evaluation | None]:
    """The champion's version and its metrics on the challenger's holdout, at its own threshold."""
    name = settings.registered_model_name(spec.name)
    version = registry.champion_version(client, settings, name)
    if version is None:
        return None, None
    champion = registry.load_model(settings, spec, version, client=client)
    X = feature_matrix(holdout, champion.manifest.feature_names)
    scores = champion.model.predict_proba(X)
    metrics = evaluate(
        labels,
        scores,
        champion.manifest.threshold,
        cost_fn=settings.training.cost_fn,
        cost_fp=settings.training.cost_fp,
    )
    return version, metrics
