"""The simulation's verdict (detection, recovery, a quiet control), its month arithmetic and the
JSON shape of its results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from fraudops.config import Scenario
from fraudops.simulation.months import month_of, outcome, pooled_recall
from fraudops.simulation.results import (
    MonitoringRun,
    MonthRow,
    Outcome,
    Retrain,
    SimulationResult,
)

START = "2027-01-01T00:00:00+00:00"


def _month(month: int, recall: float | None, frauds: int = 100) -> MonthRow:
    return MonthRow(
        month=month,
        start=f"2027-0{month}-01",
        volume=1000,
        frauds=frauds,
        recall=recall,
        precision=None,
        roc_auc=None,
        pr_auc=None,
        drifted_features=0,
        alerts=0,
        retrains=0,
        promoted=0,
        champion="1",
        served_by=["1"],
        data_drift=False,
        concept_drift=False,
    )


def _run(as_of: str, alert: str | None = None, *, model_drift: bool = False) -> MonitoringRun:
    return MonitoringRun(
        run_id=f"mon-{as_of[:10]}",
        as_of=as_of,
        champion="1",
        labels_delivered=0,
        predictions=0,
        data_drift_detected=False,
        model_drift_detected=model_drift,
        alarmed_features=0,
        mature_recall=None,
        mature_roc_auc=None,
        alert=alert,
        retrain_reasons=[],
        retrain_blocked=None,
        shadow=None,
        shadow_verdict=None,
    )


def _retrain(as_of: str, version: str, holdout_start: str, **kw: Any) -> Retrain:
    values: dict[str, Any] = dict(
        as_of=as_of,
        monitoring_run_id="mon-x",
        decision="promoted",
        reason="r",
        version=version,
        champion_before="1",
        champion_after=version,
        challenger={"roc_auc": 0.9},
        champion={"roc_auc": 0.8},
        reasons=["data drift on 4 features"],
        retrain_data={"holdout_start": holdout_start},
    )
    return Retrain(**{**values, **kw})


def _result(**kw: Any) -> SimulationResult:
    base: dict[str, Any] = dict(
        scenario="s",
        description="",
        months=5,
        tx_per_day=10,
        start=START,
        home="h",
        data_drift_month=None,
        concept_drift_month=3,
        initial_champion="1",
    )
    return SimulationResult(**{**base, **kw})


def test_outcome_measures_recovery_from_the_first_retrain_that_saw_the_drift() -> None:
    runs = [
        _run("2027-03-08T00:00:00+00:00"),
        _run("2027-03-15T00:00:00+00:00", "sent", model_drift=True),
    ]
    retrain = _retrain("2027-03-15T00:00:00+00:00", "2", "2027-03-03")
    # Promoted after the onset, but judged partly on traffic from before it: not the recovery.
    blind = _retrain("2027-03-08T00:00:00+00:00", "9", "2027-02-28")
    result = _result(monitoring_runs=runs, retrains=[blind, retrain])
    result.month_rows = [
        _month(1, 0.80),
        _month(2, 0.80),
        _month(3, 0.50),
        _month(4, 0.78),
        _month(5, 0.79),
    ]
    verdict = outcome(result, Scenario(concept_drift_month=3))
    assert verdict.detected_at_run == 2 and verdict.detected_as_of == runs[1].as_of
    assert verdict.pre_drift_recall == 0.80
    assert verdict.recovery_retrain == "2" and verdict.post_retrain_months == [4, 5]
    assert verdict.post_retrain_recall is not None
    assert abs(verdict.post_retrain_recall - 0.785) < 1e-9 and verdict.recovered
    assert verdict.passed and verdict.drift_alerts == 1 and verdict.promotions == 2
    result.month_rows[3].recall = result.month_rows[4].recall = 0.70
    assert not outcome(result, Scenario(concept_drift_month=3)).recovered


def test_a_retrain_judged_on_a_week_of_fresh_labels_after_the_onset_is_the_recovery() -> None:
    # Onset 2027-03-02 (month 3). Its mature holdout predates the onset, but it was judged on
    # the fresh labels of the days since, promoted below the floors: that is the recovery.
    runs = [_run("2027-03-09T00:00:00+00:00", "sent", model_drift=True)]
    early = _retrain(
        "2027-03-05T00:00:00+00:00", "5", "2027-02-01", retrain_data={"fresh_holdout_rows": 90}
    )
    fresh = _retrain(
        "2027-03-09T00:00:00+00:00",
        "6",
        "2027-02-05",
        decision="promoted_below_floor",
        retrain_data={"holdout_start": "2027-02-05", "fresh_holdout_rows": 120},
    )
    result = _result(monitoring_runs=runs, retrains=[early, fresh])
    result.month_rows = [_month(m, r) for m, r in enumerate([0.8, 0.8, 0.5, 0.8, 0.8], 1)]
    verdict = outcome(result, Scenario(concept_drift_month=3))
    assert verdict.recovery_retrain == "6"  # not "5": under a week after the onset
    assert verdict.promotions == 2 and verdict.recovered


def test_a_drift_run_without_a_recovery_retrain_has_no_recovery_fields() -> None:
    result = _result(monitoring_runs=[_run("2027-03-15T00:00:00+00:00")], retrains=[])
    result.month_rows = [_month(m, 0.8) for m in range(1, 6)]
    verdict = outcome(result, Scenario(concept_drift_month=3))
    assert verdict.detected_at_run is None and not verdict.passed
    assert verdict.to_dict() == {
        "drift_alerts": 0,
        "retrains": 0,
        "promotions": 0,
        "final_champion": "1",
        "pre_drift_recall": 0.8,
        "pre_drift_amount_caught_share": None,  # these months carry no amounts
        "detected_at_run": None,
        "detected_as_of": None,
        "recovered": False,
        "onsets": None,  # set by the run from its monitoring runs' signals
        "fast_signals": None,
    }


def test_the_pre_drift_share_of_the_fraud_amount_caught_pools_the_months() -> None:
    result = _result(monitoring_runs=[], retrains=[])
    result.month_rows = [_month(m, 0.8) for m in range(1, 5)]
    for row, (caught, missed) in zip(
        result.month_rows, [(800.0, 200.0), (300.0, 700.0), (0.0, 0.0), (9.0, 9.0)], strict=True
    ):
        row.amount_caught, row.amount_missed = caught, missed
    verdict = outcome(result, Scenario(concept_drift_month=4))
    assert verdict.pre_drift_amount_caught_share == pytest.approx(1100 / 2000)  # months 1-3


def test_a_control_is_quiet_only_without_alerts_and_retrains() -> None:
    result = _result(concept_drift_month=None, monitoring_runs=[], retrains=[])
    result.month_rows = [_month(1, 0.8)]
    quiet = outcome(result, Scenario())
    assert quiet.quiet and quiet.passed
    assert quiet.to_dict() == {
        "drift_alerts": 0,
        "retrains": 0,
        "promotions": 0,
        "final_champion": "1",
        "quiet": True,
        "fast_signals": None,
    }
    result.monitoring_runs = [_run("2027-01-08T00:00:00+00:00", "sent")]
    assert not outcome(result, Scenario()).quiet


def test_pooled_recall_weights_months_by_their_frauds_and_skips_unknown_ones() -> None:
    rows = [_month(1, 0.5, frauds=100), _month(2, 1.0, frauds=300), _month(3, None, frauds=50)]
    assert pooled_recall(rows) == (0.5 * 100 + 1.0 * 300) / 400
    assert pooled_recall([_month(1, None)]) is None and pooled_recall([]) is None


def test_a_run_at_a_months_last_instant_belongs_to_that_month() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    times = pd.Series(
        ["2027-01-01T00:00:00+00:00", "2027-01-31T00:00:00+00:00", "2027-01-31T00:00:01+00:00"]
    )
    assert month_of(times, start).tolist() == [1, 2, 2]  # day 30 starts month 2
    assert month_of(times, start, end_inclusive=True).tolist() == [0, 1, 2]


def test_the_json_keeps_its_shape_a_shadow_promotion_alone_says_via() -> None:
    own = _retrain("2027-03-15T00:00:00+00:00", "2", "2027-03-03")
    shadow = _retrain("2027-03-22T00:00:00+00:00", "2", "2027-03-03", via="shadow")
    result = _result(
        month_rows=[_month(1, 0.8)],
        monitoring_runs=[_run("2027-01-08T00:00:00+00:00")],
        retrains=[own, shadow],
        outcome=Outcome(drift_alerts=0, retrains=2, promotions=2, final_champion="2"),
    )
    summary = json.loads(json.dumps(result.to_dict()))
    assert list(summary)[:9] == [
        "scenario",
        "description",
        "months",
        "tx_per_day",
        "start",
        "home",
        "data_drift_month",
        "concept_drift_month",
        "initial_champion",
    ]
    assert "via" not in summary["retrains"][0] and summary["retrains"][1]["via"] == "shadow"
    assert summary["month_rows"][0]["served_by"] == ["1"]
    assert summary["monitoring_runs"][0]["alert"] is None
    assert summary["retrains"][0]["retrain_data"] == {"holdout_start": "2027-03-03"}
