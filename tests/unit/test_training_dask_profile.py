"""The reference profile from merged per-partition value counts equals ``build_profile`` on the
whole matrix (no cluster: the merge functions are called as the workers call them)."""

from __future__ import annotations

import numpy as np
import pytest

from fraudops.models.profile import NumericProfile, build_profile, numeric_profile
from fraudops.training.dask_profile import SummaryReference, numeric_from_counts
from fraudops.training.dask_profile import _merge as merge
from fraudops.training.dask_profile import _part_counts as part_counts
from fraudops.training.features import feature_matrix
from tests.unit.training_fixtures import SMALL_SPEC, make_frame


@pytest.mark.parametrize(
    "column",
    [
        np.random.default_rng(0).normal(size=3000),  # continuous: deciles
        np.round(np.random.default_rng(1).exponential(50, size=3000), 0),  # heavy ties
        np.repeat([0.0, 1.0, 2.0], [600, 300, 100]),  # fewer distinct values than bins
    ],
    ids=["continuous", "ties", "few-values"],
)
def test_numeric_profile_from_merged_counts_is_exact(column: np.ndarray) -> None:
    parts = np.array_split(column, 7)
    merged = None
    for part in parts:  # partition by partition, as the tree of merges folds them
        values, counts = np.unique(part, return_counts=True)
        here = {"x": (values, counts.astype(np.int64))}
        merged = here if merged is None else merge(merged, here)
    assert merged is not None
    got = numeric_from_counts(*merged["x"], bins=10)
    expected = numeric_profile(column, bins=10)
    for field in ("edges", "proportions", "ecdf_values", "ecdf_counts"):
        assert np.array_equal(getattr(got, field), getattr(expected, field)), field
    assert (got.count, got.exact) == (expected.count, expected.exact)
    assert got.stats["min"] == expected.stats["min"] and got.stats["max"] == expected.stats["max"]
    assert got.stats["mean"] == pytest.approx(expected.stats["mean"], rel=1e-12, abs=1e-12)
    assert got.stats["std"] == pytest.approx(expected.stats["std"], rel=1e-12)


def test_a_whole_reference_from_partitions_equals_build_profile() -> None:
    frame = make_frame(2000, seed=4)
    names = SMALL_SPEC.feature_names
    pieces = [part_counts(chunk, names) for chunk in np.array_split(frame, 3)]
    pieces.append(part_counts(frame.iloc[:0], names))  # an empty partition changes nothing
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merge(merged, piece)
    scores = np.random.default_rng(2).random(500)
    common = {"scores": scores, "baseline_metrics": {"roc_auc": 0.9}, "threshold": 0.4}
    got = SummaryReference(merged, len(frame)).profile(SMALL_SPEC, bins=10, **common)
    expected = build_profile(feature_matrix(frame, names), SMALL_SPEC, bins=10, **common)
    assert got.rows == expected.rows and got.kinds == expected.kinds
    for name, want in expected.features.items():
        have = got.features[name]
        if isinstance(want, NumericProfile):
            assert isinstance(have, NumericProfile)
            assert np.array_equal(have.edges, want.edges)
            assert np.array_equal(have.proportions, want.proportions)
            assert np.array_equal(have.ecdf_counts, want.ecdf_counts)
        else:
            assert np.array_equal(have.counts, want.counts)  # type: ignore[union-attr]
    assert np.array_equal(got.scores.ecdf_values, expected.scores.ecdf_values)
