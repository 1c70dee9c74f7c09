"""The retrain cooldown's rule (monitoring/cooldown.py): a failed retrain's cooldown gives way
when the degradation gets worse; a promotion's does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from fraudops.monitoring.cooldown import Health, health_of_summary, last_automatic_retrain


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
