"""Mergeable window summaries: any split of a window, merged in any order, finishes into
compute_drift's report — every statistic to 1e-9 but the normalised Wasserstein, which stays
within the bound the summaries state (and is exact where the two ECDFs do not cross)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.config import MonitoringSettings
from fraudops.errors import ValidationError
from fraudops.models.profile import NumericProfile, ReferenceProfile, build_profile
from fraudops.monitoring.drift import SCORE_FEATURE, DriftReport, FeatureDrift, compute_drift
from fraudops.monitoring.summaries import (
    DriftSummaryResult,
    crossings,
    finish_drift,
    merge_all,
    needs_rows,
    summarize,
    values_in,
)
from fraudops.training.features import feature_matrix
from tests.unit.training_fixtures import SMALL_SPEC, make_frame

TOL = 1e-9
EXACT = ("psi", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue", "jensen_shannon")
EQUAL = ("kind", "severity", "drifted")
CLOSE = ("effect", "pvalue", "psi_threshold", "pvalue_threshold")
CONFIG = MonitoringSettings()
ROWS = 12_000  # past scipy's 10,000-row exact KS branch: the summaries' domain


def _profile(ecdf_points: int | None) -> ReferenceProfile:
    X = feature_matrix(make_frame(30_000, seed=1), SMALL_SPEC.feature_names)
    scores = np.random.default_rng(9).beta(1, 10, 20_000)
    return build_profile(
        X, SMALL_SPEC, scores=scores, baseline_metrics={}, threshold=0.5, ecdf_points=ecdf_points
    )


PROFILES = {"exact": _profile(None), "capped": _profile(300)}


def _window(seed: int, shift: float, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    frame = make_frame(rows, seed=seed)
    frame["amount"] = frame["amount"] * (1 + shift)
    frame["velocity"] = np.round(frame["velocity"] + shift, 2)  # ties, on and off ECDF points
    if shift:
        frame.loc[frame.index[: int(rows * shift / 4)], "channel"] = 4  # an unseen category
    scores = np.random.default_rng(seed).beta(1 + shift, 10, rows)
    return feature_matrix(frame, SMALL_SPEC.feature_names), scores


def _by_summaries(
    profile: ReferenceProfile,
    X: np.ndarray,
    scores: np.ndarray,
    cuts: list[int],
    order: int,
    *,
    refine: bool = False,
) -> DriftSummaryResult:
    """The report from summaries of the pieces, merged in a random order; with ``refine`` the
    crossing intervals' values gathered from every piece (the second pass)."""
    bounds = sorted(set(cuts))
    pieces = list(zip(np.split(X, bounds), np.split(scores, bounds), strict=True))
    parts = [summarize(profile, a, b) for a, b in pieces]
    np.random.default_rng(order).shuffle(parts)  # any merge order
    summary = merge_all(parts)
    inside = None
    if refine:
        names = list(profile.features)
        inside = {}
        for name, slots in crossings(profile, summary).items():
            ref = profile.scores if name == SCORE_FEATURE else profile.features[name]
            assert isinstance(ref, NumericProfile)
            found = [
                values_in(ref, b if name == SCORE_FEATURE else a[:, names.index(name)], slots)
                for a, b in pieces
            ]
            inside[name] = np.concatenate(found)
    return finish_drift(profile, summary, CONFIG, inside)


def _rows(report: DriftReport) -> list[FeatureDrift]:
    assert report.score is not None
    return [*report.features, report.score]


def _assert_equal(local: DriftReport, result: DriftSummaryResult) -> None:
    merged = result.report
    assert merged.current_rows == local.current_rows and merged.exact == local.exact
    for mine, theirs in zip(_rows(local), _rows(merged), strict=True):
        assert mine.feature == theirs.feature
        for key in EXACT:
            a, b = getattr(mine, key), getattr(theirs, key)
            assert (a is None) == (b is None), (mine.feature, key)
            if a is not None:
                assert b == pytest.approx(a, rel=TOL, abs=TOL), (mine.feature, key, a, b)
        for key in EQUAL:
            assert getattr(theirs, key) == getattr(mine, key), (mine.feature, key)
        for key in CLOSE:
            assert getattr(theirs, key) == pytest.approx(getattr(mine, key), rel=TOL, abs=TOL)
        if mine.wasserstein is None:
            assert theirs.wasserstein is None
            continue
        assert theirs.wasserstein is not None
        gap = abs(theirs.wasserstein - mine.wasserstein)
        assert gap <= result.wasserstein_bounds[mine.feature] + TOL, (mine.feature, gap)
    for key in ("data_drift_detected", "drifted_features", "severity_counts", "max_severity"):
        assert getattr(merged, key) == getattr(local, key)
    for key in ("mean_psi", "max_psi", "median_psi", "mean_ks", "max_ks", "median_ks", "score_psi"):
        assert getattr(merged, key) == pytest.approx(getattr(local, key), rel=TOL, abs=TOL)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(sorted(PROFILES)),
    seed=st.integers(10, 10_000),
    shift=st.sampled_from([0.0, 0.03, 0.15, 0.6]),
    cuts=st.lists(st.integers(0, ROWS), max_size=12),
    order=st.integers(0, 1_000),
)
def test_merged_summaries_of_any_split_equal_compute_drift(
    kind: str, seed: int, shift: float, cuts: list[int], order: int
) -> None:
    profile = PROFILES[kind]
    X, scores = _window(seed, shift)
    local = compute_drift(profile, X, CONFIG, scores=scores)
    _assert_equal(local, _by_summaries(profile, X, scores, cuts, order))
    # With the crossing intervals' own values (the Dask path's second pass): exact.
    exact = _by_summaries(profile, X, scores, cuts, order, refine=True)
    _assert_equal(local, exact)
    assert not any(exact.wasserstein_bounds.values())
    for mine, theirs in zip(_rows(local), _rows(exact.report), strict=True):
        if mine.wasserstein is not None:
            assert theirs.wasserstein == pytest.approx(mine.wasserstein, rel=TOL, abs=TOL)


def test_a_shifted_window_shows_the_drift_and_the_same_verdict() -> None:
    profile = PROFILES["exact"]
    X, scores = _window(5, 0.6)
    local = compute_drift(profile, X, CONFIG, scores=scores)
    result = _by_summaries(profile, X, scores, [100, 4_000, 4_001, 9_000], 1)
    assert local.data_drift_detected and local.max_severity == "CRITICAL"
    assert local.feature("channel").chi2_pvalue is not None
    assert local.feature("channel").chi2_pvalue < 1e-6  # the unseen category
    _assert_equal(local, result)


def test_wasserstein_is_exact_where_the_ecdfs_do_not_cross() -> None:
    # Every current amount above every reference one: F_cur <= F_ref everywhere.
    profile = PROFILES["capped"]
    X, scores = _window(6, 0.0)
    amount = SMALL_SPEC.feature_names.index("amount")
    X[:, amount] += profile.features["amount"].stats["max"]
    local = compute_drift(profile, X, CONFIG, scores=scores)
    result = _by_summaries(profile, X, scores, [3_000, 7_000], 2)
    assert result.wasserstein_bounds["amount"] == 0.0
    theirs = result.report.feature("amount").wasserstein
    assert theirs == pytest.approx(local.feature("amount").wasserstein, rel=TOL)


def test_the_bounds_are_small_against_the_distances_they_bound() -> None:
    for kind, limit in (("exact", 0.02), ("capped", 0.2)):
        profile = PROFILES[kind]
        X, scores = _window(7, 0.03)
        result = _by_summaries(profile, X, scores, [6_000], 0)
        for row in _rows(result.report):
            if row.wasserstein is not None:
                assert result.wasserstein_bounds[row.feature] <= limit * row.wasserstein, kind


def test_missing_values_empty_windows_and_small_windows_are_refused() -> None:
    profile = PROFILES["exact"]
    X, scores = _window(8, 0.0)
    bad = X.copy()
    bad[117, SMALL_SPEC.feature_names.index("hour")] = np.nan  # in the second part
    parts = [summarize(profile, X[:100], scores[:100]), summarize(profile, bad[100:], scores[100:])]
    with pytest.raises(ValidationError, match="'hour' \\(1 rows\\)"):
        finish_drift(profile, merge_all(parts), CONFIG)
    with pytest.raises(ValidationError, match="'hour'"):  # as compute_drift does
        compute_drift(profile, pd.DataFrame(bad, columns=SMALL_SPEC.feature_names), CONFIG)
    scores_bad = scores.copy()
    scores_bad[3] = np.inf
    with pytest.raises(ValidationError, match="scores: 1 non-finite"):
        finish_drift(profile, summarize(profile, X, scores_bad), CONFIG)
    with pytest.raises(ValidationError, match="no rows"):
        merge_all([])
    with pytest.raises(ValidationError, match="no rows"):
        finish_drift(profile, summarize(profile, X[:0], scores[:0]), CONFIG)
    # A profile of at most 10,000 rows and a window as small: scipy's exact KS, not summaries.
    small = build_profile(
        X[:5_000], SMALL_SPEC, scores=scores[:5_000], baseline_metrics={}, threshold=0.5
    )
    assert needs_rows(small, 2_000) and not needs_rows(small, 10_001)
    assert not needs_rows(profile, 2_000)  # 20,000+ reference rows: summaries at any size
    with pytest.raises(ValueError, match="exact KS"):
        finish_drift(small, summarize(small, X[:2_000], scores[:2_000]), CONFIG)


def test_the_score_row_is_the_score_distribution() -> None:
    profile = PROFILES["exact"]
    X, scores = _window(9, 0.15)
    result = _by_summaries(profile, X, scores, [], 0)
    assert result.report.feature(SCORE_FEATURE).kind == "score"
    assert result.report.score_psi == result.report.feature(SCORE_FEATURE).psi
