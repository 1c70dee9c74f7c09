"""The lake's raw transactions as training rows: the columns a training reads, and the derived
features of a spec that declares some, computed point in time over the whole loaded history
(fraudops.features.offline) before any split — a row of the holdout sees the training rows
before it, as it would have when it was scored.

A loaded row's label counts in a ``fraud_rate`` window once the row is older than the window's
delay (features/offline.py): what the lake replays is what was known at each row's time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudops.spec import FeatureSpec

# The id the lake generates on load when a spec declares none (lake.schemas.GENERATED_ID_COLUMN;
# not imported: that module means pyiceberg, which a local training never needs for this).
GENERATED_ID = "transaction_id"


def lake_id_column(spec: FeatureSpec) -> str:
    return spec.id_column or GENERATED_ID


def lake_id_spec(spec: FeatureSpec) -> FeatureSpec:
    """``spec`` with the lake's id column as its id: it orders same-time rows of a key."""
    if spec.id_column is not None:
        return spec
    return spec.model_copy(update={"id_column": GENERATED_ID})


def training_columns(spec: FeatureSpec) -> list[str]:
    """The transactions columns a training reads: the raw ones (id, customer, keys, timestamp,
    plain features, label); the customer is the card of card precision@k."""
    columns = list(dict.fromkeys(spec.required_columns))
    id_column = lake_id_column(spec)
    if id_column not in columns:
        columns.append(id_column)
    return columns


def with_derived_features(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """``frame`` (the lake's rows, any order) with every derived feature of ``spec`` added,
    each row as known at its time; ``frame`` itself when the spec derives nothing."""
    if not spec.derived:
        return frame
    from fraudops.features import with_derived  # NumPy kernels: only a derived spec pays them

    return with_derived(frame.reset_index(drop=True), lake_id_spec(spec))


def derived_dtypes(spec: FeatureSpec) -> dict[str, np.dtype]:
    """The dtype of each derived feature's values (int64 counts and calendar readings)."""
    plain = set(spec.raw_feature_names)
    return {
        f.name: np.dtype(np.int64 if f.dtype == "int" else np.float64)
        for f in spec.model_features
        if f.name not in plain
    }
