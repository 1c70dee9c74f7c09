"""The one vocabulary of figures: directions, and every figure against a direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.errors import ValidationError
from fraudops.metrics import BETTER, Metrics, better, compute_metrics, improves


def test_directions() -> None:
    assert better("fpr") == better("fnr") == better("fp") == "lower"
    assert better("roc_auc") == better("amount_caught") == "higher"
    assert improves("fpr", 0.01, 0.02) and not improves("fpr", 0.03, 0.02)
    assert improves("pr_auc", 0.45, 0.40, margin=0.05)
    assert not improves("pr_auc", 0.44, 0.40, margin=0.05)
    with pytest.raises(KeyError, match="no direction"):
        better("n")


def _slice(seed: int = 0, n: int = 5_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "day": rng.integers(0, 10, n),
            "card": rng.integers(0, 400, n),
            "score": np.round(rng.random(n), 3),
            "amount": rng.gamma(2, 50, n),
        }
    )
    frame["label"] = rng.random(n) < 0.02 + 0.2 * frame["score"] ** 4
    return frame


def test_figures_equal_a_direct_computation() -> None:
    f = _slice()
    flagged = (f["score"] * f["amount"] >= 60).to_numpy()
    m = compute_metrics(
        f["label"].to_numpy(),
        f["score"].to_numpy(),
        flagged,
        cost_fn=100,
        cost_fp=5,
        amounts=f["amount"].to_numpy(),
        days=f["day"].to_numpy(),
        cards=f["card"].to_numpy(),
        k=20,
    )
    y = f["label"].to_numpy()
    assert m.roc_auc == pytest.approx(roc_auc_score(y, f["score"]))
    assert m.pr_auc == pytest.approx(average_precision_score(y, f["score"]))
    assert m.tp == int((flagged & y).sum()) and m.fp == int((flagged & ~y).sum())
    assert m.amount_caught == pytest.approx(f["amount"][flagged & y].sum())
    assert m.amount_missed == pytest.approx(f["amount"][~flagged & y].sum())
    assert m.flagged_per_day == pytest.approx(flagged.sum() / 10)
    # precision@k per day, the pandas way
    top = f.sort_values(["day", "score"], ascending=[True, False]).groupby("day").head(20)
    assert m.precision_at_k == pytest.approx(top.groupby("day")["label"].mean().mean())
    # card precision@k: a card a day, ranked by its best score, fraud if any row is
    cards = f.groupby(["day", "card"]).agg(score=("score", "max"), label=("label", "any"))
    cards = cards.reset_index().sort_values(["day", "score"], ascending=[True, False])
    expected = cards.groupby("day").head(20).groupby("day")["label"].mean().mean()
    assert m.card_precision_at_k == pytest.approx(expected)


def test_round_trip_and_older_rows() -> None:
    f = _slice(1)
    m = compute_metrics(
        f["label"].to_numpy(),
        f["score"].to_numpy(),
        f["score"].to_numpy() > 0.9,
        cost_fn=100,
        cost_fp=5,
        threshold=0.9,
    )
    assert Metrics.from_dict(m.to_dict("holdout_"), prefix="holdout_") == m
    old = {k: v for k, v in m.to_dict().items() if k not in ("flagged", "fpr", "amount_caught")}
    back = Metrics.from_dict(old)
    assert back.flagged == m.flagged and back.amount_caught is None
    assert set(BETTER) <= set(m.to_dict())


def test_one_class_is_refused() -> None:
    with pytest.raises(ValidationError, match="one class only"):
        compute_metrics(np.zeros(4), np.zeros(4), np.zeros(4, bool), cost_fn=1, cost_fp=1)
