"""Performance from delayed labels: cohorts, maturity, and agreement with the true labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fraudops.monitoring.performance import classification_metrics, evaluate_performance

START = datetime(2026, 3, 1, tzinfo=UTC)


def _predictions(days: int = 20, per_day: int = 600, seed: int = 0) -> pd.DataFrame:
    """Scored predictions with true labels and the seed's delays (fraud 1-7 d, legit 1-30 d)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    truth = rng.random(n) < 0.05
    probability = np.clip(rng.normal(0.15 + 0.5 * truth, 0.2), 0, 1)
    request_time = START + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
    request_time += pd.to_timedelta(rng.uniform(0, 86_000, n), unit="s")
    delay_days = np.where(truth, rng.uniform(1, 7, n), rng.uniform(1, 30, n))
    return pd.DataFrame(
        {
            "request_time": request_time,
            "probability": probability,
            "prediction": (probability >= 0.5).astype(int),
            "label": truth.astype(int),
            "confirmed_at": request_time + pd.to_timedelta(delay_days, unit="D"),
        }
    )


def _run(frame: pd.DataFrame, as_of: datetime, **kw: object) -> object:
    options: dict = {
        "min_coverage": 1.0,
        "min_samples": 100,
        "baseline_roc_auc": None,
        "max_degradation": 0.05,
        "cost_fn": 100.0,
        "cost_fp": 1.0,
    }
    options.update(kw)
    return evaluate_performance(frame, as_of=as_of, **options)


def test_mature_cohorts_match_the_true_labels_and_recent_ones_are_immature() -> None:
    frame = _predictions()
    as_of = START + timedelta(days=40)  # the first 10 days have all their labels (≤ 30 d)
    report = _run(frame, as_of)
    mature = [c for c in report.cohorts if c.mature]
    immature = [c for c in report.cohorts if not c.mature]
    assert [c.day for c in mature] == [f"2026-03-{d:02d}" for d in range(1, 11)]
    assert len(immature) == 10 and all(c.coverage < 1.0 for c in immature)
    days = pd.to_datetime(frame["request_time"], utc=True).dt.strftime("%Y-%m-%d")
    truth = frame[days.isin([c.day for c in mature])]
    direct = classification_metrics(
        truth["label"],
        truth["probability"],
        truth["prediction"],
        cost_fn=100.0,
        cost_fp=1.0,
        days=days[truth.index].to_numpy(),  # the cohorts' days: flagged per day
    )
    assert report.metrics == pytest.approx(direct, abs=1e-12)
    assert report.evaluated_rows == len(truth)
    for cohort in mature:
        part = frame[days == cohort.day]
        assert cohort.metrics == pytest.approx(
            classification_metrics(
                part["label"],
                part["probability"],
                part["prediction"],
                cost_fn=100.0,
                cost_fp=1.0,
                days=days[part.index].to_numpy(),
            ),
            abs=1e-12,
        )


def test_a_window_of_quick_fraud_confirmations_only_is_kept_out() -> None:
    frame = _predictions(days=5)
    as_of = START + timedelta(days=12)  # frauds all confirmed, most legit ones not yet
    report = _run(frame, as_of, min_coverage=0.9)
    assert report.mature_cohorts == 0 and report.metrics is None and report.degraded is None
    assert "fewer than" in report.reason
    # What it would have reported: recall on a fraud-heavy labelled set, not the truth.
    known = frame[frame["confirmed_at"] <= pd.Timestamp(as_of)]
    assert known["label"].mean() > 2 * frame["label"].mean()


def test_degradation_is_relative_to_the_baseline() -> None:
    frame = _predictions()
    report = _run(frame, START + timedelta(days=60), baseline_roc_auc=0.99)
    assert report.metrics is not None
    expected = (0.99 - report.metrics["roc_auc"]) / 0.99 * 100
    assert report.degradation_pct == pytest.approx(expected, abs=1e-4)
    assert report.degraded is (expected > 5)
    ok = _run(frame, START + timedelta(days=60), baseline_roc_auc=report.metrics["roc_auc"])
    assert ok.degraded is False and ok.degradation_pct == pytest.approx(0.0, abs=1e-9)


def test_high_confidence_errors_count_confident_mistakes_only() -> None:
    labels = np.array([1, 0, 0, 1, 0, 1])
    probs = np.array([0.95, 0.95, 0.05, 0.05, 0.5, 0.6])
    metrics = classification_metrics(labels, probs, probs >= 0.5, cost_fn=10, cost_fp=1)
    assert metrics is not None
    # confident: 0.95 (right), 0.95 (wrong), 0.05 (right), 0.05 (wrong)
    assert metrics["high_confidence_error_rate"] == pytest.approx(0.5)
    assert metrics["fnr"] == pytest.approx(1 / 3) and metrics["fpr"] == pytest.approx(2 / 3)
