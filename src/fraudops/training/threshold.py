"""The decision threshold, chosen on the validation slice by the configured policy.

Every distinct score is a candidate cut (fraud when ``score >= threshold``), plus "flag nothing".
The confusion counts of all cuts come from one sort and two cumulative sums, so the choice is
exact and O(n log n) rather than a scan of a fixed grid of thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, get_args

import numpy as np

from fraudops.config import ThresholdPolicy
from fraudops.errors import ValidationError

Policy = ThresholdPolicy
POLICIES: tuple[str, ...] = get_args(ThresholdPolicy)


@dataclass(frozen=True)
class OperatingPoints:
    """Confusion counts at each candidate threshold, highest threshold first."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    positives: int
    negatives: int

    @property
    def recall(self) -> np.ndarray:
        return self.tp / self.positives

    @property
    def precision(self) -> np.ndarray:
        flagged = self.tp + self.fp
        return np.divide(
            self.tp, flagged, out=np.zeros_like(self.tp, dtype=float), where=flagged > 0
        )

    @property
    def f1(self) -> np.ndarray:
        return 2 * self.tp / (self.tp + self.fp + self.positives)

    def cost(self, cost_fn: float, cost_fp: float) -> np.ndarray:
        return cost_fn * (self.positives - self.tp) + cost_fp * self.fp


@dataclass(frozen=True)
class ThresholdChoice:
    policy: str
    threshold: float
    precision: float
    recall: float
    f1: float
    expected_cost: float  # per transaction of the slice

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def operating_points(labels: np.ndarray, scores: np.ndarray) -> OperatingPoints:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be equal-length vectors")
    positives = int(y.sum())
    if positives == 0:
        raise ValidationError("the validation slice has no fraud rows: no threshold can be chosen")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # Last index of each run of equal scores: the cut "score >= s[i]" flags rows 0..i.
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    none = np.nextafter(s[0], np.inf)  # "flag nothing": a cut just above the top score
    return OperatingPoints(
        thresholds=np.r_[none, s[last]],
        tp=np.r_[0, tp],
        fp=np.r_[0, fp],
        positives=positives,
        negatives=len(y) - positives,
    )


def choose_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    policy: str,
    *,
    target_recall: float = 0.8,
    cost_fn: float = 100.0,
    cost_fp: float = 5.0,
) -> ThresholdChoice:
    """The cut the policy prefers; ties go to the highest threshold (fewest alerts)."""
    points = operating_points(labels, scores)
    if policy == "best_f1":
        index = int(np.argmax(points.f1))
    elif policy == "target_recall":
        # Recall only grows as the threshold falls: the first cut that reaches the target.
        index = int(np.argmax(points.recall >= target_recall - 1e-12))
    elif policy == "min_cost":
        index = int(np.argmin(points.cost(cost_fn, cost_fp)))
    else:
        raise ValidationError(f"unknown threshold policy {policy!r}: use one of {POLICIES}")
    n = points.positives + points.negatives
    return ThresholdChoice(
        policy=policy,
        threshold=float(points.thresholds[index]),
        precision=float(points.precision[index]),
        recall=float(points.recall[index]),
        f1=float(points.f1[index]),
        expected_cost=float(points.cost(cost_fn, cost_fp)[index] / n),
    )
