"""The retrain policy and the retraining pipeline that closes the loop.

After a monitoring run, ``retrain_after_monitoring`` asks the policy (``retrain.*``) whether the
run's findings call for a retrain — drift on at least ``on_drifted_features`` features (alarm
level: MODERATE/CRITICAL or PSI at its threshold), degradation of the mature cohorts, mature
recall under ``min_recall``, or a champion older than ``every_days`` — and whether the cooldown
since the last automatic retrain allows one. If so it runs the training pipeline as a retrain
(training/retrain_data.py: lake rows plus recent labelled predictions, judged against the
champion on the latest mature labelled traffic) and records the monitoring run that asked for
it. A serving process picks a promoted challenger up by hot reload.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from fraudops.config import Settings
from fraudops.progress import Reporter
from fraudops.training.events import Trigger

AUTOMATIC: Trigger = "retrain"  # the model_events trigger of a retrain monitoring asked for
MANUAL: Trigger = "manual"


@dataclass
class RetrainCheck:
    """What the policy made of one monitoring run."""

    monitoring_run_id: str | None
    as_of: str
    reasons: list[str]
    due: bool
    blocked: str | None = None  # why a due retrain did not run (cooldown, labels, shadow)
    training: dict[str, Any] | None = None  # the retrain's TrainingResult when it ran
    shadow: dict[str, Any] | None = None  # the verdict on a challenger in shadow scoring
    report: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alarmed_features(settings: Settings, drift: dict[str, Any] | None) -> list[str]:
    """Features of a drift report at alarm level: MODERATE/CRITICAL, or PSI at its threshold
    (the seed's per-feature p < 0.05 alone is not an alarm: it fires on clean windows)."""
    from fraudops.monitoring.drift import CRITICAL, MODERATE

    return [
        f["feature"]
        for f in (drift or {}).get("features", [])
        if f.get("severity") in (MODERATE, CRITICAL)
        or (f.get("psi") or 0.0) >= (f.get("psi_threshold") or settings.monitoring.psi_threshold)
    ]


def retrain_reasons(
    settings: Settings, summary: dict[str, Any], *, champion_age_days: float | None = None
) -> list[str]:
    """The policy's reasons to retrain, from a monitoring run's result dict (empty: none)."""
    cfg = settings.retrain
    reasons = []
    alarmed = alarmed_features(settings, summary.get("drift"))
    if cfg.on_drifted_features and len(alarmed) >= cfg.on_drifted_features:
        reasons.append(f"data drift on {len(alarmed)} features ({', '.join(alarmed[:6])})")
    performance = summary.get("performance") or {}
    metrics = performance.get("metrics") or {}
    if cfg.on_degradation and performance.get("degraded"):
        reasons.append(
            f"mature cohorts degraded: ROC-AUC {metrics.get('roc_auc', float('nan')):.4f}, "
            f"{performance.get('degradation_pct', 0.0):.1f}% below the baseline"
        )
    recall = metrics.get("recall")
    if cfg.min_recall is not None and recall is not None and recall < cfg.min_recall:
        reasons.append(f"mature recall {recall:.3f} below retrain.min_recall {cfg.min_recall}")
    if cfg.every_days is not None and (champion_age_days or 0.0) >= cfg.every_days:
        reasons.append(
            f"champion is {champion_age_days:.0f} days old (retrain.every_days {cfg.every_days:g})"
        )
    return reasons


def retrain_after_monitoring(
    settings: Settings,
    spec_name: str,
    result: Any,
    *,
    progress: Reporter | None = None,
    html_report: bool = True,
) -> RetrainCheck:
    """Apply the policy to a finished monitoring run and retrain when it says so."""
    from fraudops.errors import FraudopsError
    from fraudops.training.retrain_data import NotEnoughLabels

    progress = progress or Reporter()
    as_of = _utc(datetime.fromisoformat(result.as_of))
    shadow = settle_shadow(
        settings,
        spec_name,
        champion=result.model_version,
        performance=result.performance,
        monitoring_run_id=result.run_id,
        as_of=as_of,
    )
    last_retrain, champion_since = _history(settings, spec_name)
    age = (as_of - champion_since).total_seconds() / 86_400 if champion_since else None
    reasons = retrain_reasons(settings, result.to_dict(), champion_age_days=age)
    check = RetrainCheck(result.run_id, as_of.isoformat(), reasons, due=bool(reasons))
    check.shadow = shadow
    if not reasons:
        return check
    if shadow is not None and shadow["status"] == "waiting":
        check.blocked = (
            f"challenger v{shadow['challenger_version']} is in shadow scoring: {shadow['why']}"
        )
        return check
    cooldown = timedelta(days=settings.retrain.cooldown_days)
    if last_retrain is not None and as_of < last_retrain + cooldown:
        check.blocked = (
            f"cooldown: last automatic retrain {last_retrain:%Y-%m-%d %H:%M}, next allowed "
            f"{last_retrain + cooldown:%Y-%m-%d %H:%M} (retrain.cooldown_days "
            f"{settings.retrain.cooldown_days:g})"
        )
        return check
    reason = f"monitoring run {result.run_id}: " + "; ".join(reasons)
    try:
        training = retrain(
            settings,
            spec_name,
            now=as_of,
            reason=reason,
            trigger=AUTOMATIC,
            monitoring_run_id=result.run_id,
            progress=progress,
            hold_baseline=bool(result.performance.get("degraded")),
        )
    except NotEnoughLabels as exc:
        check.blocked = f"not enough labels: {exc}"
        return check
    check.training = training.to_dict()
    if html_report:
        from fraudops.orchestration.monitoring import report_for_run

        try:  # the evidence behind the retrain, for the audit trail
            check.report = report_for_run(settings, result.run_id, spec_name=spec_name)
        except FraudopsError as exc:
            check.report = {"error": str(exc)}
    return check


def retrain(
    settings: Settings,
    spec_name: str | None = None,
    *,
    now: datetime | None = None,
    reason: str | None = None,
    trigger: Trigger = MANUAL,
    monitoring_run_id: str | None = None,
    trainer: str | None = None,
    progress: Reporter | None = None,
    hold_baseline: bool = False,
) -> Any:
    """Train a challenger on lake rows plus recent labelled predictions, judge it against the
    champion on the latest mature labelled traffic, promote it if it wins. A TrainingResult."""
    from fraudops.orchestration.training_pipeline import run_training

    return run_training(
        settings,
        spec_name=spec_name,
        trainer=trainer,
        progress=progress,
        raise_on_gate=False,
        trigger=trigger,
        reason=reason or "retrain by hand",
        monitoring_run_id=monitoring_run_id,
        retrain_as_of=_utc(now or datetime.now(UTC)),
        hold_baseline=hold_baseline,
    )


def settle_shadow(
    settings: Settings,
    spec_name: str,
    *,
    champion: str,
    performance: dict[str, Any],
    monitoring_run_id: str,
    as_of: datetime,
) -> dict[str, Any] | None:
    """With ``retrain.promote_via: shadow``, decide on the challenger under the shadow alias from
    a monitoring run's comparison of both models on the same mature labelled traffic: promote
    it when it beats the champion on ``gate.champion_metrics``, drop it when it does not, wait
    while there are fewer than ``monitoring.min_positives`` frauds to judge on."""
    from fraudops import registry
    from fraudops.registry.client import mlflow_client
    from fraudops.training.events import ModelEvent, append_events

    alias = settings.serving.shadow_alias
    if settings.retrain.promote_via != "shadow" or not alias:
        return None
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec_name)
    challenger = registry.alias_version(client, name, alias)
    if challenger is None:
        return None
    comparisons = (performance.get("shadow") or {}).get("comparisons", [])
    entry = next(
        (
            c
            for c in comparisons
            if c["challenger_version"] == challenger and c["champion_version"] == champion
        ),
        None,
    )
    verdict: dict[str, Any] = {
        "challenger_version": challenger,
        "champion_version": champion,
        "status": "waiting",
    }
    needed = settings.monitoring.min_positives
    if entry is None or entry.get("challenger") is None or entry["positives"] < needed:
        have = 0 if entry is None else entry["positives"]
        verdict["why"] = f"{have} mature labelled frauds scored by both so far, {needed} needed"
        return verdict
    metrics = {
        "challenger": entry["challenger"],
        "champion": entry["champion"],
        "rows": entry["rows"],
        "positives": entry["positives"],
        "shadow": True,
    }
    won = entry["better"] == "challenger"
    event = ModelEvent(
        spec=spec_name,
        model_name=name,
        event_type="promoted" if won else "shadow_dropped",
        trigger="shadow",
        reason=f"shadow scoring on {entry['rows']:,} mature labelled predictions "
        f"({entry['positives']} frauds): {entry['reason']}",
        version=challenger,
        champion_before=champion,
        champion_after=challenger if won else champion,
        metrics=metrics,
        monitoring_run_id=monitoring_run_id,
        event_time=as_of,
    )
    if won:
        registry.move_champion(settings, client, spec_name, challenger, event=event)
    else:
        append_events(settings, spec_name, [event])
    client.delete_registered_model_alias(name, alias)
    verdict.update(status="promoted" if won else "dropped", why=event.reason, metrics=metrics)
    return verdict


def _history(settings: Settings, spec_name: str) -> tuple[datetime | None, datetime | None]:
    """The time of the last automatic retrain attempt (any outcome: a losing challenger also
    starts the cooldown, or a persistent drift would retrain at every run) and of the last
    champion move."""
    from fraudops.training.events import CHAMPION_MOVES, read_events

    events = read_events(settings, spec_name)
    if events.empty:
        return None, None
    times = pd.to_datetime(events["event_time"], utc=True)
    automatic = times[(events["trigger"] == AUTOMATIC).to_numpy()]
    moves = times[events["event_type"].isin(CHAMPION_MOVES).to_numpy()]
    return (
        automatic.max().to_pydatetime() if len(automatic) else None,
        moves.max().to_pydatetime() if len(moves) else None,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
