from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fraudops.errors import FraudopsError
from fraudops.models.profile import (
    PROFILE_JSON,
    PROFILE_NPZ,
    CategoricalProfile,
    NumericProfile,
    build_profile,
    load_profile,
    numeric_profile,
    save_profile,
)
from fraudops.training.features import feature_matrix
from tests.unit.training_fixtures import SMALL_SPEC, make_frame


def test_continuous_feature_gets_deciles_and_an_exact_ecdf() -> None:
    column = np.random.default_rng(0).normal(size=5000)
    profile = numeric_profile(column, bins=10)
    assert len(profile.edges) == 9
    np.testing.assert_allclose(profile.proportions, 0.1, atol=0.001)
    np.testing.assert_allclose(profile.edges, np.quantile(column, np.arange(1, 10) / 10), atol=0.01)
    assert profile.exact and len(profile.ecdf_values) == 5000
    points = np.array([-1.0, 0.0, 0.5, 9.0])
    expected = [(column <= p).mean() for p in points]
    np.testing.assert_allclose(profile.cdf(points), expected)
    np.testing.assert_allclose(profile.bin_proportions(column), profile.proportions)


def test_ties_keep_distinct_values_in_distinct_bins() -> None:
    column = np.repeat([0.0, 1.0, 2.0], [600, 300, 100])
    profile = numeric_profile(column, bins=10)
    assert profile.edges.tolist() == [0.0, 1.0, 2.0]
    assert profile.proportions.tolist() == [0.0, 0.6, 0.3, 0.1]
    assert profile.bin_proportions(np.array([-5.0, 0.0, 3.0, 3.0])).tolist() == [0.25, 0.25, 0, 0.5]


def test_a_long_ecdf_is_thinned_within_its_error_bound() -> None:
    column = np.random.default_rng(1).exponential(size=50_000)
    profile = numeric_profile(column, ecdf_points=1000)
    assert not profile.exact and len(profile.ecdf_values) <= 1001
    assert profile.ecdf_values[-1] == column.max()
    grid = np.quantile(column, np.linspace(0, 1, 777))
    exact = np.searchsorted(np.sort(column), grid, side="right") / len(column)
    assert np.abs(profile.cdf(grid) - exact).max() <= 1 / 1000 + 1e-12


def test_round_trip_without_pickle(tmp_path: Path) -> None:
    frame = make_frame(3000, seed=4)
    X = feature_matrix(frame, SMALL_SPEC.feature_names)
    scores = np.random.default_rng(2).random(1000)
    metrics = {"roc_auc": 0.93, "pr_auc": 0.61}
    profile = build_profile(X, SMALL_SPEC, scores=scores, baseline_metrics=metrics, threshold=0.42)
    assert isinstance(profile.features["online"], CategoricalProfile)
    assert profile.features["channel"].categories.tolist() == [1, 2, 3]  # type: ignore[union-attr]
    assert isinstance(profile.features["amount"], NumericProfile)

    path = save_profile(profile, tmp_path / "ref")
    assert path.name == PROFILE_NPZ
    with np.load(path, allow_pickle=False) as data:  # loads without pickle
        assert "meta" in data.files
    loaded = load_profile(tmp_path / "ref")
    assert loaded.spec == "small" and loaded.threshold == 0.42 and loaded.rows == 3000
    assert loaded.baseline_metrics == metrics and loaded.kinds == profile.kinds
    for name, original in profile.features.items():
        again = loaded.features[name]
        assert type(again) is type(original)
        if isinstance(original, NumericProfile):
            assert isinstance(again, NumericProfile)
            np.testing.assert_array_equal(again.edges, original.edges)
            np.testing.assert_array_equal(again.proportions, original.proportions)
            np.testing.assert_array_equal(again.ecdf_values, original.ecdf_values)
            np.testing.assert_array_equal(again.ecdf_counts, original.ecdf_counts)
            assert again.stats == original.stats and again.count == original.count
        else:
            assert isinstance(again, CategoricalProfile)
            np.testing.assert_array_equal(again.counts, original.counts)
    np.testing.assert_array_equal(loaded.scores.edges, profile.scores.edges)
    summary = json.loads((tmp_path / "ref" / PROFILE_JSON).read_text())
    assert summary["features"]["online"]["kind"] == "binary"
    assert summary["baseline_metrics"]["pr_auc"] == 0.61


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / PROFILE_NPZ).write_bytes(b"not a zip")
    with pytest.raises(FraudopsError, match="cannot read reference profile"):
        load_profile(tmp_path)
