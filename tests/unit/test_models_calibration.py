"""The centred isotonic calibrator: scikit-learn's staircase, its knots at the steps' centres,
interpolated in log-odds, stored as JSON knots; an earlier version's staircase still applies."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from fraudops.errors import ValidationError
from fraudops.models.calibration import Calibrator


def _inflated(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores ~200x too high for a 0.5 % base rate (as scale_pos_weight makes them)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 60, n)  # true fraud probabilities, mean ~0.5 %
    y = (rng.random(n) < p).astype(int)
    scores = 1 - (1 - p) ** 200
    return scores, y, p


def test_the_steps_centres_keep_sklearns_values_and_it_rises_between_them() -> None:
    scores, y, _ = _inflated()
    cal = Calibrator.fit(scores, y)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y)
    centres = np.array(cal.x)
    np.testing.assert_allclose(cal(centres), iso.predict(centres), atol=1e-12)
    assert set(np.round(cal.y, 12)) == set(np.round(iso.y_thresholds_, 12))  # one knot a step
    # Inside one step of the staircase the centred map still tells the scores apart.
    low, high = centres[-3], centres[-2]
    between = np.array([low + (high - low) * 0.25, low + (high - low) * 0.75])
    assert cal(between)[0] < cal(between)[1]
    probe = np.linspace(-0.1, 1.1, 997)
    assert np.all(np.diff(cal(probe)) >= 0)
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again(probe), cal(probe))


def test_a_staircase_stored_by_an_earlier_version_applies_as_it_was_fitted() -> None:
    scores, y, _ = _inflated()
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y)
    raw = {"method": "isotonic", "x": list(iso.X_thresholds_), "y": list(iso.y_thresholds_)}
    probe = np.linspace(-0.1, 1.1, 997)
    np.testing.assert_array_equal(Calibrator.from_dict(raw)(probe), iso.predict(probe))


def test_calibrated_probabilities_match_the_base_rate() -> None:
    scores, y, _ = _inflated(seed=1)
    cal = Calibrator.fit(scores, y)
    held_scores, held_y, _ = _inflated(seed=2)
    assert scores.mean() > 20 * y.mean()  # the raw scores are far too high
    # calibrated, the expected number of frauds matches the realized one within sampling error
    expected = cal(held_scores).sum()
    assert abs(expected - held_y.sum()) < 4 * np.sqrt(held_y.sum())
    assert np.all(np.diff(cal(np.sort(held_scores))) >= 0)  # monotone: ranking kept


def test_refuses_one_class_and_bad_knots() -> None:
    with pytest.raises(ValidationError, match="both classes"):
        Calibrator.fit(np.array([0.1, 0.2]), np.array([0, 0]))
    with pytest.raises(ValidationError, match="sorted"):
        Calibrator.from_dict({"method": "isotonic", "x": [0.5, 0.1], "y": [0.0, 1.0]})
    with pytest.raises(ValidationError, match="method"):
        Calibrator.from_dict({"method": "platt", "x": [0.0], "y": [0.0]})
