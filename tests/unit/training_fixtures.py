"""Small generated transaction frames for the training unit tests (no tests in this module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudops.spec import Feature, FeatureKind, FeatureSpec

SMALL_SPEC = FeatureSpec(
    name="small",
    id_column="txn_id",
    timestamp_column="ts",
    label_column="label",
    amount_column="amount",
    features=[
        Feature(name="amount", min=0),
        Feature(name="velocity"),
        Feature(name="hour", dtype="int", min=0, max=23),
        Feature(name="online", kind=FeatureKind.binary, dtype="int"),
        Feature(name="channel", kind=FeatureKind.categorical, dtype="int", categories=[1, 2, 3]),
    ],
)


def make_frame(
    rows: int = 4000, *, seed: int = 0, fraud_rate: float = 0.05, signal: float = 1.5
) -> pd.DataFrame:
    """Rows in shuffled order over 30 days; fraud shifts amount, velocity and `online`."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < fraud_rate
    seconds = rng.integers(0, 30 * 86_400, rows)
    frame = pd.DataFrame(
        {
            "txn_id": [f"t{i:06d}" for i in range(rows)],
            "ts": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "label": fraud.astype(np.int64),
            "amount": rng.lognormal(3.5, 1.0, rows) * np.where(fraud, 1 + signal, 1.0),
            "velocity": rng.normal(0, 1, rows) + signal * fraud,
            "hour": rng.integers(0, 24, rows),
            "online": (rng.random(rows) < np.where(fraud, 0.7, 0.3)).astype(np.int64),
            "channel": rng.integers(1, 4, rows),
        }
    )
    return frame
