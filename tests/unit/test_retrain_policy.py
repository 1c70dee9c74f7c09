"""The retrain policy's reasons and the retrain data's recency weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.orchestration.retraining import retrain_reasons


def _feature(name: str, severity: str = "NORMAL", psi: float = 0.01) -> dict[str, Any]:
    return {"feature": name, "severity": severity, "psi": psi, "psi_threshold": 0.2}


def _run(features: list[dict[str, Any]], **performance: Any) -> dict[str, Any]:
    return {"drift": {"features": features}, "performance": performance}


def test_drift_on_enough_features_at_alarm_level_calls_for_a_retrain() -> None:
    settings = Settings()  # on_drifted_features = 3
    alarmed = [_feature("a", "MODERATE"), _feature("b", "CRITICAL"), _feature("c", psi=0.25)]
    reasons = retrain_reasons(settings, _run([*alarmed, _feature("d", "WARNING")]))
    assert len(reasons) == 1 and reasons[0].startswith("data drift on 3 features (a, b, c)")
    # Two alarmed features and a WARNING (the seed's p < 0.05 alone) are not enough.
    assert retrain_reasons(settings, _run([*alarmed[:2], _feature("d", "WARNING")])) == []


def test_degradation_recall_floor_and_schedule_are_reasons_of_their_own() -> None:
    settings = Settings(retrain={"min_recall": 0.7, "every_days": 90})
    run = _run([], degraded=True, degradation_pct=8.0, metrics={"roc_auc": 0.87, "recall": 0.6})
    reasons = retrain_reasons(settings, run, champion_age_days=120)
    assert [r.split(" ")[0] for r in reasons] == ["mature", "mature", "champion"]
    assert "8.0% below the baseline" in reasons[0] and "recall 0.600" in reasons[1]
    off = Settings(retrain={"on_degradation": False})
    assert retrain_reasons(off, run) == []
    young = retrain_reasons(settings, _run([], metrics={"recall": 0.9}), champion_age_days=10)
    assert young == []


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
