from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from fraudops.config import MonitoringSettings, load_settings
from fraudops.data.drift import generate_drifted_set
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError, ValidationError
from fraudops.lake.schemas import feature_drift_schema
from fraudops.models.profile import ReferenceProfile, build_profile, load_profile, save_profile
from fraudops.monitoring.drift import (
    CRITICAL,
    MODERATE,
    NORMAL,
    SCORE_FEATURE,
    WARNING,
    compute_drift,
    severity,
)
from fraudops.monitoring.statistics import kstwo_sf
from fraudops.spec import TRANSACTIONS30
from fraudops.training.features import feature_matrix
from tests.unit.training_fixtures import SMALL_SPEC, make_frame

TOL = 1e-9
NUMERIC = ["amount", "velocity", "hour"]
CATEGORICAL = ["online", "channel"]


def _profile(frame: pd.DataFrame, scores: np.ndarray | None = None) -> ReferenceProfile:
    X = feature_matrix(frame, SMALL_SPEC.feature_names)
    if scores is None:
        scores = np.random.default_rng(9).beta(1, 10, 500)
    return build_profile(X, SMALL_SPEC, scores=scores, baseline_metrics={}, threshold=0.5)


def _shifted(rows: int, seed: int) -> pd.DataFrame:
    frame = make_frame(rows, seed=seed)
    frame["amount"] = frame["amount"] * 1.15
    frame["velocity"] = np.round(frame["velocity"] + 0.05, 2)  # ties in the current window
    return frame


def _direct_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10, floor: float = 1e-4) -> float:
    # Decile cut points of the raw reference ("inverted_cdf": the smallest value reaching each
    # quantile), both sides histogrammed into the same bins, floored, summed.
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))
    if len(np.unique(ref)) <= bins:
        edges = np.unique(ref)
    e = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    a = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    e, a = np.maximum(e, floor), np.maximum(a, floor)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.mark.parametrize(
    ("ref_rows", "cur_rows"),
    [(30_000, 12_000), (3_000, 800)],  # scipy's asymptotic and exact KS distributions
    ids=["asymptotic", "exact"],
)
def test_numeric_statistics_equal_scipy(ref_rows: int, cur_rows: int) -> None:
    reference, current = make_frame(ref_rows, seed=1), _shifted(cur_rows, seed=2)
    profile = _profile(reference)
    report = compute_drift(profile, current, MonitoringSettings())
    for name in NUMERIC:
        ref = reference[name].to_numpy(np.float64)
        cur = current[name].to_numpy(np.float64)
        row = report.feature(name)
        expected = stats.ks_2samp(ref, cur)
        assert row.ks_statistic == pytest.approx(expected.statistic, abs=TOL, rel=TOL)
        assert row.ks_pvalue == pytest.approx(expected.pvalue, abs=TOL, rel=1e-6)
        assert row.chi2_statistic is None and row.kind == "numeric"
        normed = stats.wasserstein_distance(ref, cur) / max(ref.std(), 0.001)
        assert row.wasserstein == pytest.approx(normed, abs=TOL, rel=TOL)
        assert row.psi == pytest.approx(_direct_psi(ref, cur), abs=TOL, rel=TOL)
        shares = profile.features[name].bin_proportions(cur)  # type: ignore[union-attr]
        js = jensenshannon(profile.features[name].proportions, shares)
        assert row.jensen_shannon == pytest.approx(js, abs=TOL)
    assert report.feature("amount").pvalue < 0.05  # the 15% shift is seen
    assert report.feature("hour").pvalue > 0.05  # an unchanged feature is not


def test_categorical_chi_square_equals_scipy_with_an_unseen_category() -> None:
    reference, current = make_frame(20_000, seed=3), make_frame(6_000, seed=4)
    current.loc[current.index[:40], "channel"] = 4  # a code the reference never had
    current.loc[current.index[40:400], "online"] = 1
    report = compute_drift(_profile(reference), current, MonitoringSettings())
    for name in CATEGORICAL:
        ref, cur = reference[name].to_numpy(), current[name].to_numpy()
        codes = np.union1d(ref, cur)
        table = np.array([[np.sum(ref == c) for c in codes], [np.sum(cur == c) for c in codes]])
        statistic, pvalue, _, _ = stats.chi2_contingency(table)  # Yates for the binary one
        row = report.feature(name)
        assert row.chi2_statistic == pytest.approx(statistic, abs=TOL, rel=TOL)
        assert row.chi2_pvalue == pytest.approx(pvalue, abs=TOL, rel=1e-6)
        assert row.ks_statistic is None and row.wasserstein is None
        e, a = table[0] / table[0].sum(), table[1] / table[1].sum()
        floored_e, floored_a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
        psi = np.sum((floored_a - floored_e) * np.log(floored_a / floored_e))
        assert row.psi == pytest.approx(psi, abs=TOL, rel=TOL)
        assert row.jensen_shannon == pytest.approx(jensenshannon(e, a), abs=TOL)
    channel = report.feature("channel")
    assert channel.drifted and channel.chi2_pvalue is not None and channel.chi2_pvalue < 1e-6


def test_ks_pvalue_matches_scipy_in_every_branch() -> None:
    # n above and below scipy's 140 / 100,000 switches; n·d² around 2.2 and 370.
    n = np.array([73_800, 73_800, 73_800, 73_800, 5_000, 150, 60, 250_000, 99_999, 73_800.0])
    d = np.array([0.0005, 0.004, 0.0201, 0.08, 0.03, 0.05, 0.2, 0.003, 0.0004, 0.9])
    np.testing.assert_allclose(kstwo_sf(d, n), stats.kstwo.sf(d, n), atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize(
    ("effect", "pvalue", "expected"),
    [
        (0.25, 0.001, CRITICAL),
        (0.25, 0.2, WARNING),  # a large statistic that is not significant
        (0.2, 0.001, MODERATE),  # the thresholds are strict: KS > 0.2 for CRITICAL
        (0.15, 0.001, MODERATE),
        (0.1, 0.001, WARNING),
        (0.15, 0.05, WARNING),  # p < 0.05, not <=
        (0.05, 0.01, WARNING),
        (0.05, 0.5, NORMAL),
    ],
)
def test_seed_severity_rule(effect: float, pvalue: float, expected: str) -> None:
    assert severity(effect, pvalue, MonitoringSettings(), alpha=0.05) == expected


def test_per_feature_thresholds_override_the_decision() -> None:
    reference, current = make_frame(20_000, seed=1), _shifted(8_000, seed=2)
    profile = _profile(reference)
    plain = compute_drift(profile, current, MonitoringSettings())
    assert plain.feature("amount").drifted
    strict = MonitoringSettings(feature_thresholds={"amount": {"psi": 5.0, "ks_pvalue": 1e-300}})
    relaxed = compute_drift(profile, current, strict)
    amount = relaxed.feature("amount")
    assert not amount.drifted and amount.psi_threshold == 5.0
    assert amount.ks_pvalue == plain.feature("amount").ks_pvalue  # values unchanged
    assert relaxed.drifted_count == plain.drifted_count - 1
    with pytest.raises(ConfigError, match="unknown keys"):
        load_settings(monitoring={"feature_thresholds": {"amount": {"pvalue": 0.01}}})


def test_report_aggregates_rows_and_json() -> None:
    reference, current = make_frame(20_000, seed=1), _shifted(8_000, seed=2)
    scores = np.random.default_rng(1).beta(1, 10, 4_000)
    profile = _profile(reference, scores=scores)
    report = compute_drift(profile, current, MonitoringSettings(), scores=scores * 1.5)
    psis = [f.psi for f in report.features]
    assert report.mean_psi == pytest.approx(np.mean(psis))
    assert report.max_psi == max(psis) and report.median_psi == pytest.approx(np.median(psis))
    assert report.drifted_count == sum(f.drifted for f in report.features)
    assert report.drifted_share == report.drifted_count / 5
    assert sum(report.severity_counts.values()) == 5 and report.exact
    assert report.score is not None and report.score.drifted  # scores × 1.5 is visible
    expected = stats.ks_2samp(scores, scores * 1.5)
    assert report.score.ks_statistic == pytest.approx(expected.statistic, abs=TOL)
    assert report.score.ks_pvalue == pytest.approx(expected.pvalue, abs=TOL, rel=1e-6)

    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    rows = report.table_rows("run-1", as_of)
    columns = [f.name for f in feature_drift_schema(SMALL_SPEC).fields]
    assert [list(r) for r in rows] == [columns] * 6
    assert rows[-1]["feature"] == SCORE_FEATURE
    assert json.loads(json.dumps(report.to_dict()))["drifted_count"] == report.drifted_count


def test_a_saved_profile_gives_the_same_report(tmp_path: Path) -> None:
    reference, current = make_frame(20_000, seed=1), _shifted(8_000, seed=2)
    profile = _profile(reference)
    again = load_profile(save_profile(profile, tmp_path / "ref"))
    first = compute_drift(profile, current, MonitoringSettings()).to_dict()
    second = compute_drift(again, current, MonitoringSettings()).to_dict()
    assert first == second


def test_bad_windows_are_clear_errors() -> None:
    profile = _profile(make_frame(2_000, seed=1))
    current = make_frame(100, seed=2)
    with pytest.raises(ValidationError, match="velocity"):
        compute_drift(profile, current.drop(columns=["velocity"]), MonitoringSettings())
    current.loc[current.index[3], "hour"] = np.nan
    with pytest.raises(ValidationError, match="hour"):
        compute_drift(profile, current, MonitoringSettings())
    with pytest.raises(ValidationError, match="5 columns"):
        compute_drift(profile, np.zeros((10, 4)), MonitoringSettings())
    with pytest.raises(ValidationError, match="no rows"):
        compute_drift(profile, np.zeros((0, 5)), MonitoringSettings())


# ---- seed 000's generator --------------------------------------------------------------------

SEED_ROWS = 30_000  # reference and window of the same size: the generator's velocity features
# depend on rows per month, so a fresh sample of the training distribution has the same size.


@pytest.fixture(scope="module")
def seed_profile() -> ReferenceProfile:
    data = load_settings().data
    frame = generate_transactions(data, TRANSACTIONS30, rows=SEED_ROWS, seed=data.seed)
    X = feature_matrix(frame, TRANSACTIONS30.feature_names)
    return build_profile(X, TRANSACTIONS30, scores=np.zeros(10), baseline_metrics={}, threshold=0.5)


def test_run3_flags_credit_limit_critical(seed_profile: ReferenceProfile) -> None:
    data = load_settings().data
    drifted, _ = generate_drifted_set(data, TRANSACTIONS30, pattern="run3")
    report = compute_drift(seed_profile, drifted, MonitoringSettings())
    credit = report.feature("credit_limit")
    assert credit.severity == CRITICAL and credit.drifted
    assert credit.ks_statistic is not None and credit.ks_statistic > 0.5
    # Seed 000 quotes PSI ~74; with its own rule (reference deciles, 0.0001 floor) PSI cannot
    # exceed ~10 × 0.1 × ln(1000) ≈ 7: nearly every row leaving the top decile gives ~5.
    assert credit.psi > 4
    assert report.feature("merchant_category_code").drifted  # run3's second rule
    assert "credit_limit" in report.drifted_features and report.max_severity == CRITICAL
    assert report.data_drift_detected and report.features_analyzed == 30


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_fresh_samples_of_the_training_distribution_raise_no_alarm(
    seed_profile: ReferenceProfile, seed: int
) -> None:
    data = load_settings().data
    fresh = generate_transactions(
        data, TRANSACTIONS30, rows=SEED_ROWS, seed=seed, customer_seed=data.seed
    )
    report = compute_drift(seed_profile, fresh, MonitoringSettings())
    # Nothing MODERATE or CRITICAL, no PSI even at the warning level: no data drift.
    assert not report.data_drift_detected
    assert report.severity_counts[MODERATE] == report.severity_counts[CRITICAL] == 0
    assert report.max_psi < 0.1 and report.max_ks is not None and report.max_ks < 0.05
    # The seed's decision rule is a per-feature 5% test: a few of the 30 features reach p < 0.05
    # by chance (WARNING). A family-wise level (0.05 / 30 features) flags nothing at all.
    assert report.drifted_count <= 4
    family = MonitoringSettings(ks_pvalue=0.05 / len(TRANSACTIONS30.features))
    assert compute_drift(seed_profile, fresh, family).drifted_count == 0
