"""The automatic retrain's cooldown, as a rule:

- after an automatic retrain that moved the champion (``promoted``, ``promoted_below_floor``) or
  put a challenger in shadow scoring, no automatic retrain for ``retrain.cooldown_days``: the new
  model needs labelled traffic before it can be judged;
- after one that did not (``rejected``, ``not_promoted``), the cooldown holds only while the
  degradation is not getting worse: a run whose **health** is lower than the health of the run
  that asked for the failed retrain retrains at once. Health is the recall on confirmed frauds
  over the data window (the fast signal) when both runs have at least
  ``monitoring.concept_drift_min_confirmed`` confirmed frauds, else the mature cohorts' ROC-AUC
  when both have one; runs that cannot be compared keep the cooldown.

Waiting 14 days after a challenger lost because its new fraud had barely any labels is the
worst case of a concept drift: the fraud grows while the labels that would teach it pile up.

**Follow-up**: the fix of a concept drift is promoted from its first days of fresh labels, so it
has learned only part of the new fraud, and once it serves nothing says it is still short (its
own calibration soon describes its traffic). When an automatic retrain for concept drift moved
the champion, trained with fresh labels, the first run ``retrain.cooldown_days`` later retrains
again (reason ``follow_up``), judged like any retrain: it must beat the champion. A follow-up
that wins is followed up in turn, at most ``retrain.follow_ups`` (2) times in a row; one that
loses ends the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import MONITORING_RUNS
from fraudops.monitoring.result import MonitoringResult

MOVED = ("promoted", "promoted_below_floor", "shadowed")  # a failed retrain: anything else


@dataclass(frozen=True)
class Health:
    """How well the champion does in one monitoring run, by one figure."""

    confirmed_recall: float | None  # over the data window, when enough frauds are confirmed
    roc_auc: float | None  # of the mature cohorts

    def worse_than(self, before: Health) -> str | None:
        """Why this run is worse than ``before`` (None: not worse, or not comparable)."""
        if self.confirmed_recall is not None and before.confirmed_recall is not None:
            if self.confirmed_recall < before.confirmed_recall:
                return (
                    f"recall on confirmed frauds {self.confirmed_recall:.3f} < "
                    f"{before.confirmed_recall:.3f}"
                )
            return None
        if (
            self.roc_auc is not None
            and before.roc_auc is not None
            and self.roc_auc < before.roc_auc
        ):
            return f"mature ROC-AUC {self.roc_auc:.4f} < {before.roc_auc:.4f}"
        return None


@dataclass(frozen=True)
class LastRetrain:
    """The last automatic retrain: when, its decision, the monitoring run that asked for it."""

    time: datetime
    decision: str
    monitoring_run_id: str | None
    reasons: tuple[str, ...] = ()  # the policy's reason kinds (model_events.metrics)
    fresh_train_rows: int = 0  # fresh labelled rows it trained on
    follow_ups: int = 0  # how many follow-ups in a row it closes (itself included)

    @property
    def failed(self) -> bool:
        return self.decision not in MOVED


def health_of_summary(summary: dict[str, Any], min_confirmed: int) -> Health:
    """The health of a run from its ``monitoring_runs.summary`` (``MonitoringResult.summary``)."""
    signals = summary.get("signals") or {}
    confirmed = signals.get("window_confirmed") or {}
    recall = None
    if (confirmed.get("confirmed") or 0) >= min_confirmed:
        recall = (confirmed.get("recall") or {}).get("value")
    auc = (summary.get("performance") or {}).get("roc_auc")
    return Health(None if recall is None else float(recall), None if auc is None else float(auc))


def health_of(result: MonitoringResult, min_confirmed: int) -> Health:
    return health_of_summary(result.summary(), min_confirmed)


def blocked_by_cooldown(
    settings: Settings, lake: Lake, last: LastRetrain | None, result: MonitoringResult
) -> tuple[str | None, str | None]:
    """Why the cooldown blocks a due retrain at ``result.as_of`` (None: it does not), and why
    it was waived (None: it was not, or did not apply)."""
    if last is None:
        return None, None
    cooldown = timedelta(days=settings.retrain.cooldown_days)
    if result.as_of >= last.time + cooldown:
        return None, None
    blocked = (
        f"cooldown: last automatic retrain {last.time:%Y-%m-%d %H:%M} ({last.decision}), next "
        f"allowed {last.time + cooldown:%Y-%m-%d %H:%M} (retrain.cooldown_days "
        f"{settings.retrain.cooldown_days:g})"
    )
    if not last.failed or last.monitoring_run_id is None:
        return blocked, None
    min_confirmed = settings.monitoring.concept_drift_min_confirmed
    before = _run_summary(lake, last.monitoring_run_id)
    if before is None:
        return blocked, None
    worse = health_of(result, min_confirmed).worse_than(health_of_summary(before, min_confirmed))
    if worse is None:
        return blocked + "; the degradation is not getting worse", None
    return None, (
        f"cooldown waived: the last automatic retrain ({last.decision}) did not replace the "
        f"champion and the degradation got worse since run {last.monitoring_run_id} ({worse})"
    )


def _run_summary(lake: Lake, run_id: str) -> dict[str, Any] | None:
    quoted = run_id.replace("'", "''")
    rows = lake.read_frame(MONITORING_RUNS, ["summary"], f"run_id = '{quoted}'")
    if rows.empty or not isinstance(rows["summary"].iloc[0], str):
        return None
    parsed: dict[str, Any] = json.loads(rows["summary"].iloc[0])
    return parsed


def follow_up_reason(settings: Settings, last: LastRetrain | None, as_of: datetime) -> str | None:
    """Why a follow-up retrain is due at ``as_of`` (None: it is not): see the module's rule."""
    cfg = settings.retrain
    if last is None or last.decision not in ("promoted", "promoted_below_floor"):
        return None
    if not last.fresh_train_rows or not {"concept_drift", "follow_up"} & set(last.reasons):
        return None
    if last.follow_ups >= cfg.follow_ups:
        return None
    if as_of < last.time + timedelta(days=cfg.cooldown_days):
        return None
    return (
        f"follow-up of the concept-drift retrain promoted {last.time:%Y-%m-%d} from "
        f"{last.fresh_train_rows} fresh labelled rows: the weeks since hold more of the new fraud"
    )


def last_automatic_retrain(events: pd.DataFrame, trigger: str) -> LastRetrain | None:
    """The last automatic retrain among ``model_events`` (its decision event, not the
    ``registered`` one beside it)."""
    if events.empty:
        return None
    mine = events[(events["trigger"] == trigger) & (events["event_type"] != "registered")]
    if mine.empty:
        return None
    mine = mine.assign(_t=pd.to_datetime(mine["event_time"], utc=True)).sort_values(
        "_t", kind="stable"
    )
    parsed = [_metrics(raw) for raw in mine.get("metrics", pd.Series([None] * len(mine)))]
    reasons = [tuple(m.get("reasons") or ()) for m in parsed]
    follow_ups = 0
    for kinds, kind in zip(reversed(reasons), reversed(mine["event_type"].tolist()), strict=True):
        if "follow_up" not in kinds or kind not in MOVED:
            break
        follow_ups += 1
    last = mine.iloc[-1]
    run_id = last.get("monitoring_run_id")
    return LastRetrain(
        last["_t"].to_pydatetime(),
        str(last["event_type"]),
        run_id if isinstance(run_id, str) and run_id else None,
        reasons=reasons[-1],
        fresh_train_rows=int((parsed[-1].get("retrain") or {}).get("fresh_train_rows") or 0),
        follow_ups=follow_ups,
    )


def _metrics(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}
