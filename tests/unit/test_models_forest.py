"""The flat forest scores exactly what XGBoost scores."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from fraudops.models.forest import FlatForest


def _booster(
    objective: str, depth: int, rounds: int, seed: int = 0
) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 8)) * [1, 10, 100, 0.1, 1, 1, 5, 2]
    y = ((X[:, 0] + X[:, 1] / 10 + rng.normal(size=3000)) > 1).astype(int)
    params = {
        "objective": objective,
        "max_depth": depth,
        "eta": 0.3,
        "nthread": 1,
        "scale_pos_weight": 3.0,
    }
    return xgb.train(params, xgb.DMatrix(X, label=y), rounds), X


@pytest.mark.parametrize(("depth", "rounds"), [(1, 1), (3, 20), (6, 60)])
def test_probabilities_match_xgboost(depth: int, rounds: int) -> None:
    booster, X = _booster("binary:logistic", depth, rounds)
    forest = FlatForest.from_booster(booster)
    assert forest is not None
    for rows in (X[:1], X[:7], X):
        expected = booster.inplace_predict(rows.astype(np.float32))
        np.testing.assert_allclose(forest.predict(rows), expected, rtol=0, atol=2e-6)


def test_raw_margins_match_for_logitraw() -> None:
    booster, X = _booster("binary:logitraw", 4, 30)
    forest = FlatForest.from_booster(booster)
    assert forest is not None and not forest.logistic
    expected = booster.inplace_predict(X.astype(np.float32))
    np.testing.assert_allclose(forest.predict(X), expected, rtol=0, atol=1e-4)


def test_objectives_it_cannot_reproduce_are_left_to_xgboost() -> None:
    booster, _ = _booster("reg:squarederror", 3, 5)
    assert FlatForest.from_booster(booster) is None


def test_values_on_a_split_threshold_go_right_like_xgboost() -> None:
    booster, X = _booster("binary:logistic", 3, 10)
    forest = FlatForest.from_booster(booster)
    assert forest is not None
    # Put every feature exactly on some split condition of the first tree.
    rows = np.repeat(X[:1], len(forest.threshold), axis=0).astype(np.float32)
    finite = np.isfinite(forest.threshold)
    rows[np.arange(len(rows))[finite], forest.feature[finite]] = forest.threshold[finite]
    np.testing.assert_allclose(forest.predict(rows), booster.inplace_predict(rows), atol=2e-6)
