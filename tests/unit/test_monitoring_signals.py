"""The fast signals per prediction day: confirmed-fraud recall, CBPE beside the realized figures
once mature, and the concept-drift suspicion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fraudops.models.calibration import Calibrator
from fraudops.monitoring.signals import fallback_calibrator, fast_signals, reference_calibrator

START = datetime(2027, 3, 1, tzinfo=UTC)
IDENTITY = Calibrator((0.0, 1.0), (0.0, 1.0), "isotonic")  # linear knots: p = score
CUT = 0.08  # the operating point: flag a score of at least this


def window(
    days: int = 14,
    rows: int = 600,
    mature_days: int = 7,
    seed: int = 1,
    flip_from: int | None = None,
) -> pd.DataFrame:
    """``days`` of predictions whose scores are calibrated probabilities; the first
    ``mature_days`` fully labelled, the rest with their frauds confirmed only. From day
    ``flip_from`` on, the frauds are the low-scored rows (a concept drift)."""
    rng = np.random.default_rng(seed)
    parts = []
    for d in range(days):
        score = rng.beta(0.3, 6.0, rows)
        label = rng.random(rows) < score
        if flip_from is not None and d >= flip_from:
            label = (score < 0.02) & (rng.random(rows) < 0.12)
        known = np.ones(rows, bool) if d < mature_days else label.copy()
        times = [START + timedelta(days=d, minutes=int(m)) for m in rng.integers(0, 1440, rows)]
        parts.append(
            pd.DataFrame(
                {
                    "day": f"{START + timedelta(days=d):%Y-%m-%d}",
                    "request_time": pd.to_datetime(times, utc=True),
                    "probability": score,
                    "prediction": (score >= CUT).astype(int),
                    "known": known,
                    "label": np.where(known, label.astype(float), np.nan),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def signals(frame: pd.DataFrame, data_days: int = 7, calibrator: Calibrator = IDENTITY):
    days = frame["day"].nunique()
    return fast_signals(
        frame,
        calibrator,
        calibration_source="manifest",
        data_start=START + timedelta(days=days - data_days),
        min_coverage=0.9,
        alpha=0.001,
        min_confirmed=10,
        draws=200,
    )


def test_each_day_carries_its_confirmed_recall_and_cbpe_realized_only_once_mature():
    frame = window()
    out = signals(frame)
    assert [d.day for d in out.days] == sorted(frame["day"].unique())
    assert [d.mature for d in out.days] == [True] * 7 + [False] * 7
    for d in out.days:
        rows = frame[frame["day"] == d.day]
        frauds = rows[rows["known"] & (rows["label"] == 1)]
        assert d.confirmed.confirmed == len(frauds) > 10
        assert d.confirmed.flagged == int(frauds["prediction"].sum())
        assert d.confirmed.recall.low <= d.confirmed.recall.value <= d.confirmed.recall.high
        assert d.estimate is not None and d.estimate.n == len(rows)
        assert d.provisional == (d.realized is None)
        expected = (rows["probability"] * rows["prediction"]).sum() / rows["probability"].sum()
        assert d.confirmed.expected_recall == pytest.approx(expected)
    mature = out.days[0]
    rows = frame[frame["day"] == mature.day]
    assert mature.realized is not None
    assert mature.realized.roc_auc == pytest.approx(
        roc_auc_score(rows["label"], rows["probability"])
    )


def test_calibrated_traffic_falls_inside_cbpe_and_raises_no_suspicion():
    out = signals(window())
    assert not out.concept_drift_suspected
    assert out.window_confirmed is not None and out.window_confirmed.confirmed > 100
    assert "not below" in out.reason
    # The mature days' realized figures inside CBPE's 95 % intervals for most days.
    inside = [
        d.estimate.roc_auc.contains(d.realized.roc_auc)
        and d.estimate.recall.contains(d.realized.recall)
        for d in out.days
        if d.realized is not None and d.estimate is not None and d.realized.roc_auc is not None
    ]
    assert len(inside) == 7 and sum(inside) >= 6
    assert out.matured is not None and out.matured_realized is not None
    assert out.matured.roc_auc.contains(out.matured_realized.roc_auc or -1)


def test_frauds_the_model_does_not_see_as_risky_raise_the_suspicion():
    out = signals(window(flip_from=10))
    assert out.concept_drift_suspected
    assert out.window_confirmed is not None
    assert out.window_confirmed.recall.high < out.window_confirmed.expected_recall
    assert "below alpha" in out.reason
    # The early days of the drift already show it day by day.
    assert all(d.confirmed.concept_drift_suspected for d in out.days[10:])
    assert not any(d.confirmed.concept_drift_suspected for d in out.days[:10])


def test_too_few_confirmed_frauds_decide_nothing():
    frame = window(days=8, rows=40)
    out = signals(frame, data_days=1)
    assert out.window_confirmed is not None and out.window_confirmed.confirmed < 10
    assert not out.concept_drift_suspected
    assert "fewer than the 10" in out.reason


def test_summary_is_json_without_nan():
    import json

    summary = signals(window(days=9, rows=60)).summary()
    text = json.dumps(summary, allow_nan=False)
    assert '"provisional"' not in text  # the summary is compact; to_dict has the flag
    assert (
        summary["days"][0]["estimate"]["roc_auc"]["low"]
        <= summary["days"][0]["estimate"]["roc_auc"]["high"]
    )
    json.dumps(signals(window(days=9, rows=60)).to_dict(), allow_nan=False)


def test_fallback_calibrator_fits_on_mature_days_before_the_window():
    frame = window()
    calibrator, source = fallback_calibrator(
        frame, min_coverage=0.9, before=START + timedelta(days=7)
    )
    assert calibrator is not None and "before the window" in source
    # Fitted on calibrated scores: maps them close to themselves where the data is dense.
    assert calibrator(np.array([0.05]))[0] == pytest.approx(0.05, abs=0.03)
    none, why = fallback_calibrator(
        frame.assign(known=False), min_coverage=0.9, before=START + timedelta(days=7)
    )
    assert none is None and why.startswith("none")
    empty = fast_signals(
        frame,
        None,
        calibration_source=why,
        data_start=START,
        min_coverage=0.9,
        alpha=0.001,
        min_confirmed=10,
        draws=50,
    )
    assert empty.days == [] and not empty.concept_drift_suspected


def test_the_reference_period_recalibrates_an_overconfident_stored_calibrator():
    # Scores whose true probability is half of what the stored calibrator says.
    frame = window(days=21, mature_days=14)
    frame["probability"] = np.clip(frame["probability"] * 2, 0, 1)
    before = START + timedelta(days=14)
    fitted = reference_calibrator(frame, min_coverage=0.9, before=before, min_positives=50)
    assert fitted is not None
    assert fitted(np.array([0.10]))[0] == pytest.approx(0.05, abs=0.03)
    stored = signals(frame)
    recalibrated = signals(frame, calibrator=fitted)
    realized = frame.loc[frame["known"] & (frame["day"] < f"{before:%Y-%m-%d}")]
    frauds = realized["label"].mean()
    # The expected fraud count of the mature days follows the reference's, not the stored map.
    assert stored.matured is not None and recalibrated.matured is not None
    mature_rows = stored.matured.n
    assert stored.matured.expected_frauds / mature_rows > 1.5 * frauds
    assert recalibrated.matured.expected_frauds / mature_rows == pytest.approx(frauds, rel=0.15)
    # Too few frauds before the window, or the feature off: no reference calibrator.
    assert reference_calibrator(frame, min_coverage=0.9, before=before, min_positives=10**6) is None
    assert reference_calibrator(frame, min_coverage=0.9, before=before, min_positives=0) is None
