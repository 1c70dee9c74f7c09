"""The label simulator's draws: seed 000's accuracy rule, delays, sources, reproducibility."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudops.config import LabelsSettings
from fraudops.errors import ConfigError
from fraudops.labels.simulate import _draw, _pick, _uniform, effective_accuracy

T0 = pd.Timestamp("2025-03-01T00:00:00Z")


def predictions(n: int, fraud_every: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "inference_id": [f"inf-{i:06d}" for i in range(n)],
            "transaction_id": [f"tx-{i}" for i in range(n)],
            "request_time": [T0 + pd.Timedelta(minutes=i) for i in range(n)],
            "prediction": [int(i % fraud_every == 0) for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    ("impact", "model", "expected"),
    [
        (0.0, 0.0, 0.85),  # scenario 1: no drift
        (0.10, 0.0, 0.75),  # scenario 2: feature drift
        (0.0, 0.15, 0.70),  # scenario 3: model drift
        (0.08, 0.07, 0.70),  # scenario 4: both
        (0.3, 0.3, 0.50),  # floored at min_accuracy
    ],
)
def test_effective_accuracy_is_the_seeds_rule(impact: float, model: float, expected: float) -> None:
    config = LabelsSettings()
    assert effective_accuracy(
        config, feature_drift_impact=impact, model_drift_mag=model
    ) == pytest.approx(expected)


def test_effective_accuracy_refuses_values_outside_0_1() -> None:
    with pytest.raises(ConfigError, match="accuracy must be between 0 and 1"):
        effective_accuracy(LabelsSettings(), accuracy=1.5)


def test_uniforms_are_fixed_per_id_and_seed() -> None:
    ids = np.array([f"id-{i}" for i in range(10_000)], dtype=object)
    u = _uniform(ids, 42, "agree")
    assert ((u >= 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.02
    assert np.array_equal(u[5:10], _uniform(ids[5:10], 42, "agree"))  # per id, not per batch
    assert not np.array_equal(u, _uniform(ids, 43, "agree"))
    assert not np.array_equal(u, _uniform(ids, 42, "delay"))


def test_pick_follows_the_weights() -> None:
    u = np.linspace(0, 1, 10_000, endpoint=False)
    picked = pd.Series(_pick({"a": 0.5, "b": 0.3, "c": 0.2}, u)).value_counts(normalize=True)
    assert picked.to_dict() == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2}, abs=1e-3)


def test_draws_have_the_seeds_delays_accuracy_and_sources() -> None:
    config = LabelsSettings()
    frame = predictions(20_000)
    draws = _draw(frame, config, seed=7, base=0.85, drifted=0.85, drift_from=None)
    agreement = (draws["label"] == draws["prediction"]).mean()
    assert agreement == pytest.approx(0.85, abs=0.01)
    fraud = draws["label"] == 1
    assert draws.loc[fraud, "delay_days"].between(1, 7).all()
    assert draws.loc[~fraud, "delay_days"].between(1, 30).all()
    assert draws.loc[~fraud, "delay_days"].max() > 25  # the whole range is used
    delay = (draws["confirmed_at"] - frame["request_time"]).dt.total_seconds() / 86_400
    assert np.allclose(delay, draws["delay_days"], atol=1e-6)
    assert set(draws.loc[fraud, "source"]) == set(config.fraud_sources)
    assert set(draws.loc[~fraud, "source"]) == set(config.legit_sources)
    again = _draw(frame.iloc[::-1], config, seed=7, base=0.85, drifted=0.85, drift_from=None)
    assert (
        again.set_index("inference_id")
        .sort_index()
        .equals(draws.set_index("inference_id").sort_index())
    )


def test_drift_from_degrades_only_the_later_predictions() -> None:
    frame = predictions(20_000)
    start = (T0 + pd.Timedelta(minutes=10_000)).to_pydatetime()
    draws = _draw(frame, LabelsSettings(), seed=1, base=0.85, drifted=0.70, drift_from=start)
    agree = draws["label"] == draws["prediction"]
    assert agree[:10_000].mean() == pytest.approx(0.85, abs=0.015)
    assert agree[10_000:].mean() == pytest.approx(0.70, abs=0.015)
    assert set(draws["accuracy"][:10_000]) == {0.85} and set(draws["accuracy"][10_000:]) == {0.70}
    assert isinstance(start, dt.datetime)
