"""The retrain policy's reasons, and the simulation's concept drift and verdict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Scenario, Settings
from fraudops.monitoring.drift import DriftReport, FeatureDrift
from fraudops.monitoring.performance import PerformanceReport
from fraudops.orchestration.retrain_policy import alarmed_features, retrain_reasons
from fraudops.orchestration.simulation import SimulationResult, _outcome, flip_high_value


def _feature(name: str, severity: str = "NORMAL", psi: float = 0.01) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind="numeric",
        psi=psi,
        ks_statistic=0.05,
        ks_pvalue=0.3,
        chi2_statistic=None,
        chi2_pvalue=None,
        wasserstein=0.01,
        jensen_shannon=0.01,
        severity=severity,
        drifted=psi >= 0.2 or severity != "NORMAL",
        effect=0.05,
        pvalue=0.3,
        psi_threshold=0.2,
        pvalue_threshold=0.05,
    )


def _drift(features: list[FeatureDrift]) -> DriftReport:
    psis = [f.psi for f in features] or [0.0]
    drifted = [f.feature for f in features if f.drifted]
    return DriftReport(
        reference_rows=1000,
        current_rows=500,
        features_analyzed=len(features),
        data_drift_detected=bool(drifted),
        features=features,
        drifted_features=drifted,
        drifted_count=len(drifted),
        drifted_share=len(drifted) / max(len(features), 1),
        mean_psi=float(np.mean(psis)),
        max_psi=max(psis),
        median_psi=float(np.median(psis)),
        mean_ks=None,
        max_ks=None,
        median_ks=None,
        severity_counts={},
        max_severity="NORMAL",
    )


def _performance(
    metrics: dict[str, float] | None = None,
    *,
    degraded: bool | None = None,
    degradation_pct: float | None = None,
) -> PerformanceReport:
    return PerformanceReport(
        as_of="2027-03-01T00:00:00+00:00",
        min_coverage=0.9,
        predictions=1000,
        labelled=950,
        coverage=0.95,
        mature_cohorts=7,
        immature_cohorts=0,
        evaluated_rows=950,
        metrics=metrics,
        baseline_roc_auc=0.95,
        degradation_pct=degradation_pct,
        degraded=degraded,
        reason="",
    )


def test_drift_on_enough_features_at_alarm_level_calls_for_a_retrain() -> None:
    settings = Settings()  # on_drifted_features = 3
    alarmed = [_feature("a", "MODERATE"), _feature("b", "CRITICAL"), _feature("c", psi=0.25)]
    drift = _drift([*alarmed, _feature("d", "WARNING")])
    assert alarmed_features(settings, drift) == ["a", "b", "c"]
    reasons = retrain_reasons(settings, drift, _performance())
    assert [r.kind for r in reasons] == ["data_drift"]
    assert reasons[0].text.startswith("data drift on 3 features (a, b, c)")
    # Two alarmed features and a WARNING (the seed's p < 0.05 alone) are not enough.
    few = _drift([*alarmed[:2], _feature("d", "WARNING")])
    assert retrain_reasons(settings, few, _performance()) == []
    assert retrain_reasons(settings, None, _performance()) == []  # too few rows to check drift


def test_degradation_recall_floor_and_schedule_are_reasons_of_their_own() -> None:
    settings = Settings(retrain={"min_recall": 0.7, "every_days": 90})
    performance = _performance({"roc_auc": 0.87, "recall": 0.6}, degraded=True, degradation_pct=8.0)
    reasons = retrain_reasons(settings, _drift([]), performance, champion_age_days=120)
    assert [r.kind for r in reasons] == ["degradation", "low_recall", "champion_age"]
    assert "8.0% below the baseline" in reasons[0].text and "recall 0.600" in reasons[1].text
    assert reasons[2].text == "champion is 120 days old (retrain.every_days 90)"
    off = Settings(retrain={"on_degradation": False})
    assert retrain_reasons(off, _drift([]), performance) == []
    young = retrain_reasons(
        settings, _drift([]), _performance({"recall": 0.9}), champion_age_days=10
    )
    assert young == []


def test_concept_drift_turns_the_high_value_legitimate_rows_into_fraud() -> None:
    settings = Settings()
    spec = settings.feature_spec("transactions30")
    amounts = np.arange(1000, dtype=float)
    frame = pd.DataFrame(
        {"transaction_amount": amounts, "is_fraud": (amounts % 7 == 0).astype(int)}
    )
    plan = Scenario(concept_drift_month=1, concept_drift={"amount_quantile": 0.99})
    out = flip_high_value(frame, spec, plan, np.random.default_rng(0))
    high = amounts >= np.quantile(amounts, 0.99)
    assert out.loc[high, "is_fraud"].eq(1).all()  # every high-value row is fraud now
    assert out.loc[~high, "is_fraud"].equals(frame.loc[~high, "is_fraud"])  # the rest untouched
    assert frame["is_fraud"].sum() < out["is_fraud"].sum()  # the input frame is not modified


def _month(month: int, recall: float, frauds: int = 100) -> dict[str, Any]:
    return {
        "month": month,
        "start": f"2027-0{month}-01",
        "recall": recall,
        "frauds": frauds,
        "champion": "1",
    }


def _result(**kw: Any) -> SimulationResult:
    base: dict[str, Any] = dict(
        scenario="s",
        description="",
        months=5,
        tx_per_day=10,
        start="2027-01-01T00:00:00+00:00",
        home="h",
        data_drift_month=None,
        concept_drift_month=3,
        initial_champion="1",
    )
    return SimulationResult(**{**base, **kw})


def test_outcome_measures_recovery_from_the_first_retrain_that_saw_the_drift() -> None:
    runs = [
        {
            "as_of": "2027-03-08T00:00:00+00:00",
            "alert": None,
            "data_drift_detected": False,
            "model_drift_detected": False,
        },
        {
            "as_of": "2027-03-15T00:00:00+00:00",
            "alert": "sent",
            "data_drift_detected": False,
            "model_drift_detected": True,
        },
    ]
    retrain = {
        "as_of": "2027-03-15T00:00:00+00:00",
        "decision": "promoted",
        "version": "2",
        "retrain_data": {"holdout_start": "2027-03-03"},
    }
    # Promoted after the onset, but judged partly on traffic from before it: not the recovery.
    blind = {
        **retrain,
        "as_of": "2027-03-08T00:00:00+00:00",
        "version": "9",
        "retrain_data": {"holdout_start": "2027-02-28"},
    }
    result = _result(monitoring_runs=runs, retrains=[blind, retrain])
    result.month_rows = [
        _month(1, 0.80),
        _month(2, 0.80),
        _month(3, 0.50),
        _month(4, 0.78),
        _month(5, 0.79),
    ]
    outcome = _outcome(result, Scenario(concept_drift_month=3))
    assert outcome["detected_at_run"] == 2
    assert outcome["pre_drift_recall"] == 0.80
    assert outcome["recovery_retrain"] == "2" and outcome["post_retrain_months"] == [4, 5]
    assert abs(outcome["post_retrain_recall"] - 0.785) < 1e-9 and outcome["recovered"]
    result.month_rows[3]["recall"] = result.month_rows[4]["recall"] = 0.70
    assert not _outcome(result, Scenario(concept_drift_month=3))["recovered"]


def test_a_control_is_quiet_only_without_alerts_and_retrains() -> None:
    result = _result(concept_drift_month=None, monitoring_runs=[], retrains=[])
    result.month_rows = [_month(1, 0.8)]
    assert _outcome(result, Scenario())["quiet"]
    result.monitoring_runs = [{"as_of": "2027-01-08T00:00:00+00:00", "alert": "sent"}]
    assert not _outcome(result, Scenario())["quiet"]


def test_recency_weights_halve_every_half_life_down_to_the_floor() -> None:
    from datetime import UTC, datetime

    from fraudops.training.retrain_data import _ages, _decay

    settings = Settings(retrain={"half_life_days": 20, "min_weight": 0.1})
    ages = np.array([0.0, 20.0, 40.0, 1000.0, np.inf])
    assert np.allclose(_decay(settings, ages), [1.0, 0.5, 0.25, 0.1, 0.1])
    flat = Settings(retrain={"half_life_days": None})
    assert np.allclose(_decay(flat, ages), 1.0)
    spec = settings.feature_spec("transactions30")
    as_of = datetime(2027, 1, 31, tzinfo=UTC)
    times = pd.Series(pd.to_datetime(["2027-01-01", "2027-01-31"], utc=True))
    assert np.allclose(_ages(times, spec, as_of), [30.0, 0.0])
    # Seconds from the data's own start (ULB) say nothing of age: the floor.
    ulb = settings.feature_spec("ulb")
    assert np.isinf(_ages(pd.Series([0.0, 10.0]), ulb, as_of)).all()
