"""Drift injection: seed 000's drifted data sets, from the patterns in ``data.default_drift`` and
``data.drift_patterns``.

A rule moves one feature: multiplicative ``x * (factor + noise * N(0, 1))`` or additive
``x + shift + noise * N(0, 1)``, drawn per row. Integer features are rounded and every result is
clipped to the feature's bounds, so a drifted set still passes the spec's validation. Timestamps
are never drifted (seed 000 shifted them too): a drifted set's event times come from the generator.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fraudops.config import DataSettings, DriftRule
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError, ValidationError
from fraudops.spec import Feature, FeatureSpec

DEFAULT_PATTERN = "default"


def noise_stream(seed: int) -> np.random.Generator:
    """The drift noise of ``seed``: stream 2 of the seed (the generator draws the customers from
    stream 0 and the rows from stream 1), so drifting never disturbs what was generated."""
    return np.random.default_rng([seed, 2])


def drift_rules(data: DataSettings, pattern: str | None) -> dict[str, DriftRule]:
    """The rules of ``pattern``: None or "default" → ``data.default_drift``, else a named one."""
    if pattern is None or pattern == DEFAULT_PATTERN:
        return dict(data.default_drift)
    try:
        return dict(data.drift_patterns[pattern])
    except KeyError:
        known = ", ".join([DEFAULT_PATTERN, *sorted(data.drift_patterns)])
        raise ConfigError(
            f"unknown drift pattern {pattern!r}: known patterns are {known}"
        ) from None


def apply_drift(
    frame: pd.DataFrame,
    rules: Mapping[str, DriftRule],
    spec: FeatureSpec,
    rng: np.random.Generator,
    *,
    pattern: str | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` with each rule applied to its feature (rules in mapping order, one
    normal draw per row and rule). ``pattern`` only names the rules in error messages."""
    _check_rules(rules, spec, frame, pattern)
    out = frame.copy()
    for name, rule in rules.items():
        out[name] = _drift_column(out[name], rule, spec.feature(name), rng)
    return out


def _check_rules(
    rules: Mapping[str, DriftRule], spec: FeatureSpec, frame: pd.DataFrame, pattern: str | None
) -> None:
    where = f"drift pattern {pattern or DEFAULT_PATTERN!r}"
    unknown = [name for name in rules if name not in spec.feature_names]
    if unknown:
        raise ConfigError(
            f"{where}: {unknown} {'is not a feature' if len(unknown) == 1 else 'are not features'}"
            f" of spec {spec.name!r} (only features drift; timestamps come from the generator)"
        )
    missing = [name for name in rules if name not in frame.columns]
    if missing:
        raise ValidationError(f"{where}: the data has no column {missing}")


def _drift_column(
    column: pd.Series, rule: DriftRule, feature: Feature, rng: np.random.Generator
) -> pd.Series:
    values = column.to_numpy(dtype=np.float64)
    noise = rule.noise * rng.standard_normal(len(values))
    if rule.type == "multiplicative":
        drifted = values * (rule.factor + noise)
    else:
        drifted = values + rule.shift + noise
    if feature.dtype == "int":
        drifted = np.rint(drifted)
    lo, hi = _clip_bounds(feature)
    if lo is not None or hi is not None:
        drifted = np.clip(drifted, lo, hi)
    result = pd.Series(drifted, index=column.index, name=column.name)
    # An integer column stays integer (the lake schema and the model's input types expect it).
    return result.astype(column.dtype) if pd.api.types.is_integer_dtype(column.dtype) else result


def _clip_bounds(feature: Feature) -> tuple[float | None, float | None]:
    # Categorical codes stay within their declared range: the min/max, else the category list.
    lo, hi = feature.bounds
    if feature.categories:
        lo = min(feature.categories) if lo is None else lo
        hi = max(feature.categories) if hi is None else hi
    return lo, hi


def generate_drifted_set(
    data: DataSettings,
    spec: FeatureSpec,
    *,
    pattern: str | None = None,
    rows: int | None = None,
    seed: int | None = None,
    customer_seed: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fresh sample (``rows`` default ``data.drift_samples``, ``seed`` default
    ``data.drift_seed``) drifted by ``pattern``: (transactions without the label, ground truth
    with the id and the label). ``customer_seed`` (default ``data.seed``) picks the customer
    population, so the drifted set shares the training set's customers. Ids are
    ``tx-d-<pattern>-<n>`` and never collide with a training set's ``tx-<n>``.

    Generated at ``rows`` directly, not at the training set's scale like a traffic sample
    (``fraudops.data.sampling``): its velocity features are those of a ``rows``-row generation."""
    name = pattern or DEFAULT_PATTERN
    rules = drift_rules(data, pattern)
    seed = data.drift_seed if seed is None else seed
    base = generate_transactions(
        data,
        spec,
        rows=rows if rows is not None else data.drift_samples,
        seed=seed,
        customer_seed=data.seed if customer_seed is None else customer_seed,
        id_prefix=f"tx-d-{name}-",
    )
    # The noise stream depends on the seed only: every pattern drifts the same base sample.
    drifted = apply_drift(base, rules, spec, noise_stream(seed), pattern=name)
    id_col, label = spec.id_column or "transaction_id", spec.label_column
    truth = drifted[[id_col, label]].reset_index(drop=True)
    return drifted.drop(columns=[label]).reset_index(drop=True), truth
