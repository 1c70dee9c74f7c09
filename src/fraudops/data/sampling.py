"""Traffic samples: transactions as a server in production would see them, drifted or not.

One implementation for every sender of generated traffic: the load client (`fraudops traffic`)
and the simulation's months. A sample is drawn from the training set's customers
(``customer_seed = data.seed``) and generated at the training set's scale (``data.rows``) before
being sampled down: the generator's customer mix depends on how many rows it makes (with enough
rows every customer appears), and with it the velocity features (transactions per customer in
24 h / 7 days): a 2,000-row generation has ~5% more of them than the 284K-row training set.
Data drift, then concept drift, draw their noise from the seed's noise stream
(``drift.noise_stream``), the one seed 000's drifted sets use.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudops.config import ConceptDrift, DataSettings
from fraudops.data.concept_drift import flip_high_value
from fraudops.data.drift import apply_drift, drift_rules, noise_stream
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec


def sample_traffic(
    data: DataSettings,
    spec: FeatureSpec,
    rows: int,
    *,
    seed: int,
    id_prefix: str,
    data_drift: str | None = None,
    concept_drift: ConceptDrift | None = None,
    progress: Reporter | None = None,
) -> pd.DataFrame:
    """``rows`` transactions with their labels, in random order, the same for the same arguments.

    ``data_drift``: a drift pattern (``"default"`` or a ``data.drift_patterns`` key) applied to the
    features; ``concept_drift``: high-value legitimate rows turned fraud. Ids are
    ``<id_prefix><9-digit number>``: a prefix naming the seed keeps two samples' ids apart.
    """
    if rows < 1:
        raise ConfigError(f"a traffic sample needs at least 1 row, got {rows}")
    frame = generate_transactions(
        data,
        spec,
        rows=max(rows, data.rows),
        seed=seed,
        customer_seed=data.seed,
        id_prefix=id_prefix,
        progress=progress,
    )
    # Sampled even at full scale: the rows then come shuffled rather than in time order.
    frame = frame.sample(rows, random_state=seed).reset_index(drop=True)
    rng = noise_stream(seed)
    if data_drift is not None:
        frame = apply_drift(frame, drift_rules(data, data_drift), spec, rng, pattern=data_drift)
    if concept_drift is not None:
        frame = flip_high_value(frame, spec, concept_drift, rng)
    return frame


def request_records(frame: pd.DataFrame, spec: FeatureSpec) -> list[dict[str, Any]]:
    """The rows as /v1/predict transactions: id, customer and every feature, no label.

    ``.tolist()`` gives Python ints for int features and floats for the rest: JSON as the API
    wants it.
    """
    keys = [c for c in (spec.id_column, spec.customer_column) if c is not None]
    keys += spec.feature_names
    columns = [frame[k].to_numpy().tolist() for k in keys]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
