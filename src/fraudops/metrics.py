"""One vocabulary for a model's figures: what each is, which way is better, how it is computed.

Evaluation at training time, the gate, the shadow comparison, monitoring and the dashboard all
read and write ``Metrics``; the JSON columns (``monitoring_runs.summary``, ``model_events.metrics``)
go through ``to_dict``/``from_dict``. Beside ROC/PR-AUC the figures are the fraud team's:
recall and precision at the operating point, flagged per day, precision@k and card precision@k
per day (k = the daily alert budget; Dal Pozzolo et al.'s "Card Precision top-k": a card counts
once a day, a hit when any of its transactions of the day in the top k is a fraud), and the fraud
amount caught and missed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

from fraudops.errors import ValidationError

Better = Literal["higher", "lower"]

# Which way is better, for every figure a comparison may weigh. Counts of rows (n, positives,
# flagged) are descriptions, not judgements: they have no direction.
BETTER: dict[str, Better] = {
    "roc_auc": "higher",
    "pr_auc": "higher",
    "precision": "higher",
    "recall": "higher",
    "f1": "higher",
    "tp": "higher",
    "tn": "higher",
    "fp": "lower",
    "fn": "lower",
    "fpr": "lower",
    "fnr": "lower",
    "expected_cost": "lower",
    "total_cost": "lower",
    "amount_caught": "higher",
    "amount_missed": "lower",
    "amount_caught_share": "higher",
    "precision_at_k": "higher",
    "card_precision_at_k": "higher",
}


def better(name: str) -> Better:
    """Which way ``name`` is better; a KeyError names an unknown or direction-less figure."""
    try:
        return BETTER[name]
    except KeyError:
        raise KeyError(f"{name!r} has no direction: one of {', '.join(BETTER)}") from None


def improves(name: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """``candidate`` beats ``reference`` on ``name`` by at least ``margin`` (in its units)."""
    if better(name) == "higher":
        return candidate >= reference + margin
    return candidate <= reference - margin


@dataclass(frozen=True)
class Metrics:
    """A scored slice's figures at one operating point. Money figures are None when the spec
    has no amount; the per-day ones when the rows carry no day."""

    n: int
    positives: int
    flagged: int
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    tn: int
    fn: int
    fpr: float
    fnr: float
    expected_cost: float  # (cost_fn * fn + cost_fp * fp) per transaction
    total_cost: float
    threshold: float | None = None  # the score cut, when the operating point is one
    amount_caught: float | None = None
    amount_missed: float | None = None
    amount_caught_share: float | None = None
    flagged_per_day: float | None = None
    precision_at_k: float | None = None
    card_precision_at_k: float | None = None
    k: int | None = None

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], prefix: str = "") -> Metrics:
        """The figures of a stored row (unknown keys ignored, figures of older rows None)."""
        values = {f.name: raw.get(f"{prefix}{f.name}") for f in fields(cls)}
        missing = [k for k in ("n", "positives", "roc_auc") if values[k] is None]
        if missing:
            raise ValidationError(f"stored metrics lack {missing}")
        for name in ("flagged",):
            if values[name] is None:
                values[name] = int((values.get("tp") or 0) + (values.get("fp") or 0))
        return cls(**values)  # type: ignore[arg-type]  # checked above: the required ones are set

    def figure(self, name: str) -> float | None:
        value = getattr(self, name)
        return None if value is None else float(value)


def compute_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    flagged: np.ndarray,
    *,
    cost_fn: float,
    cost_fp: float,
    threshold: float | None = None,
    amounts: np.ndarray | None = None,
    days: np.ndarray | None = None,
    cards: np.ndarray | None = None,
    k: int | None = None,
) -> Metrics:
    """Every figure of one slice: ``flagged`` is the operating point's decision per row;
    ``days`` (any per-day label, e.g. dates) gives flagged per day and, with ``k``, precision@k
    per day (the top ``k`` scores of each day); ``cards`` makes card precision@k."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(flagged, dtype=bool)
    if not (y.shape == s.shape == f.shape) or y.ndim != 1:
        raise ValidationError(
            f"labels {y.shape}, scores {s.shape} and flags {f.shape} must be equal-length vectors"
        )
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValidationError(
            f"cannot evaluate on a slice with one class only ({positives} fraud rows of {len(y)})"
        )
    tp = int(np.sum(f & y))
    fp = int(np.sum(f & ~y))
    fn = positives - tp
    tn = len(y) - positives - fp
    total_cost = cost_fn * fn + cost_fp * fp
    money: dict[str, float | None] = dict.fromkeys(
        ("amount_caught", "amount_missed", "amount_caught_share")
    )
    if amounts is not None:
        a = np.asarray(amounts, dtype=np.float64)
        caught, missed = float(a[y & f].sum()), float(a[y & ~f].sum())
        money = {
            "amount_caught": caught,
            "amount_missed": missed,
            "amount_caught_share": caught / (caught + missed) if caught + missed else 0.0,
        }
    per_day, at_k, card_at_k = None, None, None
    if days is not None:
        d = np.asarray(days)
        day_codes, day_index = np.unique(d, return_inverse=True)
        per_day = float(f.sum() / len(day_codes))
        if k is not None and k > 0:
            at_k, card_at_k = _precision_at_k(y, s, day_index, cards, k)
    return Metrics(
        n=len(y),
        positives=positives,
        flagged=int(f.sum()),
        roc_auc=float(roc_auc_score(y, s)),
        pr_auc=float(average_precision_score(y, s)),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / positives,
        f1=2 * tp / (2 * tp + fp + fn),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        fpr=fp / (fp + tn) if fp + tn else 0.0,
        fnr=fn / positives,
        expected_cost=float(total_cost / len(y)),
        total_cost=float(total_cost),
        threshold=None if threshold is None else float(threshold),
        flagged_per_day=per_day,
        precision_at_k=at_k,
        card_precision_at_k=card_at_k,
        k=k if days is not None else None,
        **money,
    )


def _precision_at_k(
    y: np.ndarray, s: np.ndarray, day: np.ndarray, cards: np.ndarray | None, k: int
) -> tuple[float, float | None]:
    """Mean over days of the fraud share of each day's top-k transactions (and of its top-k
    cards, a card ranked by its highest score of the day)."""
    order = np.lexsort((-s, day))  # by day, then score descending
    d, yy = day[order], y[order]
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    rank = np.arange(len(d)) - np.repeat(starts, np.diff(np.r_[starts, len(d)]))
    top = rank < k
    hits = np.bincount(d[top], weights=yy[top], minlength=int(d.max()) + 1)
    taken = np.bincount(d[top], minlength=int(d.max()) + 1)
    days_present = np.unique(d)
    at_k = float(np.mean(hits[days_present] / taken[days_present]))
    if cards is None:
        return at_k, None
    # A card a day: its best score, fraud when any of its transactions that day is one.
    c = np.unique(np.asarray(cards)[order], return_inverse=True)[1]
    key = d.astype(np.int64) * (int(c.max()) + 1) + c
    # ``key`` runs in (day, score descending) order: a card's first row is its best of the day
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    fraud_any = np.zeros(len(first), bool)
    np.logical_or.at(fraud_any, inverse, yy)
    cd, cs = d[first], s[order][first]
    corder = np.lexsort((-cs, cd))
    cd, cy = cd[corder], fraud_any[corder]
    cstarts = np.flatnonzero(np.r_[True, cd[1:] != cd[:-1]])
    crank = np.arange(len(cd)) - np.repeat(cstarts, np.diff(np.r_[cstarts, len(cd)]))
    ctop = crank < k
    chits = np.bincount(cd[ctop], weights=cy[ctop], minlength=int(d.max()) + 1)
    ctaken = np.bincount(cd[ctop], minlength=int(d.max()) + 1)
    card_at_k = float(np.mean(chits[days_present] / ctaken[days_present]))
    return at_k, card_at_k
