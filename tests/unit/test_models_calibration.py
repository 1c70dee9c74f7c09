"""The isotonic calibrator: scikit-learn's fit, applied by np.interp, stored as JSON knots."""

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


def test_equals_sklearn_predict_and_round_trips() -> None:
    scores, y, _ = _inflated()
    cal = Calibrator.fit(scores, y)
    probe = np.linspace(-0.1, 1.1, 997)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y)
    np.testing.assert_array_equal(cal(probe), iso.predict(probe))
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again(probe), cal(probe))


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
