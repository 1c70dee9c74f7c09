"""The retrain cooldown's rule (monitoring/cooldown.py): a failed retrain's cooldown gives way
when the degradation gets worse; a promotion's does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from fraudops.config import Settings
from fraudops.monitoring.cooldown import (
    Health,
    follow_up_reason,
    health_of_summary,
    last_automatic_retrain,
)


def summary(confirmed: int, recall: float | None, roc_auc: float | None) -> dict[str, object]:
    return {
        "performance": {"roc_auc": roc_auc},
        "signals": {"window_confirmed": {"confirmed": confirmed, "recall": {"value": recall}}},
    }


def test_health_reads_the_fast_signal_when_enough_frauds_are_confirmed() -> None:
    assert health_of_summary(summary(40, 0.31, 0.9), 10) == Health(0.31, 0.9)
    assert health_of_summary(summary(6, 0.31, 0.9), 10) == Health(None, 0.9)
    assert health_of_summary({}, 10) == Health(None, None)


def test_worse_compares_the_fast_signal_first_then_the_mature_roc_auc() -> None:
    before = Health(0.40, 0.90)
    assert "0.300 < 0.400" in (Health(0.30, 0.95).worse_than(before) or "")
    assert Health(0.45, 0.80).worse_than(before) is None  # the fast signal says better
    assert "0.8500 < 0.9000" in (Health(None, 0.85).worse_than(before) or "")
    assert Health(None, None).worse_than(before) is None  # not comparable: the cooldown holds


def events(*rows: tuple[str, str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "event_time": datetime.fromisoformat(t).replace(tzinfo=UTC),
                "trigger": trig,
                "event_type": kind,
                "monitoring_run_id": run,
            }
            for t, trig, kind, run in rows
        ]
    )


def test_the_last_automatic_retrain_is_its_decision_not_its_registration() -> None:
    frame = events(
        ("2027-06-01", "retrain", "promoted", "r1"),
        ("2027-06-15", "retrain", "registered", "r2"),
        ("2027-06-15", "retrain", "not_promoted", "r2"),
        ("2027-06-20", "manual", "promoted", None),
    )
    last = last_automatic_retrain(frame, "retrain")
    assert last is not None
    assert (last.decision, last.monitoring_run_id, last.failed) == ("not_promoted", "r2", True)
    assert last.time == datetime(2027, 6, 15, tzinfo=UTC)
    below = last_automatic_retrain(
        events(("2027-06-01", "retrain", "promoted_below_floor", "r1")), "retrain"
    )
    assert below is not None and not below.failed
    assert (
        last_automatic_retrain(events(("2027-06-01", "train", "promoted", None)), "retrain") is None
    )


def _promotion(day: str, reasons: list[str], fresh: int = 500) -> dict[str, object]:
    return {
        "event_time": datetime.fromisoformat(day).replace(tzinfo=UTC),
        "trigger": "retrain",
        "event_type": "promoted",
        "monitoring_run_id": f"r-{day}",
        "metrics": json.dumps({"reasons": reasons, "retrain": {"fresh_train_rows": fresh}}),
    }


def test_a_concept_drift_fix_is_followed_up_after_the_cooldown_at_most_twice() -> None:
    settings = Settings()  # cooldown 14 days, 2 follow-ups
    fix = pd.DataFrame([_promotion("2027-06-15", ["concept_drift"])])
    last = last_automatic_retrain(fix, "retrain")
    assert follow_up_reason(settings, last, datetime(2027, 6, 22, tzinfo=UTC)) is None
    due = follow_up_reason(settings, last, datetime(2027, 6, 29, tzinfo=UTC))
    assert due is not None and "2027-06-15" in due and "500 fresh" in due
    # A data-drift promotion, or one without fresh labels, is not followed up.
    for other in (
        _promotion("2027-06-15", ["data_drift"]),
        _promotion("2027-06-15", ["concept_drift"], 0),
    ):
        last = last_automatic_retrain(pd.DataFrame([other]), "retrain")
        assert follow_up_reason(settings, last, datetime(2027, 7, 30, tzinfo=UTC)) is None
    chain = [_promotion("2027-06-15", ["concept_drift"]), _promotion("2027-06-29", ["follow_up"])]
    last = last_automatic_retrain(pd.DataFrame(chain), "retrain")
    assert last is not None and last.follow_ups == 1
    assert follow_up_reason(settings, last, datetime(2027, 7, 13, tzinfo=UTC)) is not None
    chain.append(_promotion("2027-07-13", ["follow_up"]))
    last = last_automatic_retrain(pd.DataFrame(chain), "retrain")
    assert last is not None and last.follow_ups == 2
    assert follow_up_reason(settings, last, datetime(2027, 8, 30, tzinfo=UTC)) is None
    # A follow-up that lost ends the chain.
    lost = {**_promotion("2027-06-29", ["follow_up"]), "event_type": "not_promoted"}
    last = last_automatic_retrain(pd.DataFrame([chain[0], lost]), "retrain")
    assert follow_up_reason(settings, last, datetime(2027, 8, 30, tzinfo=UTC)) is None
