from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraudops.errors import ValidationError
from fraudops.training.evaluation import evaluate


def test_figures_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(5000) < 0.03).astype(int)
    scores = np.clip(rng.normal(0.2 + 0.4 * labels, 0.2), 0, 1)
    ev = evaluate(labels, scores, 0.5, cost_fn=100, cost_fp=5)
    predicted = scores >= 0.5
    tn, fp, fn, tp = confusion_matrix(labels, predicted).ravel()
    assert (ev.tp, ev.fp, ev.tn, ev.fn) == (tp, fp, tn, fn)
    assert ev.roc_auc == pytest.approx(roc_auc_score(labels, scores))
    assert ev.pr_auc == pytest.approx(average_precision_score(labels, scores))
    assert ev.precision == pytest.approx(precision_score(labels, predicted))
    assert ev.recall == pytest.approx(recall_score(labels, predicted))
    assert ev.f1 == pytest.approx(f1_score(labels, predicted))
    assert ev.total_cost == 100 * fn + 5 * fp
    assert ev.expected_cost == pytest.approx((100 * fn + 5 * fp) / 5000)
    assert (ev.n, ev.positives, ev.threshold) == (5000, labels.sum(), 0.5)


def test_to_dict_is_flat_and_prefixable() -> None:
    ev = evaluate(
        np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.6, 0.4]), 0.5, cost_fn=10, cost_fp=1
    )
    flat = ev.to_dict("val_")
    assert flat["val_roc_auc"] == 0.75 and flat["val_tp"] == 1 and flat["val_fp"] == 1
    assert {
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
        "f1",
        "tp",
        "fp",
        "tn",
        "fn",
        "expected_cost",
        "threshold",
        "n",
        "positives",
    } <= set(ev.to_dict())


def test_one_class_is_refused() -> None:
    with pytest.raises(ValidationError, match="one class only"):
        evaluate(np.zeros(10), np.linspace(0, 1, 10), 0.5, cost_fn=1, cost_fp=1)
