"""The operating point's decisions."""

from __future__ import annotations

import numpy as np
import pytest

from fraudops.errors import ValidationError
from fraudops.models.calibration import Calibrator
from fraudops.models.decision import OperatingPoint, alert_budget_cut


def test_expected_loss_weighs_the_amount() -> None:
    cal = Calibrator(x=(0.0, 1.0), y=(0.0, 0.5), method="isotonic")  # p = score / 2
    point = OperatingPoint("expected_loss", cost_fp=5.0, cost_fn=100.0, uses_amount=True)
    scores = np.array([0.02, 0.4, 0.4, 0.9])
    amounts = np.array([2_000.0, 5.0, 100.0, 8.0])
    # 0.01×2000=20 ≥ 5 flagged; 0.2×5=1 not; 0.2×100=20 flagged; 0.45×8=3.6 not
    assert point.flag(scores, cal, amounts).tolist() == [True, False, True, False]
    without = OperatingPoint("expected_loss", cost_fp=5.0, cost_fn=100.0)
    assert without.flag(scores, cal).tolist() == [False, True, True, True]  # p ≥ 0.05
    with pytest.raises(ValidationError, match="amount"):
        point.flag(scores, cal)
    assert OperatingPoint.from_dict(point.to_dict()) == point


def test_score_cuts_and_the_alert_budget() -> None:
    scores = np.linspace(0, 1, 1_000)
    cut = alert_budget_cut(scores, days=10, alerts_per_day=7)
    point = OperatingPoint("alert_budget", 5, 100, threshold=cut, alerts_per_day=7)
    assert point.flag(scores).sum() == 70
    with pytest.raises(ValidationError, match="score cut"):
        OperatingPoint("best_f1", 5, 100)
    with pytest.raises(ValidationError, match="unknown decision"):
        OperatingPoint("top_f2", 5, 100, threshold=0.5)
