"""Calibrated probabilities and the decision they feed.

A fraud model trained with ``scale_pos_weight`` (or SMOTE) ranks well but its scores are not
probabilities: at 0.5 % fraud they run ~200× too high. A decision in money (flag when the expected
loss ``p × amount`` is at least the cost of a review) and a label-free estimate of performance
(CBPE) both need ``p`` calibrated. The calibrator is isotonic regression fitted on held-out scores
at training time and stored with the model as its knots (JSON, no pickle); applying it is one
``np.interp``: what scikit-learn's ``IsotonicRegression.predict`` does when clipping.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from fraudops.errors import ValidationError


@dataclass(frozen=True)
class Calibrator:
    """Monotone map from a model's score to a probability: piecewise linear between knots."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> Calibrator:
        from sklearn.isotonic import IsotonicRegression

        s = np.asarray(scores, dtype=np.float64)
        t = np.asarray(labels).astype(np.float64)
        if s.shape != t.shape or s.ndim != 1 or len(s) == 0:
            raise ValidationError(
                f"calibration needs equal-length score and label vectors ({s.shape}, {t.shape})"
            )
        if t.min() == t.max():
            raise ValidationError(
                "calibration needs both classes in the held-out slice "
                f"({int(t.sum())} fraud rows of {len(t)})"
            )
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, t)
        return cls(
            tuple(float(v) for v in iso.X_thresholds_),
            tuple(float(v) for v in iso.y_thresholds_),
        )

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``scores`` (float64, clipped to the fitted range)."""
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibrator:
        if raw.get("method") != "isotonic":
            raise ValidationError(f"unknown calibration method {raw.get('method')!r}")
        x, y = raw.get("x") or [], raw.get("y") or []
        if len(x) != len(y) or not x or any(b < a for a, b in pairwise(x)):
            raise ValidationError("calibration knots must be two equal, non-empty, sorted lists")
        return cls(tuple(float(v) for v in x), tuple(float(v) for v in y))
