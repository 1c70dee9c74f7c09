"""CBPE and the confirmed-fraud signal, against realized labels drawn from known probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.errors import ValidationError
from fraudops.monitoring.cbpe import (
    _auc,
    _average_precision,
    _expected_auc,
    confirmed_recall,
    estimate,
)


def _week(seed: int, n: int = 7_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.25, 50, n)  # ~0.5 % fraud: ~35 frauds a week
    y = rng.random(n) < p
    return p, y


def test_row_wise_figures_equal_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    s = np.round(rng.random(500), 2)  # many ties
    y = rng.random((4, 500)) < 0.2
    ranks = __import__("scipy").stats.rankdata(s)
    order = np.argsort(-s, kind="stable")
    aucs, aps = _auc(y, ranks), _average_precision(y[:, order], s[order])
    for row in range(4):
        assert aucs[row] == pytest.approx(roc_auc_score(y[row], s), abs=1e-12)
        assert aps[row] == pytest.approx(average_precision_score(y[row], s), abs=1e-12)


def test_expected_auc_is_the_mean_of_realized_aucs() -> None:
    rng = np.random.default_rng(4)
    p = rng.random(300) * 0.5
    s = np.round(p + rng.normal(0, 0.1, 300), 1)  # ties
    draws = rng.random((20_000, 300)) < p
    realized = _auc(draws, __import__("scipy").stats.rankdata(s))
    # E[U]/E[pairs] vs the mean of U/pairs: equal to within the ratio's small bias
    assert _expected_auc(p, s) == pytest.approx(np.nanmean(realized), abs=3e-3)


def test_weekly_intervals_cover_the_realized_figures() -> None:
    inside_auc = inside_recall = 0
    runs = 25
    for seed in range(runs):
        p, y = _week(seed)
        flagged = p * 100 >= 5  # expected loss at a $100 amount vs a $5 review
        est = estimate(p, p, flagged, seed=seed)
        inside_auc += est.roc_auc.contains(roc_auc_score(y, p))
        inside_recall += est.recall.contains(float((y & flagged).sum() / y.sum()))
        assert est.expected_frauds == pytest.approx(p.sum())
        assert est.tp + est.fp == pytest.approx(flagged.sum())
    assert inside_auc >= 0.85 * runs
    assert inside_recall >= 0.85 * runs


def test_confirmed_recall_flags_concept_drift_only_when_frauds_escape() -> None:
    rng = np.random.default_rng(5)
    # as expected: 60 % of the confirmed frauds flagged, expectation 0.6
    fine = confirmed_recall(rng.random(40) < 0.6, 0.6)
    assert not fine.concept_drift_suspected
    assert fine.recall.low < 0.6 < fine.recall.high
    # new fraud the model does not see: 15 % flagged where 60 % is expected
    drifted = confirmed_recall(rng.random(40) < 0.15, 0.6)
    assert drifted.concept_drift_suspected and drifted.pvalue < 1e-4
    # too few confirmed yet to say anything
    assert not confirmed_recall(np.zeros(5, bool), 0.6).concept_drift_suspected


def test_refuses_mismatched_vectors() -> None:
    with pytest.raises(ValidationError, match="equal-length"):
        estimate(np.zeros(3), np.zeros(4), np.zeros(3, bool))
