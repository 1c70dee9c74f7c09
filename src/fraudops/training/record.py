"""Recording a training run: artifacts and figures to MLflow, the registry version and alias,
the model_events; what the modelling steps produced travels here as one ``Scored``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fraudops import registry
from fraudops.config import Settings
from fraudops.errors import ConfigError, GateFailed, NotPromoted
from fraudops.models.mlflow_model import save_model
from fraudops.models.profile import save_profile
from fraudops.progress import Reporter
from fraudops.registry.events import (
    SYSTEM_ACTOR,
    EventType,
    ModelEvent,
    Trigger,
    write_events,
)
from fraudops.spec import FeatureSpec
from fraudops.training.charts import render_charts
from fraudops.training.evaluation import Evaluation
from fraudops.training.gate import GateResult, promotes
from fraudops.training.outcome import Trained
from fraudops.training.result import Outcome, TrainingResult
from fraudops.training.trainers import trainer_params

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.lake import Lake

EXIT_CODES: dict[Outcome, int] = {
    "promoted": 0,
    "promoted_below_floor": 0,  # the champion moved; the critical alert asks for a review
    "shadowed": 0,
    "rejected": GateFailed.exit_code,
    "not_promoted": NotPromoted.exit_code,
}


@dataclass
class Scored(Trained):
    """What was trained, with the gate's verdict on it, before anything is recorded."""

    gate: GateResult
    baseline_floor: float | None = None  # the healthy ROC-AUC a degraded champion had
    reasons: tuple[str, ...] = ()  # the retrain policy's reason kinds (automatic retrains)


def record(
    settings: Settings,
    spec: FeatureSpec,
    trainer: str,
    client: MlflowClient,
    lake: Lake,
    run_id: str,
    s: Scored,
    progress: Reporter,
    *,
    trigger: Trigger,
    reason: str | None,
    monitoring_run_id: str | None,
    event_time: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
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
            lake,
            run_id,
            s,
            why=why,
            trigger=trigger,
            monitoring_run_id=monitoring_run_id,
            event_time=event_time,
            actor=actor,
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
        metrics=s.holdout,
        validation_metrics=s.validation,
        gate=s.gate,
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
    lake: Lake,
    run_id: str,
    s: Scored,
    *,
    why: str,
    trigger: Trigger,
    monitoring_run_id: str | None,
    event_time: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
) -> tuple[str | None, str | None, Outcome]:
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
            actor=actor,
        )
        return event if event_time is None else dataclasses.replace(event, event_time=event_time)

    if s.gate.decision == "rejected":
        write_events(lake, [event("rejected", None, before)])
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
            promotes(s.gate.decision)
            and s.retrain is not None
            and settings.retrain.promote_via == "shadow"
        ):
            if not shadow_alias:
                raise ConfigError("retrain.promote_via: shadow needs serving.shadow_alias")
            client.set_registered_model_alias(name, shadow_alias, version)
            client.set_model_version_tag(name, version, "decision", "shadowed")
            client.set_model_version_tag(name, version, "promoted", "false")
            write_events(lake, [registered, event("shadowed", version, before)])
            return version, before, "shadowed"
        if promotes(s.gate.decision):
            kind: Literal["promoted", "promoted_below_floor"] = (
                "promoted_below_floor" if s.gate.decision == "promoted_below_floor" else "promoted"
            )
            registry.move_champion(
                settings,
                client,
                spec.name,
                version,
                event=event(kind, version, version),
                extra_events=(registered,),
                lake=lake,
            )
            return version, version, kind
        write_events(lake, [registered, event("not_promoted", version, before)])
        return version, before, "not_promoted"
    except BaseException:
        # No version without its model_events story: take the registration back.
        client.delete_model_version(name, version)
        raise


def _write_artifacts(
    settings: Settings, spec: FeatureSpec, trainer: str, s: Scored, staging: Path
) -> None:
    save_model(s.model, staging / registry.MODEL_ARTIFACT_PATH, spec)  # an MLflow Model
    scores = np.concatenate([s.validation_scores, s.holdout_scores])
    baseline = _numbers(s.holdout)
    if s.baseline_floor is not None and s.baseline_floor > baseline["roc_auc"]:
        baseline["roc_auc_own"] = baseline["roc_auc"]
        baseline["roc_auc"] = s.baseline_floor
    profile = s.reference.profile(
        spec,
        scores=scores,
        baseline_metrics=baseline,
        threshold=s.choice.threshold,
        bins=settings.monitoring.psi_bins,
    )
    save_profile(profile, staging / registry.REFERENCE_ARTIFACT_PATH)
    class_counts = s.split.class_counts()
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
    s: Scored,
) -> None:
    from mlflow.entities import Metric, Param, RunTag  # MLflow's import costs ~1.7 s

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
        "decision": cfg.decision,
        "alerts_per_day": cfg.alerts_per_day,
        "threshold_policy": cfg.threshold_policy,
        "target_recall": cfg.target_recall,
        "cost_fn": cfg.cost_fn,
        "cost_fp": cfg.cost_fp,
        "threshold": s.choice.threshold,
        **s.split.summary(),
        **{f"retrain.{k}": v for k, v in (s.retrain.to_dict() if s.retrain else {}).items()},
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


def _version_tags(trainer: str, s: Scored) -> dict[str, str]:
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
    tags["promoted"] = str(promotes(s.gate.decision)).lower()
    return tags


def _numbers(evaluation: Evaluation, prefix: str = "") -> dict[str, float]:
    """The figures that have a value (money and per-day figures are None without their
    columns)."""
    return {k: float(v) for k, v in evaluation.to_dict(prefix).items() if v is not None}


def _event_metrics(s: Scored) -> dict[str, Any]:
    """``model_events.metrics``: the holdout's ``Metrics.to_dict()`` (read back with
    ``Metrics.from_dict``), the champion's on the same holdout, what a retrain trained on."""
    metrics: dict[str, Any] = s.holdout.to_dict()
    if s.champion_holdout:
        metrics["champion"] = s.champion_holdout.to_dict()
    if s.retrain:
        metrics["retrain"] = s.retrain.to_dict()
    if s.reasons:
        metrics["reasons"] = list(s.reasons)
    return metrics


def run_name(spec: FeatureSpec, trainer: str) -> str:
    return f"train-{spec.name}-{trainer}-{datetime.now(UTC):%Y%m%dT%H%M%S}"


def run_tags(
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
