"""Concept drift injection: the labels change while the features do not (seed 003's scenario).

Beside ``fraudops.data.drift`` (data drift: the features move, the labels do not). Used by the
simulation's months from a scenario's ``concept_drift_month``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudops.config import ConceptDrift
from fraudops.errors import ConfigError
from fraudops.spec import FeatureSpec


def flip_high_value(
    frame: pd.DataFrame, spec: FeatureSpec, drift: ConceptDrift, rng: np.random.Generator
) -> pd.DataFrame:
    """Seed 003's concept drift: legitimate transactions at or above the amount quantile become
    fraud (a share ``flip_share`` of them) — fraudsters moving to high-value purchases that look
    like ordinary ones. A copy; one uniform draw per row from ``rng``."""
    if spec.amount_column is None:
        raise ConfigError(f"spec {spec.name!r} has no amount_column: no high-value concept drift")
    amount = frame[spec.amount_column].to_numpy(dtype=np.float64)
    high = amount >= np.quantile(amount, drift.amount_quantile)
    legit = frame[spec.label_column].to_numpy() == 0
    flip = high & legit & (rng.random(len(frame)) < drift.flip_share)
    out = frame.copy()
    out.loc[flip, spec.label_column] = 1
    return out
