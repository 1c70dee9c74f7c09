"""The operating point: which transactions a model flags for review.

Fraud teams do not work at best F1. The policies (``training.decision``):

- ``expected_loss`` (default): flag when the calibrated probability × the amount is at least the
  cost of a review (``cost_fp``); without an amount column, when ``p × cost_fn ≥ cost_fp``. A
  per-transaction decision in money, the optimal one when ``p`` is calibrated: a $2,000 purchase
  at 1 % risk is worth a look, a $5 one at 20 % is not.
- ``alert_budget``: investigators review ``alerts_per_day``; the score cut that flags that many a
  day on the validation slice (its days counted from its timestamps).
- ``best_f1``, ``min_cost``, ``target_recall``: one score cut chosen on the validation slice
  (``fraudops.training.threshold``), as before.

The point is stored with the model (the manifest's ``decision``) beside its calibrator, and used
alike by serving, batch scoring, evaluation and monitoring: ``flag(scores, amounts)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np

from fraudops.errors import ValidationError
from fraudops.models.calibration import Calibrator

Decision = Literal["expected_loss", "alert_budget", "best_f1", "min_cost", "target_recall"]
DECISIONS: tuple[str, ...] = get_args(Decision)
SCORE_CUTS = frozenset({"alert_budget", "best_f1", "min_cost", "target_recall"})


@dataclass(frozen=True)
class OperatingPoint:
    policy: str
    cost_fp: float
    cost_fn: float
    threshold: float | None = None  # the score cut of a cut policy
    uses_amount: bool = False  # expected_loss weighs each row's amount
    alerts_per_day: int | None = None
    # The model feature holding the amount (the spec's amount_column): what a scorer that sees
    # only the feature matrix reads the amounts from.
    amount_feature: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in DECISIONS:
            raise ValidationError(
                f"unknown decision {self.policy!r}: use one of {', '.join(DECISIONS)}"
            )
        if self.policy in SCORE_CUTS and self.threshold is None:
            raise ValidationError(f"decision {self.policy!r} needs its score cut (threshold)")

    def flag(
        self,
        scores: np.ndarray,
        calibrator: Calibrator | None = None,
        amounts: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which rows are flagged (bool per row)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.policy in SCORE_CUTS:
            assert self.threshold is not None
            return s >= self.threshold
        if calibrator is None:
            raise ValidationError("the expected_loss decision needs the model's calibrator")
        p = calibrator(s)
        if self.uses_amount:
            if amounts is None:
                raise ValidationError("the expected_loss decision needs each row's amount")
            return p * np.asarray(amounts, dtype=np.float64) >= self.cost_fp
        return p * self.cost_fn >= self.cost_fp

    def amount_index(self, feature_names: list[str]) -> int | None:
        """The column of the amount in a feature matrix of ``feature_names`` (None: unused)."""
        if not self.uses_amount:
            return None
        if self.amount_feature is None or self.amount_feature not in feature_names:
            raise ValidationError(
                f"decision {self.policy!r} weighs the amount feature {self.amount_feature!r}, "
                "which the model's features do not include"
            )
        return feature_names.index(str(self.amount_feature))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OperatingPoint:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def alert_budget_cut(scores: np.ndarray, days: int, alerts_per_day: int) -> float:
    """The score cut that flags ``alerts_per_day`` of ``days`` of validation traffic."""
    if days <= 0 or alerts_per_day <= 0:
        raise ValidationError(
            f"alert budget needs days > 0 and alerts_per_day > 0 ({days}, {alerts_per_day})"
        )
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    budget = min(len(s), days * alerts_per_day)
    if budget == 0:
        raise ValidationError("alert budget: the validation slice is empty")
    return float(s[budget - 1])
