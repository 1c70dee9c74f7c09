"""Holdout (and validation) figures of a scored slice at the model's operating point.

One vocabulary: the figures are ``fraudops.metrics.Metrics``, computed by ``compute_metrics`` (the
same code monitoring uses). ROC-AUC and PR-AUC are threshold-free; precision, recall, F1, the
confusion matrix, the cost and the amounts are taken at the operating point's decisions
(``flagged``; default ``score >= threshold``); flagged per day and precision@k need the rows'
days, card precision@k their cards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.metrics import Metrics, compute_metrics
from fraudops.spec import FeatureSpec

# The figures of a training evaluation are the shared ones (kept as a name for its readers).
Evaluation = Metrics


@dataclass(frozen=True)
class SliceContext:
    """What a slice's rows carry beside (score, label): the amount, the day, the card (each None
    when the spec or the engine has none)."""

    amounts: np.ndarray | None = None
    days: np.ndarray | None = None
    cards: np.ndarray | None = None


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    *,
    cost_fn: float,
    cost_fp: float,
    flagged: np.ndarray | None = None,
    context: SliceContext | None = None,
    k: int | None = None,
) -> Metrics:
    """The slice's figures: ``flagged`` is the operating point's decision per row (default
    ``scores >= threshold``); ``k`` the alert budget of precision@k."""
    if flagged is None:
        if threshold is None:
            raise ValueError("evaluate needs the decisions (flagged) or a threshold")
        flagged = np.asarray(scores, dtype=np.float64) >= threshold
    ctx = context or SliceContext()
    return compute_metrics(
        labels,
        scores,
        flagged,
        cost_fn=cost_fn,
        cost_fp=cost_fp,
        threshold=threshold,
        amounts=ctx.amounts,
        days=ctx.days,
        cards=ctx.cards,
        k=k,
    )


def context_of(frame: pd.DataFrame, spec: FeatureSpec) -> SliceContext:
    """A slice's amounts (the spec's amount feature), days (of its timestamp: UTC dates, or whole
    days of a seconds timestamp) and cards (the customer column), from whichever it holds."""
    amounts = days = cards = None
    if spec.amount_column and spec.amount_column in frame.columns:
        amounts = frame[spec.amount_column].to_numpy(dtype=np.float64)
    if spec.timestamp_column in frame.columns:
        column = frame[spec.timestamp_column]
        if spec.timestamp_kind == "datetime":
            days = pd.to_datetime(column, utc=True).dt.floor("D").to_numpy()
        else:
            days = np.floor(column.to_numpy(dtype=np.float64) / 86400.0)
    if spec.customer_column and spec.customer_column in frame.columns:
        cards = frame[spec.customer_column].astype(str).to_numpy()
    return SliceContext(amounts, days, cards)


def context_columns(spec: FeatureSpec) -> list[str]:
    """The raw columns ``context_of`` reads."""
    names = [spec.amount_column, spec.timestamp_column, spec.customer_column]
    return list(dict.fromkeys(n for n in names if n))
