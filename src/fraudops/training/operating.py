"""The operating point chosen at training time, on the validation slice (``training.decision``).

The calibrator is fitted first, on the validation scores (held out from the fit; the holdout
stays untouched for evaluation); then the decision:

- ``expected_loss``: nothing to choose — flag when ``p × amount ≥ cost_fp`` (``p × cost_fn`` when
  the spec has no amount). Its ``threshold`` (the manifest's, read by versions of fraudops from
  before operating points, the charts and the logged ``threshold`` column) is the score cut that
  flags as many validation rows: the same alert volume, as one cut.
- ``alert_budget``: the cut that flags ``alerts_per_day`` a day of the validation slice.
- ``best_f1`` / ``min_cost`` / ``target_recall``: the cut ``training.threshold``'s chooser picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudops.config.model_sections import TrainingSettings
from fraudops.errors import ValidationError
from fraudops.models.calibration import Calibrator
from fraudops.models.decision import OperatingPoint, alert_budget_cut
from fraudops.spec import FeatureSpec
from fraudops.training.evaluation import SliceContext
from fraudops.training.threshold import ThresholdChoice, choose_threshold


@dataclass(frozen=True)
class OperatingChoice:
    point: OperatingPoint
    calibrator: Calibrator
    choice: ThresholdChoice  # the policy, its (equivalent) cut and its validation figures

    @property
    def threshold(self) -> float:
        return self.choice.threshold

    def flag(self, scores: np.ndarray, context: SliceContext) -> np.ndarray:
        return self.point.flag(scores, self.calibrator, context.amounts)


def choose_operating_point(
    labels: np.ndarray,
    scores: np.ndarray,
    cfg: TrainingSettings,
    spec: FeatureSpec,
    context: SliceContext,
) -> OperatingChoice:
    calibrator = Calibrator.fit(scores, labels)
    policy = cfg.decision
    fp, fn = cfg.cost_fp, cfg.cost_fn
    budget = cfg.alerts_per_day
    if policy in ("best_f1", "min_cost", "target_recall"):
        cut = choose_threshold(
            labels, scores, policy, target_recall=cfg.target_recall, cost_fn=fn, cost_fp=fp
        ).threshold
        point = OperatingPoint(policy, fp, fn, threshold=cut, alerts_per_day=budget)
    elif policy == "alert_budget":
        if context.days is None:
            raise ValidationError("the alert_budget decision needs the validation rows' days")
        days = len(np.unique(context.days))
        cut = alert_budget_cut(scores, days, budget)
        point = OperatingPoint(policy, fp, fn, threshold=cut, alerts_per_day=budget)
    else:
        uses_amount = spec.amount_column is not None and context.amounts is not None
        point = OperatingPoint(
            policy,
            fp,
            fn,
            uses_amount=uses_amount,
            alerts_per_day=budget,
            amount_feature=spec.amount_column if uses_amount else None,
        )
        cut = _same_volume_cut(scores, point.flag(scores, calibrator, context.amounts))
    flagged = point.flag(scores, calibrator, context.amounts)
    return OperatingChoice(point, calibrator, _figures(policy, cut, labels, flagged, cfg))


def _same_volume_cut(scores: np.ndarray, flagged: np.ndarray) -> float:
    """The score cut flagging as many rows as ``flagged`` does."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    n = int(np.sum(flagged))
    return float(s[n - 1]) if n else float(np.nextafter(s[0], np.inf))


def _figures(
    policy: str, cut: float, labels: np.ndarray, flagged: np.ndarray, cfg: TrainingSettings
) -> ThresholdChoice:
    y = np.asarray(labels).astype(bool)
    tp, fp = int(np.sum(flagged & y)), int(np.sum(flagged & ~y))
    positives = int(y.sum())
    cost = cfg.cost_fn * (positives - tp) + cfg.cost_fp * fp
    return ThresholdChoice(
        policy=policy,
        threshold=float(cut),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / positives if positives else 0.0,
        f1=2 * tp / (tp + fp + positives) if tp + fp + positives else 0.0,
        expected_cost=float(cost / len(y)),
    )
