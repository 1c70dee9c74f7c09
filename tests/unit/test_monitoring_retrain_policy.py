"""The retrain policy's reasons and the retrain data's recency weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.monitoring.drift import DriftReport, FeatureDrift
from fraudops.monitoring.performance import PerformanceReport
from fraudops.monitoring.retrain_policy import alarmed_features, retrain_reasons


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


def test_suspected_concept_drift_is_a_reason_unless_switched_off() -> None:
    why = "3 of 40 confirmed frauds flagged vs 0.610 expected by CBPE"
    reasons = retrain_reasons(Settings(), _drift([]), _performance(), concept_drift=why)
    assert [r.kind for r in reasons] == ["concept_drift"]
    assert reasons[0].text == f"concept drift suspected: {why}"
    assert retrain_reasons(Settings(), _drift([]), _performance()) == []
    off = Settings(retrain={"on_concept_drift": False})
    assert retrain_reasons(off, _drift([]), _performance(), concept_drift=why) == []


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
