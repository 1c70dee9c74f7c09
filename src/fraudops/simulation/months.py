"""The month table (what the served model really did, month by month) and the run's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from fraudops.config import Scenario
from fraudops.lake import Lake
from fraudops.lake.schemas import predictions_amount_column
from fraudops.monitoring.performance import AMOUNT, labelled_metrics
from fraudops.simulation.results import MonthRow, Outcome, SimulationResult
from fraudops.simulation.traffic import DAYS_PER_MONTH
from fraudops.training.gate import promotes

RECOVERY_TOLERANCE = 0.05  # the "back within 0.05 of its pre-drift level"
MONTH_SECONDS = DAYS_PER_MONTH * 86_400


def month_rows(
    lake: Lake,
    truth: pd.DataFrame,
    result: SimulationResult,
    start: datetime,
) -> list[MonthRow]:
    """Per month: the served predictions (from the lake) against ``truth`` (inference_id and
    true label), with the month's monitoring runs and retrains."""
    amount = predictions_amount_column(lake.spec)
    served = lake.read_frame(
        "predictions",
        columns=[
            "inference_id",
            "request_time",
            "probability",
            "prediction",
            "model_version",
            "customer_id",
            amount,
        ],
    )
    frame = served.merge(truth[["inference_id", "label"]], on="inference_id", how="inner")
    frame["month"] = month_of(frame["request_time"], start)
    frame["day"] = pd.to_datetime(frame["request_time"], utc=True).dt.strftime("%Y-%m-%d")
    if amount != AMOUNT:
        frame[AMOUNT] = frame[amount]
    # A run (and its retrain) at the very end of a month belongs to that month.
    run_months = _months_of([r.as_of for r in result.monitoring_runs], start)
    retrain_months = _months_of([r.as_of for r in result.retrains], start)
    rows = []
    champion = result.initial_champion
    for month in range(1, result.months + 1):
        part = frame[frame["month"] == month]
        metrics = (
            labelled_metrics(
                part,
                alerts_per_day=lake.settings.training.alerts_per_day,
                cost_fn=lake.settings.training.cost_fn,
                cost_fp=lake.settings.training.cost_fp,
            )
            or {}
        )
        runs = [r for r, m in zip(result.monitoring_runs, run_months, strict=True) if m == month]
        tried = [r for r, m in zip(result.retrains, retrain_months, strict=True) if m == month]
        promoted = [r for r in tried if promotes(r.decision)]
        if promoted:
            champion = str(promoted[-1].version)
        rows.append(
            MonthRow(
                month=month,
                start=(start + timedelta(days=(month - 1) * DAYS_PER_MONTH)).date().isoformat(),
                volume=len(part),
                frauds=int(part["label"].sum()),
                recall=metrics.get("recall"),
                precision=metrics.get("precision"),
                roc_auc=metrics.get("roc_auc"),
                pr_auc=metrics.get("pr_auc"),
                drifted_features=max((r.alarmed_features for r in runs), default=0),
                alerts=sum(r.alert is not None for r in runs),
                retrains=len(tried),
                promoted=len(promoted),
                champion=champion,
                served_by=sorted(part["model_version"].dropna().unique().tolist()),
                data_drift=_on(result.data_drift_month, month),
                concept_drift=_on(result.concept_drift_month, month),
                flagged_per_day=metrics.get("flagged_per_day"),
                amount_caught=metrics.get("amount_caught"),
                amount_missed=metrics.get("amount_missed"),
            )
        )
    return rows


def month_of(times: pd.Series, start: datetime, *, end_inclusive: bool = False) -> pd.Series:
    """The 1-based simulated month of each time (``end_inclusive``: a month's last instant is
    in it, not in the next)."""
    seconds = (pd.to_datetime(times, utc=True) - pd.Timestamp(start)).dt.total_seconds()
    if end_inclusive:
        seconds = seconds - 1
    return (seconds // MONTH_SECONDS).astype(int) + 1


def _months_of(times: Sequence[str], start: datetime) -> list[int]:
    if not times:
        return []
    return month_of(pd.Series(list(times)), start, end_inclusive=True).tolist()


def _on(onset: int | None, month: int) -> bool:
    return onset is not None and month >= onset


def outcome(result: SimulationResult, plan: Scenario) -> Outcome:
    """Detection, retrain, recovery (or, for a control, quiet)."""
    rows = result.month_rows
    onsets = [m for m in (plan.data_drift_month, plan.concept_drift_month) if m is not None]
    alerts = [r for r in result.monitoring_runs if r.alert is not None]
    automatic = result.retrains
    verdict = Outcome(
        drift_alerts=len(alerts),
        retrains=len(automatic),
        promotions=sum(promotes(r.decision) for r in automatic),
        final_champion=rows[-1].champion if rows else None,
    )
    if not onsets:
        verdict.quiet = not alerts and not automatic
        return verdict
    first = min(onsets)
    onset_time = datetime.fromisoformat(result.start) + timedelta(days=(first - 1) * DAYS_PER_MONTH)
    verdict.pre_drift_recall = pooled_recall([r for r in rows if r.month < first])
    verdict.pre_drift_amount_caught_share = caught_share([r for r in rows if r.month < first])
    after = [r for r in result.monitoring_runs if datetime.fromisoformat(r.as_of) > onset_time]
    detected = next(
        (i for i, r in enumerate(after) if r.data_drift_detected or r.model_drift_detected),
        None,
    )
    verdict.detected_at_run = None if detected is None else detected + 1
    verdict.detected_as_of = None if detected is None else after[detected].as_of
    # Recovery counts from the first promoted retrain judged on traffic of the latest drift:
    # its mature holdout starts after the onset, or its fresh labels (the confirmations of the
    # days not yet mature) hold at least a week after it. One judged on labels from before the
    # drift, or on its first few days, cannot have learned it.
    last_onset = onset_time + timedelta(days=(max(onsets) - first) * DAYS_PER_MONTH)
    recovering = [
        r
        for r in automatic
        if promotes(r.decision)
        and (
            r.holdout_start >= f"{last_onset:%Y-%m-%d}"
            or (
                r.fresh_holdout_rows > 0
                and datetime.fromisoformat(r.as_of) >= last_onset + timedelta(days=7)
            )
        )
    ]
    if recovering:
        retrain_time = datetime.fromisoformat(recovering[0].as_of)
        verdict.recovery_retrain = recovering[0].version
        verdict.recovery_retrain_as_of = recovering[0].as_of
        months_after = [
            r for r in rows if datetime.fromisoformat(r.start).replace(tzinfo=UTC) >= retrain_time
        ]
        verdict.post_retrain_months = [r.month for r in months_after]
        verdict.post_retrain_recall = pooled_recall(months_after)
    post, before = verdict.post_retrain_recall, verdict.pre_drift_recall
    verdict.recovered = (
        post is not None and before is not None and post >= before - RECOVERY_TOLERANCE
    )
    return verdict


def pooled_recall(rows: Sequence[MonthRow]) -> float | None:
    """Recall over several months, weighted by their frauds."""
    known = [(r.recall, r.frauds) for r in rows if r.recall is not None]
    frauds = sum(n for _, n in known)
    if not frauds:
        return None
    return sum(recall * n for recall, n in known) / frauds


def caught_share(rows: Sequence[MonthRow]) -> float | None:
    """The share of the fraud amount flagged over several months (None: no amounts)."""
    known = [r for r in rows if r.amount_caught is not None and r.amount_missed is not None]
    caught = sum(r.amount_caught or 0.0 for r in known)
    total = caught + sum(r.amount_missed or 0.0 for r in known)
    return caught / total if total else None
