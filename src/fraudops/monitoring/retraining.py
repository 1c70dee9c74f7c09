"""The retraining pipeline that closes the loop.

After a monitoring run, ``retrain_after_monitoring`` settles a challenger in shadow scoring,
asks the policy (monitoring/retrain_policy.py) whether the run's findings call for a retrain,
and whether the cooldown since the last automatic retrain allows one. If so it runs the training
pipeline as a retrain (training/retrain_data.py: lake rows plus recent labelled predictions,
judged against the champion on the latest mature labelled traffic) and records the monitoring
run that asked for it. A serving process picks a promoted challenger up by hot reload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from fraudops import registry
from fraudops.alerting.channels import AlertChannel
from fraudops.alerting.dispatch import AlertOutcome
from fraudops.errors import ConfigError, FraudopsError
from fraudops.monitoring.below_floor import send_below_floor_alert
from fraudops.monitoring.context import MonitoringContext
from fraudops.monitoring.cooldown import (
    LastRetrain,
    blocked_by_cooldown,
    follow_up_reason,
    last_automatic_retrain,
)
from fraudops.monitoring.performance import PerformanceReport
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.retrain_policy import RetrainReason, retrain_reasons
from fraudops.monitoring.run import report_for_run
from fraudops.monitoring.shadow import ShadowComparison
from fraudops.progress import Reporter
from fraudops.registry.events import CHAMPION_MOVES, ModelEvent, Trigger, load_events, write_events
from fraudops.timeutil import as_utc
from fraudops.training.result import TrainingResult
from fraudops.training.retrain_data import NotEnoughLabels

AUTOMATIC: Trigger = "retrain"  # the model_events trigger of a retrain monitoring asked for
MANUAL: Trigger = "manual"

ShadowStatus = Literal["waiting", "promoted", "dropped"]


@dataclass(frozen=True)
class ShadowVerdict:
    """The decision on the challenger under the shadow alias after a monitoring run."""

    challenger_version: str
    champion_version: str
    status: ShadowStatus
    why: str
    comparison: ShadowComparison | None = None  # what it was decided on (None: waiting)

    def evidence(self) -> dict[str, Any] | None:
        """The figures both models had on the same rows: the model_events ``metrics``."""
        c = self.comparison
        if c is None:
            return None
        return {
            "challenger": c.challenger,
            "champion": c.champion,
            "rows": c.rows,
            "positives": c.positives,
            "shadow": True,
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "challenger_version": self.challenger_version,
            "champion_version": self.champion_version,
            "status": self.status,
            "why": self.why,
        }
        if self.comparison is not None:
            out["metrics"] = self.evidence()
        return out


@dataclass
class RetrainCheck:
    """What the policy made of one monitoring run."""

    monitoring_run_id: str | None
    as_of: datetime
    reasons: list[RetrainReason]
    due: bool
    blocked: str | None = None  # why a due retrain did not run (cooldown, labels, shadow)
    training: TrainingResult | None = None  # the retrain, when it ran
    shadow: ShadowVerdict | None = None  # the verdict on a challenger in shadow scoring
    report: dict[str, str] = field(default_factory=dict)  # the evidence's HTML reports
    alert: AlertOutcome | None = None  # the critical alert of a promotion below the floors
    cooldown_waived: str | None = None  # why a retrain ran within the cooldown (cooldown.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitoring_run_id": self.monitoring_run_id,
            "as_of": self.as_of.isoformat(),
            "reasons": [r.text for r in self.reasons],
            "due": self.due,
            "blocked": self.blocked,
            "training": None if self.training is None else self.training.to_dict(),
            "shadow": None if self.shadow is None else self.shadow.to_dict(),
            "report": dict(self.report),
            "alert": None if self.alert is None else self.alert.to_dict(),
            "cooldown_waived": self.cooldown_waived,
        }


def retrain_after_monitoring(
    ctx: MonitoringContext,
    result: MonitoringResult,
    *,
    progress: Reporter | None = None,
    html_report: bool = True,
    channels: Sequence[AlertChannel] | None = None,
) -> RetrainCheck:
    """Apply the policy to a finished monitoring run and retrain when it says so. A promotion
    below the gate's floors alerts through ``channels`` (default: the context's)."""
    settings = ctx.settings
    if result.spec != ctx.spec.name:
        raise ConfigError(
            f"monitoring run {result.run_id} is of spec {result.spec!r}, "
            f"the context's is {ctx.spec.name!r}"
        )
    progress = progress or Reporter()
    as_of = result.as_of
    shadow = settle_shadow(
        ctx,
        champion=result.model_version,
        performance=result.performance,
        monitoring_run_id=result.run_id,
        as_of=as_of,
    )
    last_retrain, champion_since = _history(ctx)
    age = (as_of - champion_since).total_seconds() / 86_400 if champion_since else None
    signals = result.signals
    reasons = retrain_reasons(
        settings,
        result.drift,
        result.performance,
        champion_age_days=age,
        concept_drift=signals.reason if signals and signals.concept_drift_suspected else None,
        follow_up=follow_up_reason(settings, last_retrain, as_of),
    )
    check = RetrainCheck(result.run_id, as_of, reasons, due=bool(reasons), shadow=shadow)
    if not reasons:
        return check
    if shadow is not None and shadow.status == "waiting":
        check.blocked = (
            f"challenger v{shadow.challenger_version} is in shadow scoring: {shadow.why}"
        )
        return check
    check.blocked, check.cooldown_waived = blocked_by_cooldown(
        settings, ctx.lake, last_retrain, result
    )
    if check.blocked is not None:
        return check
    reason = f"monitoring run {result.run_id}: " + "; ".join(r.text for r in reasons)
    if check.cooldown_waived:
        reason += f" ({check.cooldown_waived})"
    try:
        check.training = retrain(
            ctx,
            now=as_of,
            reason=reason,
            trigger=AUTOMATIC,
            monitoring_run_id=result.run_id,
            progress=progress,
            hold_baseline=bool(result.performance.degraded),
            reasons=[r.kind for r in reasons],
        )
    except NotEnoughLabels as exc:
        check.blocked = f"not enough labels: {exc}"
        return check
    if check.training.decision == "promoted_below_floor":
        check.alert = send_below_floor_alert(
            settings,
            ctx.lake,
            check.training,
            channels=ctx.alert_channels if channels is None else channels,
            run_id=result.run_id,
            now=as_of,
        )
    if html_report:
        try:  # the evidence behind the retrain, for the audit trail
            check.report = report_for_run(ctx, result.run_id)
        except FraudopsError as exc:
            check.report = {"error": str(exc)}
    return check


def retrain(
    ctx: MonitoringContext,
    *,
    now: datetime | None = None,
    reason: str | None = None,
    trigger: Trigger = MANUAL,
    monitoring_run_id: str | None = None,
    trainer: str | None = None,
    progress: Reporter | None = None,
    hold_baseline: bool = False,
    reasons: Sequence[str] = (),
) -> TrainingResult:
    """Train a challenger on lake rows plus recent labelled predictions, judge it against the
    champion on the latest mature labelled traffic, promote it if it wins."""
    # The training pipeline as the context binds it (its clients: the composition root's).
    return ctx.run_training(
        trainer=trainer,
        progress=progress,
        raise_on_gate=False,
        trigger=trigger,
        reason=reason or "retrain by hand",
        monitoring_run_id=monitoring_run_id,
        retrain_as_of=as_utc(now),
        hold_baseline=hold_baseline,
        reasons=reasons,
    )


def settle_shadow(
    ctx: MonitoringContext,
    *,
    champion: str,
    performance: PerformanceReport,
    monitoring_run_id: str,
    as_of: datetime,
) -> ShadowVerdict | None:
    """With ``retrain.promote_via: shadow``, decide on the challenger under the shadow alias from
    a monitoring run's comparison of both models on the same mature labelled traffic: promote
    it when it beats the champion on ``gate.champion_metrics``, drop it when it does not, wait
    while there are fewer than ``monitoring.min_positives`` frauds to judge on."""
    settings, spec_name = ctx.settings, ctx.spec.name
    alias = settings.serving.shadow_alias
    if settings.retrain.promote_via != "shadow" or not alias:
        return None
    client = ctx.mlflow
    name = ctx.model_name
    challenger = registry.alias_version(client, name, alias)
    if challenger is None:
        return None
    shadow = performance.shadow
    entry = None if shadow is None else shadow.find(champion=champion, challenger=challenger)
    needed = settings.monitoring.min_positives
    if entry is None or entry.challenger is None or entry.positives < needed:
        have = 0 if entry is None else entry.positives
        return ShadowVerdict(
            challenger,
            champion,
            "waiting",
            f"{have} mature labelled frauds scored by both so far, {needed} needed",
        )
    won = entry.better == "challenger"
    verdict = ShadowVerdict(
        challenger,
        champion,
        "promoted" if won else "dropped",
        f"shadow scoring on {entry.rows:,} mature labelled predictions "
        f"({entry.positives} frauds): {entry.reason}",
        comparison=entry,
    )
    event = ModelEvent(
        spec=spec_name,
        model_name=name,
        event_type="promoted" if won else "shadow_dropped",
        trigger="shadow",
        reason=verdict.why,
        version=challenger,
        champion_before=champion,
        champion_after=challenger if won else champion,
        metrics=verdict.evidence() or {},
        monitoring_run_id=monitoring_run_id,
        event_time=as_of,
        actor=ctx.actor,
    )
    if won:
        registry.move_champion(settings, client, spec_name, challenger, event=event, lake=ctx.lake)
    else:
        write_events(ctx.lake, [event])
    client.delete_registered_model_alias(name, alias)
    return verdict


def _history(ctx: MonitoringContext) -> tuple[LastRetrain | None, datetime | None]:
    """The last automatic retrain attempt (any outcome: a losing challenger also starts the
    cooldown, or a persistent drift would retrain at every run — cooldown.py says when it is
    waived) and the time of the last champion move."""
    events = load_events(ctx.lake)
    if events.empty:
        return None, None
    times = pd.to_datetime(events["event_time"], utc=True)
    moves = times[events["event_type"].isin(CHAMPION_MOVES).to_numpy()]
    return (
        last_automatic_retrain(events, AUTOMATIC),
        moves.max().to_pydatetime() if len(moves) else None,
    )
