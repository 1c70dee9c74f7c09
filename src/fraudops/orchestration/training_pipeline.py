"""The training pipeline: lake → validate → time split → features → train → threshold → evaluate
→ champion comparison → gate → MLflow run → registry → model_events.

One MLflow run per execution, FAILED if a step raises. The gate's verdict is decided before any
artifact is written, and recorded everywhere (run tags, version tags, model_events) before the
pipeline reports it: with ``raise_on_gate`` as a GateFailed (exit 3) or NotPromoted (exit 4),
otherwise in the returned ``TrainingResult``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops import registry
from fraudops.config import Settings
from fraudops.errors import ConfigError, GateFailed, NotPromoted, ValidationError
from fraudops.models.mlflow_model import save_model
from fraudops.models.portable import ScoringModel
from fraudops.progress import Reporter
from fraudops.registry.client import experiment_id, mlflow_client
from fraudops.spec import FeatureSpec
from fraudops.training.charts import render_charts
from fraudops.training.evaluation import Evaluation, evaluate
from fraudops.training.events import EventType, ModelEvent, Trigger, append_events
from fraudops.training.features import feature_matrix, label_vector, validate_training_frame
from fraudops.training.gate import GateResult, decide
from fraudops.training.profile import build_profile, save_profile
from fraudops.training.split import TimeSplit, time_split
from fraudops.training.threshold import ThresholdChoice, choose_threshold
from fraudops.training.trainers import TRAINERS, train_model, trainer_params

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXIT_CODES = {
    "promoted": 0,
    "shadowed": 0,
    "rejected": GateFailed.exit_code,
    "not_promoted": NotPromoted.exit_code,
}
EVENT_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold", "expected_cost")


@dataclass
class TrainingResult:
    spec: str
    trainer: str
    model_name: str
    run_id: str
    decision: str
    reason: str
    exit_code: int
    version: str | None
    threshold: float
    threshold_policy: str
    metrics: dict[str, Any]
    validation_metrics: dict[str, Any]
    gate: dict[str, Any]
    champion_before: str | None
    champion_after: str | None
    split: dict[str, Any]
    retrain: dict[str, Any] | None = None  # what a retrain trained and judged on
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Scored:
    """Everything the modelling steps produce, before anything is recorded."""

    model: ScoringModel
    split: TimeSplit
    X_reference: np.ndarray  # the rows the drift reference profile describes
    holdout_labels: np.ndarray
    holdout_scores: np.ndarray
    validation_scores: np.ndarray
    choice: ThresholdChoice
    holdout: Evaluation
    validation: Evaluation
    gate: GateResult
    champion_before: str | None
    retrain: dict[str, Any] | None = None
    champion_holdout: dict[str, Any] | None = None  # the champion on the same holdout
    baseline_floor: float | None = None  # the healthy ROC-AUC a degraded champion had


def run_training(
    settings: Settings,
    *,
    spec_name: str | None = None,
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
    spec = settings.feature_spec(spec_name)
    trainer = trainer or settings.training.trainer
    if trainer not in TRAINERS:
        raise ConfigError(f"unknown trainer {trainer!r}: use one of {', '.join(TRAINERS)}")
    progress = progress or Reporter()
    with progress.step("Connecting to MLflow"):
        client = mlflow_client(settings)
        experiment = experiment_id(client, settings, settings.mlflow.training_experiment)
        run = client.create_run(
            experiment,
            run_name=_run_name(spec, trainer),
            tags=_run_tags(spec, trainer, trigger, reason, monitoring_run_id),
        )
    run_id = run.info.run_id
    try:
        scored = _train_and_judge(settings, spec, trainer, client, progress, retrain_as_of)
        if hold_baseline:
            scored.baseline_floor = _champion_baseline(settings, spec, client)
        result = _record(
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
    trainer: str,
    client: MlflowClient,
    progress: Reporter,
    retrain_as_of: datetime | None = None,
) -> _Scored:
    cfg = settings.training
    weight: np.ndarray | None = None
    retrain: dict[str, Any] | None = None
    if retrain_as_of is not None:
        from fraudops.lake import Lake
        from fraudops.training.retrain_data import build_retrain_data

        with (
            progress.step("Loading lake rows and labelled predictions"),
            Lake.open(settings, spec.name) as lake,
        ):
            data = build_retrain_data(settings, spec, lake, as_of=retrain_as_of)
        split, weight, retrain = data.split, data.train_weight, data.summary
    else:
        frame = _load(settings, spec, progress)
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
            champion_metrics=champion_metrics,
            champion_version=before,
            # a retrain replaces a working model only when it does better on recent traffic
            margin=-settings.retrain.min_improvement if retrain is not None else None,
        )
    return _Scored(
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


def _load(settings: Settings, spec: FeatureSpec, progress: Reporter) -> pd.DataFrame:
    from fraudops.lake import Lake

    with progress.step("Loading transactions"), Lake.open(settings, spec.name) as lake:
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
) -> tuple[str | None, dict[str, Any] | None]:
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
    return version, metrics.to_dict()


# ---- recording -----------------------------------------------------------------------------------


def _record(
    settings: Settings,
    spec: FeatureSpec,
    trainer: str,
    client: MlflowClient,
    run_id: str,
    s: _Scored,
    progress: Reporter,
    *,
    trigger: Trigger,
    reason: str | None,
    monitoring_run_id: str | None,
    event_time: datetime | None = None,
) -> TrainingResult:
    with (
        progress.step("Logging to MLflow"),
        tempfile.TemporaryDirectory(prefix="fraudops-run-") as tmp,
    ):
        staging = Path(tmp)
        _write_artifacts(settings, spec, trainer, s, staging)
        client.log_artifacts(run_id, str(staging))
        _log_run_data(client, run_id, settings, spec, trainer, s)

    name = settings.registered_model_name(spec.name)
    why = f"{reason} — {s.gate.reason}" if reason else s.gate.reason
    with progress.step("Registering"):
        version, after, decision = _register(
            settings,
            spec,
            trainer,
            client,
            run_id,
            s,
            why=why,
            trigger=trigger,
            monitoring_run_id=monitoring_run_id,
            event_time=event_time,
        )
        client.set_tag(run_id, "version", version or "")
    return TrainingResult(
        spec=spec.name,
        trainer=trainer,
        model_name=name,
        run_id=run_id,
        decision=decision,
        reason=why,
        exit_code=EXIT_CODES[decision],
        version=version,
        threshold=s.choice.threshold,
        threshold_policy=s.choice.policy,
        metrics=s.holdout.to_dict(),
        validation_metrics=s.validation.to_dict(),
        gate=s.gate.to_dict(),
        champion_before=s.champion_before,
        champion_after=after,
        split=s.split.summary(),
        retrain=s.retrain,
    )


def _register(
    settings: Settings,
    spec: FeatureSpec,
    trainer: str,
    client: MlflowClient,
    run_id: str,
    s: _Scored,
    *,
    why: str,
    trigger: Trigger,
    monitoring_run_id: str | None,
    event_time: datetime | None = None,
) -> tuple[str | None, str | None, str]:
    """Register (unless rejected), move the alias (if promoted), write the events.

    Returns the new version (None when rejected), the champion afterwards and the decision
    (the gate's, or "shadowed" when a retrain's winner goes to shadow scoring first).
    """
    name = settings.registered_model_name(spec.name)
    before = s.champion_before

    def event(kind: EventType, version: str | None, after: str | None) -> ModelEvent:
        event = ModelEvent(
            spec=spec.name,
            model_name=name,
            event_type=kind,
            trigger=trigger,
            reason=why,
            version=version,
            run_id=run_id,
            champion_before=before,
            champion_after=after,
            metrics=_event_metrics(s),
            monitoring_run_id=monitoring_run_id,
        )
        return event if event_time is None else dataclasses.replace(event, event_time=event_time)

    if s.gate.decision == "rejected":
        append_events(settings, spec.name, [event("rejected", None, before)])
        return None, before, "rejected"
    mv = registry.register_version(
        client,
        name,
        run_id=run_id,
        spec_name=spec.name,
        tags=_version_tags(trainer, s),
        description=why,
    )
    version = str(mv.version)
    registered = event("registered", version, before)
    try:
        shadow_alias = settings.serving.shadow_alias
        if (
            s.gate.decision == "promoted"
            and s.retrain is not None
            and settings.retrain.promote_via == "shadow"
        ):
            if not shadow_alias:
                raise ConfigError("retrain.promote_via: shadow needs serving.shadow_alias")
            client.set_registered_model_alias(name, shadow_alias, version)
            client.set_model_version_tag(name, version, "decision", "shadowed")
            client.set_model_version_tag(name, version, "promoted", "false")
            append_events(settings, spec.name, [registered, event("shadowed", version, before)])
            return version, before, "shadowed"
        if s.gate.decision == "promoted":
            registry.move_champion(
                settings,
                client,
                spec.name,
                version,
                event=event("promoted", version, version),
                extra_events=(registered,),
            )
            return version, version, "promoted"
        append_events(settings, spec.name, [registered, event("not_promoted", version, before)])
        return version, before, "not_promoted"
    except BaseException:
        # No version without its model_events story: take the registration back.
        client.delete_model_version(name, version)
        raise


def _write_artifacts(
    settings: Settings, spec: FeatureSpec, trainer: str, s: _Scored, staging: Path
) -> None:
    save_model(s.model, staging / registry.MODEL_ARTIFACT_PATH, spec)  # an MLflow Model
    scores = np.concatenate([s.validation_scores, s.holdout_scores])
    baseline = _numbers(s.holdout)
    if s.baseline_floor is not None and s.baseline_floor > baseline["roc_auc"]:
        baseline["roc_auc_own"] = baseline["roc_auc"]
        baseline["roc_auc"] = s.baseline_floor
    profile = build_profile(
        s.X_reference,
        spec,
        scores=scores,
        baseline_metrics=baseline,
        threshold=s.choice.threshold,
        bins=settings.monitoring.psi_bins,
    )
    save_profile(profile, staging / registry.REFERENCE_ARTIFACT_PATH)
    class_counts = {}
    for name, part in s.split.slices().items():
        positives = int(part[spec.label_column].sum())
        class_counts[name] = (len(part) - positives, positives)
    render_charts(
        staging / "charts",
        labels=s.holdout_labels,
        scores=s.holdout_scores,
        evaluation=s.holdout,
        importance=s.model.feature_importance(),
        class_counts=class_counts,
        title=f"{spec.name} · {trainer}",
        seed=settings.training.seed,
    )
    (staging / "spec.json").write_text(spec.model_dump_json(indent=2))
    (staging / "metrics.json").write_text(
        json.dumps(
            {
                "holdout": s.holdout.to_dict(),
                "validation": s.validation.to_dict(),
                "threshold": s.choice.to_dict(),
                "gate": s.gate.to_dict(),
                "split": s.split.summary(),
            },
            indent=2,
            default=str,
        )
    )


def _log_run_data(
    client: MlflowClient,
    run_id: str,
    settings: Settings,
    spec: FeatureSpec,
    trainer: str,
    s: _Scored,
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    cfg = settings.training
    configured = trainer_params(trainer, cfg)
    # What the trainer settled on where it differs from the configuration (e.g. the derived
    # scale_pos_weight, the boosted rounds after early stopping).
    effective = {
        k: v
        for k, v in s.model.manifest.params.items()
        if k not in configured or configured[k] != v
    }
    params: dict[str, Any] = {
        "trainer": trainer,
        "spec": spec.name,
        "seed": cfg.seed,
        "validation_fraction": cfg.validation_fraction,
        "holdout_fraction": cfg.holdout_fraction,
        "threshold_policy": cfg.threshold_policy,
        "target_recall": cfg.target_recall,
        "cost_fn": cfg.cost_fn,
        "cost_fp": cfg.cost_fp,
        "threshold": s.choice.threshold,
        **s.split.summary(),
        **{f"retrain.{k}": v for k, v in (s.retrain or {}).items()},
        **{f"{trainer}.{k}": v for k, v in configured.items()},
        **{f"model.{k}": v for k, v in effective.items()},
    }
    now = int(datetime.now(UTC).timestamp() * 1000)
    values = {**_numbers(s.holdout), **_numbers(s.validation, "val_"), **s.gate.mlflow_metrics()}
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        tags=[
            RunTag("decision", s.gate.decision),
            RunTag("gate_reason", s.gate.reason[:5000]),
            RunTag("champion_before", s.champion_before or ""),
        ],
    )


def _version_tags(trainer: str, s: _Scored) -> dict[str, str]:
    tags = {
        "trainer": trainer,
        "spec": s.model.manifest.spec,
        "decision": s.gate.decision,
        "gate_reason": s.gate.reason[:5000],
        "threshold_policy": s.choice.policy,
    }
    tags.update(
        {k: repr(float(v)) for k, v in _numbers(s.holdout).items() if k in registry.KEY_METRICS}
    )
    tags["promoted"] = str(s.gate.decision == "promoted").lower()
    return tags


def _numbers(evaluation: Evaluation, prefix: str = "") -> dict[str, float]:
    return {k: float(v) for k, v in evaluation.to_dict(prefix).items()}


def _event_metrics(s: _Scored) -> dict[str, Any]:
    metrics: dict[str, Any] = {k: s.holdout.to_dict()[k] for k in EVENT_METRICS}
    if s.champion_holdout:
        metrics["champion"] = {
            k: s.champion_holdout[k] for k in EVENT_METRICS if k in s.champion_holdout
        }
    if s.retrain:
        metrics["retrain"] = s.retrain
    return metrics


def _run_name(spec: FeatureSpec, trainer: str) -> str:
    return f"train-{spec.name}-{trainer}-{datetime.now(UTC):%Y%m%dT%H%M%S}"


def _run_tags(
    spec: FeatureSpec,
    trainer: str,
    trigger: str,
    reason: str | None,
    monitoring_run_id: str | None = None,
) -> dict[str, str]:
    tags = {"spec": spec.name, "trainer": trainer, "trigger": trigger, "pipeline": "training"}
    if reason:
        tags["trigger_reason"] = reason[:5000]
    if monitoring_run_id:
        tags["monitoring_run_id"] = monitoring_run_id
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _git_commit() -> str | None:
    """The commit of the fraudops checkout, when it is one (best effort, read-only)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
