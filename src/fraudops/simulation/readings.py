"""Where the simulation reads the results of the services it drives: the initial training, a
monitoring run, the retrain policy's check and the retrain it ran.

Every field the simulation takes from a training, monitoring or retrain result is read here and
nowhere else, so a change of those results' shape is adapted in this one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.retrain_policy import alarmed_features
from fraudops.monitoring.retraining import RetrainCheck
from fraudops.simulation.results import MonitoringRun, Retrain
from fraudops.training.first_champion import PreparedChampion

KEY_METRICS = ("roc_auc", "pr_auc", "recall", "precision", "f1", "threshold")
RELOADING_DECISIONS = (
    "promoted",
    "promoted_below_floor",
    "shadowed",
)  # a new champion, or a new shadow, to load


def initial_champion(prepared: PreparedChampion) -> tuple[str, dict[str, Any]]:
    """The first champion's version and the initial training's summary (for the JSON); raises
    when the gate refused the first model (there is nothing to serve)."""
    if prepared.champion is None:
        raise FraudopsError(
            f"the initial model did not pass the gate ({prepared.training.reason}): "
            "nothing to serve"
        )
    return prepared.champion, prepared.training.to_dict()


def monitoring_run(
    settings: Settings, run: MonitoringResult, check: RetrainCheck, labels_delivered: int
) -> MonitoringRun:
    perf = run.performance.metrics or {}
    shadow = run.performance.shadow
    return MonitoringRun(
        run_id=run.run_id,
        as_of=run.as_of.isoformat(),
        champion=run.model_version,
        labels_delivered=labels_delivered,
        predictions=run.data_window.predictions,
        data_drift_detected=run.data_drift_detected,
        model_drift_detected=run.model_drift_detected,
        alarmed_features=len(alarmed_features(settings, run.drift)),
        mature_recall=perf.get("recall"),
        mature_roc_auc=perf.get("roc_auc"),
        alert=run.alert.status if run.alert is not None else None,
        retrain_reasons=[r.text for r in check.reasons],
        retrain_blocked=check.blocked,
        shadow=shadow.to_dict() if shadow is not None else None,
        shadow_verdict=check.shadow.to_dict() if check.shadow is not None else None,
        concept_drift_suspected=run.concept_drift_suspected,
        signals=fast_signals(run),
    )


def fast_signals(run: MonitoringResult) -> dict[str, Any] | None:
    """The run's fast signals, its per-day ones for the data window's days only."""
    if run.signals is None:
        return None
    out = run.signals.summary()
    first = f"{run.data_window.start:%Y-%m-%d}"
    out["days"] = [d for d in out["days"] if d["day"] >= first]
    return out


def shadow_promotion(
    run: MonitoringResult, check: RetrainCheck, now: datetime, retrains: list[Retrain]
) -> Retrain | None:
    """The challenger that won its shadow run on live traffic: it takes over like a promoted
    retrain, with the fields of the retrain that registered it (None: no promotion)."""
    verdict = check.shadow
    if verdict is None or verdict.status != "promoted":
        return None
    evidence = verdict.evidence() or {}
    version = verdict.challenger_version
    shadowed = [r for r in retrains if r.version == version]
    earlier = shadowed[-1] if shadowed else None
    return Retrain(
        as_of=now.isoformat(),
        monitoring_run_id=run.run_id,
        decision="promoted",
        reason=verdict.why,
        version=version,
        champion_before=verdict.champion_version,
        champion_after=version,
        challenger=key_metrics(evidence["challenger"]),
        champion=key_metrics(evidence["champion"]),
        reasons=earlier.reasons if earlier else None,
        mlflow_run_id=earlier.mlflow_run_id if earlier else None,
        retrain_data=earlier.retrain_data if earlier else None,
        reports=earlier.reports if earlier else None,
        via="shadow",
    )


def automatic_retrain(run: MonitoringResult, check: RetrainCheck, now: datetime) -> Retrain | None:
    """The retrain the policy ran after ``run`` (None: none ran)."""
    training = check.training
    if training is None:
        return None
    return Retrain(
        as_of=now.isoformat(),
        monitoring_run_id=run.run_id,
        reasons=[r.text for r in check.reasons],
        decision=training.decision,
        reason=training.reason,
        version=training.version,
        champion_before=training.champion_before,
        champion_after=training.champion_after,
        mlflow_run_id=training.run_id,
        challenger=key_metrics(training.metrics.to_dict()),
        champion=key_metrics(training.champion_metrics),
        retrain_data=None if training.retrain is None else training.retrain.to_dict(),
        reports=check.report,
    )


def key_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in KEY_METRICS if k in metrics}
