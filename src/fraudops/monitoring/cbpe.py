"""Performance without labels (CBPE), and the fast signal that tells concept drift from it.

**CBPE** (NannyML's confidence-based performance estimation): when a model's probabilities are
calibrated, row ``i`` is a fraud with probability ``p_i``, so the confusion matrix at the operating
point has expectation ``TP = Σ p_i·flag_i``, ``FP = Σ (1−p_i)·flag_i``, ``FN = Σ p_i·(1−flag_i)``,
``TN`` the rest. The figures are estimated from those labels-in-expectation. Their uncertainty is
the spread of the figure the labels *will* give: labels are drawn ``y_i ~ Bernoulli(p_i)``
(``draws`` times, seeded) and the realized figure computed for each draw; the 2.5–97.5 %
quantiles are the 95 % interval. So the interval carries the sampling error of a small window
(a week holds ~35 frauds at 1,000 transactions a day: its realized ROC-AUC moves by ~±0.03 by
chance alone), and a realized value outside it says the probabilities no longer describe the
traffic.

**Recall on confirmed frauds**: confirmed frauds come back within days while confirmations of
legitimate traffic take weeks. The share of frauds confirmed so far that the model flagged needs
no legitimate label. When the confirmation of a fraud does not depend on its score, those frauds
are a random sample of the window's frauds, and under the model's probabilities each one was
flagged with probability ``E[recall] = Σ p·flag / Σ p``. **Concept drift is suspected** when the
flagged count among confirmed frauds is improbably low under that expectation (one-sided binomial
p-value below ``alpha``, with at least ``min_confirmed`` confirmed): the frauds are not the ones the
model sees as risky, which covariate shift alone (the inputs moving, the calibrated map holding)
does not do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from fraudops.errors import ValidationError

DRAWS = 200


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Estimate:
    """CBPE's figures for one window of predictions (expected counts, figures, 95 % intervals)."""

    n: int
    expected_frauds: float
    tp: float
    fp: float
    fn: float
    tn: float
    roc_auc: Interval
    pr_auc: Interval
    recall: Interval
    precision: Interval
    draws: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    probabilities: np.ndarray,
    scores: np.ndarray,
    flagged: np.ndarray,
    *,
    draws: int = DRAWS,
    seed: int = 0,
) -> Estimate:
    """CBPE over one window. ``probabilities``: calibrated; ``scores``: what the model ranks by
    (ROC/PR-AUC are of the scores); ``flagged``: the operating point's decisions."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(flagged, dtype=bool)
    if not (p.shape == s.shape == f.shape) or p.ndim != 1:
        raise ValidationError(
            f"CBPE needs equal-length vectors (probabilities {p.shape}, scores {s.shape}, "
            f"flags {f.shape})"
        )
    if len(p) < 2:
        raise ValidationError(f"CBPE needs at least two predictions (got {len(p)})")
    rng = np.random.default_rng(seed)
    # Labels drawn in chunks of draws so a 30-day window stays a few MB per chunk.
    aucs, aps, recalls, precisions = [], [], [], []
    order = np.argsort(-s, kind="stable")
    ranks = stats.rankdata(s)  # average ranks of ties, as roc_auc_score treats them
    for start in range(0, draws, 50):
        y = rng.random((min(50, draws - start), len(p))) < p
        aucs.append(_auc(y, ranks))
        aps.append(_average_precision(y[:, order], s[order]))
        pos = y.sum(axis=1)
        hits = (y & f).sum(axis=1)
        recalls.append(np.divide(hits, pos, out=np.full(len(pos), np.nan), where=pos > 0))
        flagged_n = int(f.sum())
        precisions.append(hits / flagged_n if flagged_n else np.full(len(pos), np.nan))
    tp = float(np.sum(p * f))
    fp = float(np.sum((1 - p) * f))
    fn = float(np.sum(p * ~f))
    tn = float(np.sum((1 - p) * ~f))
    expected = tp + fn
    return Estimate(
        n=len(p),
        expected_frauds=expected,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        roc_auc=_interval(_expected_auc(p, s), np.concatenate(aucs)),
        pr_auc=_interval(float(np.nanmean(np.concatenate(aps))), np.concatenate(aps)),
        recall=_interval(tp / expected if expected else 0.0, np.concatenate(recalls)),
        precision=_interval(tp / (tp + fp) if tp + fp else 0.0, np.concatenate(precisions)),
        draws=draws,
    )


def _interval(value: float, samples: np.ndarray) -> Interval:
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return Interval(value, float("nan"), float("nan"))
    low, high = np.quantile(finite, [0.025, 0.975])
    return Interval(float(value), float(low), float(high))


def _expected_auc(p: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC in expectation: E[U] / E[pairs], over pairs of distinct rows (i positive, j
    negative), a tie of scores counting one half, as roc_auc_score does."""
    order = np.argsort(s, kind="stable")
    ss, pp = s[order], p[order]
    q = 1.0 - pp
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    group = np.cumsum(np.r_[True, ss[1:] != ss[:-1]]) - 1
    q_before = np.r_[0.0, np.cumsum(q)][starts][group]  # negatives strictly below
    q_group = np.add.reduceat(q, starts)[group]
    pairs = pp.sum() * q.sum() - float(np.dot(pp, q))
    if pairs <= 0:
        return float("nan")
    return float(np.dot(pp, q_before + 0.5 * (q_group - q)) / pairs)


def _auc(y: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Row-wise ROC-AUC of label draws ``y`` (draws × n) for one score vector (its ranks)."""
    pos = y.sum(axis=1).astype(np.float64)
    neg = y.shape[1] - pos
    rank_sum = y.astype(np.float64) @ ranks
    u = rank_sum - pos * (pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan)


def _average_precision(y_sorted: np.ndarray, s_sorted: np.ndarray) -> np.ndarray:
    """Row-wise average precision (scikit-learn's step-wise PR-AUC) of label draws sorted by
    descending score; ties of scores are one threshold, as scikit-learn treats them."""
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])  # end of each tie run
    tp = np.cumsum(y_sorted, axis=1)[:, last].astype(np.float64)
    flagged = (last + 1).astype(np.float64)
    pos = tp[:, -1]
    precision = tp / flagged
    recall_step = np.diff(np.concatenate([np.zeros((len(tp), 1)), tp], axis=1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pos > 0, (precision * recall_step).sum(axis=1) / pos, np.nan)


@dataclass(frozen=True)
class ConfirmedRecall:
    """Recall on the frauds confirmed so far, beside what the probabilities expect."""

    confirmed: int
    flagged: int
    recall: Interval  # Wilson 95 % interval of the realized share
    expected_recall: float
    pvalue: float  # P(this few flagged | expected recall), one-sided
    concept_drift_suspected: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confirmed_recall(
    flagged_of_confirmed: np.ndarray,
    expected_recall: float,
    *,
    alpha: float = 0.01,
    min_confirmed: int = 10,
) -> ConfirmedRecall:
    """The fast signal: of the frauds confirmed so far, the share the model flagged; concept
    drift suspected when improbably few were flagged under ``expected_recall`` (CBPE's)."""
    flags = np.asarray(flagged_of_confirmed, dtype=bool)
    n, k = len(flags), int(flags.sum())
    share = k / n if n else float("nan")
    low, high = _wilson(k, n)
    pvalue = float(stats.binom.cdf(k, n, expected_recall)) if n else 1.0
    return ConfirmedRecall(
        confirmed=n,
        flagged=k,
        recall=Interval(share, low, high),
        expected_recall=float(expected_recall),
        pvalue=pvalue,
        concept_drift_suspected=n >= min_confirmed and pvalue < alpha,
    )


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
