"""Holdout (and validation) figures of a scored slice at a fixed decision threshold.

ROC-AUC and PR-AUC (average precision, the usual step-wise area) are threshold-free; precision,
recall, F1, the confusion matrix and the expected cost are taken at ``score >= threshold``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.errors import ValidationError


@dataclass(frozen=True)
class Evaluation:
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    tn: int
    fn: int
    expected_cost: float  # (cost_fn * fn + cost_fp * fp) per transaction
    total_cost: float
    threshold: float
    n: int
    positives: int

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}


def evaluate(
    labels: np.ndarray, scores: np.ndarray, threshold: float, *, cost_fn: float, cost_fp: float
) -> Evaluation:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValidationError(
            f"cannot evaluate on a slice with one class only ({positives} fraud rows of {len(y)})"
        )
    flagged = s >= threshold
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = positives - tp
    tn = len(y) - positives - fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives
    f1 = 2 * tp / (2 * tp + fp + fn)
    total_cost = cost_fn * fn + cost_fp * fp
    return Evaluation(
        roc_auc=float(roc_auc_score(y, s)),
        pr_auc=float(average_precision_score(y, s)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        expected_cost=float(total_cost / len(y)),
        total_cost=float(total_cost),
        threshold=float(threshold),
        n=len(y),
        positives=positives,
    )
