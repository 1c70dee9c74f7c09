from __future__ import annotations

import pytest

from fraudops.config import GateSettings
from fraudops.errors import ConfigError
from fraudops.training.gate import champion_checks, decide

GATE = GateSettings()  # seed floors: ROC-AUC 0.85, PR-AUC 0.50, recall 0.60 for logreg
GOOD = {"roc_auc": 0.95, "pr_auc": 0.70, "recall": 0.80, "expected_cost": 0.5}


def test_no_champion_and_floors_met_promotes() -> None:
    result = decide(GOOD, "xgboost", GATE)
    assert result.decision == "promoted"
    assert [c.name for c in result.checks] == ["min_roc_auc", "min_pr_auc"]
    assert "no champion yet" in result.reason


def test_each_missed_floor_is_named_with_value_and_threshold() -> None:
    result = decide({**GOOD, "pr_auc": 0.41, "recall": 0.55}, "logreg", GATE)
    assert result.decision == "rejected"
    assert [c.name for c in result.failed] == ["min_pr_auc", "min_recall"]
    assert result.reason == ("failed thresholds: pr_auc 0.4100 < 0.5000; recall 0.5500 < 0.6000")


def test_recall_floor_applies_to_its_trainer_only() -> None:
    assert decide({**GOOD, "recall": 0.3}, "xgboost", GATE).decision == "promoted"
    assert decide({**GOOD, "recall": 0.3}, "logreg", GATE).decision == "rejected"


def test_trailing_the_champion_beyond_the_margin_is_not_promoted() -> None:
    champion = {**GOOD, "pr_auc": 0.75}
    result = decide(GOOD, "xgboost", GATE, champion_metrics=champion, champion_version="3")
    assert result.decision == "not_promoted"
    assert [c.name for c in result.failed] == ["champion_pr_auc"]
    assert result.failed[0].threshold == pytest.approx(0.745)
    assert "champion v3" in result.reason and "pr_auc 0.7000 < 0.7450" in result.reason
    assert result.champion_metrics == {"roc_auc": 0.95, "pr_auc": 0.75}


def test_within_the_margin_promotes() -> None:
    champion = {**GOOD, "roc_auc": 0.954}
    result = decide(GOOD, "xgboost", GATE, champion_metrics=champion, champion_version="1")
    assert result.decision == "promoted" and not result.failed
    assert result.mlflow_metrics()["gate_champion_roc_auc"] == 1.0
    assert result.mlflow_metrics()["champion_roc_auc"] == 0.954


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    gate = GateSettings(champion_metrics=["expected_cost"], champion_margin=0.1)
    checks = champion_checks({"expected_cost": 0.65}, {"expected_cost": 0.5}, gate)
    assert not checks[0].passed and checks[0].threshold == pytest.approx(0.6)
    assert champion_checks({"expected_cost": 0.55}, {"expected_cost": 0.5}, gate)[0].passed


def test_unknown_comparison_metric_is_a_config_error() -> None:
    gate = GateSettings(champion_metrics=["auc"])
    with pytest.raises(ConfigError, match=r"gate\.champion_metrics names 'auc'"):
        decide(GOOD, "xgboost", gate, champion_metrics=GOOD)


# ---- a retrain replacing a collapsing champion (issue 20) ------------------------------------

WEAK = {"roc_auc": 0.82, "pr_auc": 0.43, "recall": 0.40, "expected_cost": 2.0}
COLLAPSED = {"roc_auc": 0.78, "pr_auc": 0.30, "recall": 0.25, "expected_cost": 3.0}


def test_a_retrain_better_than_a_weaker_champion_is_promoted_below_the_floors() -> None:
    result = decide(
        WEAK, "xgboost", GATE, champion_metrics=COLLAPSED, champion_version="4", below_floor=True
    )
    assert result.decision == "promoted_below_floor"
    assert [c.name for c in result.failed] == ["min_roc_auc", "min_pr_auc"]
    assert "roc_auc 0.8200 < 0.8500" in result.reason and "pr_auc 0.3000" in result.reason
    assert "champion v4" in result.reason
    assert result.champion_metrics == {"roc_auc": 0.78, "pr_auc": 0.30}


def test_below_the_floors_without_the_retrain_flag_is_rejected() -> None:
    result = decide(WEAK, "xgboost", GATE, champion_metrics=COLLAPSED, champion_version="4")
    assert result.decision == "rejected"


def test_below_the_floors_and_not_better_than_the_champion_is_rejected() -> None:
    # The champion is stronger on PR-AUC: the floor still protects it.
    champion = {**COLLAPSED, "pr_auc": 0.45}
    result = decide(WEAK, "xgboost", GATE, champion_metrics=champion, below_floor=True)
    assert result.decision == "rejected"
    # A champion above a floor the challenger misses is not replaced below it either.
    champion = {**COLLAPSED, "roc_auc": 0.86, "pr_auc": 0.2}
    result = decide(WEAK, "xgboost", GATE, champion_metrics=champion, below_floor=True)
    assert result.decision == "rejected"


def test_a_tie_below_the_floors_is_not_a_promotion() -> None:
    result = decide(WEAK, "xgboost", GATE, champion_metrics=WEAK, below_floor=True)
    assert result.decision == "rejected"


def test_the_required_lead_applies_below_the_floors() -> None:
    champion = {**WEAK, "roc_auc": 0.81, "pr_auc": 0.42}
    led = decide(WEAK, "xgboost", GATE, champion_metrics=champion, margin=-0.005, below_floor=True)
    assert led.decision == "promoted_below_floor"
    short = decide(WEAK, "xgboost", GATE, champion_metrics=champion, margin=-0.02, below_floor=True)
    assert short.decision == "rejected"
