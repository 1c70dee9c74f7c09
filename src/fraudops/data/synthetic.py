"""Synthetic card transactions in the ``transactions30`` schema (seed 000's 30 features).

A population of customers with stable attributes makes transactions spread over ``data.months``
months with a day-of-week and hour-of-day pattern. Frauds are a fixed share of rows drawn as a
mixture of archetypes: most follow clear patterns (card-not-present with CVV/AVS mismatch, account
takeover far from home, card testing at high velocity, bust-out on new accounts) but each pattern
shows only some of its signs, a share of frauds look almost legitimate, and a few legitimate rows
look suspicious. A good model therefore finds the signal, but never perfectly. The generator is
stationary over time (drift is injected separately, see ``fraudops.data.drift``) and fully
vectorised: one ``numpy.random.Generator`` per stream, so a seed gives an identical frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.config import DataSettings
from fraudops.data import archetypes
from fraudops.data.archetypes import BUSTOUT, CNP, LEGIT, STEALTH, TAKEOVER, TESTING, is_kind
from fraudops.data.customers import Customers, assign_customers, make_customers
from fraudops.data.features import features
from fraudops.errors import ConfigError
from fraudops.progress import Reporter
from fraudops.spec import TRANSACTIONS30, FeatureKind, FeatureSpec

Array = np.ndarray

# ---- time patterns -------------------------------------------------------------------------
# Relative weights of the 24 hours of the day, midnight first.
# fmt: off
_HOUR_LEGIT = np.array([
    0.8, 0.5, 0.3, 0.25, 0.25, 0.4, 1.0, 2.2, 3.5, 4.5, 5.2, 5.8,
    6.6, 6.4, 5.8, 5.5, 5.7, 6.3, 6.8, 6.5, 5.5, 4.2, 2.8, 1.6,
])
_HOUR_FRAUD = np.array([
    4.0, 4.4, 4.4, 4.0, 3.4, 2.8, 2.5, 2.8, 3.3, 3.8, 4.2, 4.4,
    4.6, 4.6, 4.4, 4.3, 4.4, 4.6, 4.8, 4.8, 4.7, 4.6, 4.4, 4.2,
])
# fmt: on
_DOW_WEIGHT = np.array([1.0, 1.0, 1.02, 1.04, 1.12, 1.15, 0.95])  # Monday first


def generate_transactions(
    data: DataSettings,
    spec: FeatureSpec,
    *,
    rows: int | None = None,
    seed: int | None = None,
    customer_seed: int | None = None,
    id_prefix: str = "tx-",
    progress: Reporter | None = None,
) -> pd.DataFrame:
    """``rows`` (default ``data.rows``) transactions in ``spec``'s columns; same seed, same frame.

    ``customer_seed`` (default ``seed``) draws the customer population: two sets sharing it share
    their customers. Rows are in time order; ids are ``<id_prefix><9-digit number>``.
    """
    _check_spec(spec)
    progress = progress or Reporter()
    n = data.rows if rows is None else rows
    if n < 1:
        raise ConfigError(f"rows must be at least 1, got {n}")
    seed = data.seed if seed is None else seed
    customer_seed = seed if customer_seed is None else customer_seed
    with progress.step("Generating transactions"):
        customers = make_customers(np.random.default_rng([customer_seed, 0]), data.customers)
        rng = np.random.default_rng([seed, 1])
        archetype = archetypes.draw(rng, n, data.fraud_rate)
        cust = assign_customers(rng, customers, archetype)
        cols = features(rng, customers, cust, archetype)
        stamps = _timestamps(rng, data, archetype)
        frame = _frame(spec, cols, customers, cust, archetype, stamps, id_prefix)
    return frame


def _check_spec(spec: FeatureSpec) -> None:
    # The generator knows one schema; a spec with other columns would get wrong data silently.
    ours, theirs = TRANSACTIONS30, spec
    roles = ("id_column", "customer_column", "timestamp_column", "label_column")
    if sorted(theirs.required_columns) != sorted(ours.required_columns) or any(
        getattr(theirs, r) != getattr(ours, r) for r in roles
    ):
        missing = sorted(set(ours.required_columns) - set(theirs.required_columns))
        extra = sorted(set(theirs.required_columns) - set(ours.required_columns))
        raise ConfigError(
            f"the synthetic generator only produces the transactions30 schema; spec "
            f"{spec.name!r} differs (missing {missing}, extra {extra}, or other key columns)"
        )


# ---- time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stamps:
    micros: Array  # microseconds since the epoch, UTC
    hour: Array
    day_of_week: Array


def time_range(data: DataSettings) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the synthetic data: ``data.months`` months from ``data.start`` (UTC)."""
    try:
        start = pd.Timestamp(data.start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data.start: not a date: {data.start!r} ({exc})") from None
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    start = start.normalize()
    return start, start + pd.DateOffset(months=data.months)


def _timestamps(rng: np.random.Generator, data: DataSettings, archetype: Array) -> _Stamps:
    n = len(archetype)
    start, end = time_range(data)
    days = (end - start).days
    dow = (start.dayofweek + np.arange(days)) % 7
    day_p = _DOW_WEIGHT[dow] / _DOW_WEIGHT[dow].sum()
    day = rng.choice(days, size=n, p=day_p)
    night_owl = is_kind(archetype, CNP, TAKEOVER, TESTING, BUSTOUT) | (
        is_kind(archetype, STEALTH) & (rng.random(n) < 0.5)
    )
    hour = np.where(
        night_owl,
        rng.choice(24, size=n, p=_HOUR_FRAUD / _HOUR_FRAUD.sum()),
        rng.choice(24, size=n, p=_HOUR_LEGIT / _HOUR_LEGIT.sum()),
    )
    seconds = (day * 24 + hour).astype(np.int64) * 3600 + rng.integers(0, 3600, size=n)
    micros = start.value // 1000 + seconds * 1_000_000
    return _Stamps(micros=micros, hour=hour.astype(np.int64), day_of_week=dow[day].astype(np.int64))


# ---- assembly ------------------------------------------------------------------------------


def _frame(
    spec: FeatureSpec,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
    stamps: _Stamps,
    id_prefix: str,
) -> pd.DataFrame:
    order = np.argsort(stamps.micros, kind="stable")
    width = max(5, len(str(customers.count - 1)))
    # Python formatting beats np.char by ~10x; customer ids are formatted once per customer.
    ids = np.array([f"{id_prefix}{i:09d}" for i in range(len(order))], dtype=object)
    cust_names = np.array([f"cust-{i:0{width}d}" for i in range(customers.count)], dtype=object)
    out: dict[str, object] = {
        "transaction_id": ids,
        "customer_id": cust_names[cust[order]],
        "transaction_timestamp": pd.DatetimeIndex(
            stamps.micros[order].astype("datetime64[us]")
        ).tz_localize("UTC"),
        "is_fraud": (archetype[order] != LEGIT).astype(np.int64),
        "transaction_hour": stamps.hour[order],
        "transaction_day_of_week": stamps.day_of_week[order],
    }
    for feature in spec.features:
        if feature.name in out:
            continue
        values = cols[feature.name][order]
        lo, hi = feature.bounds
        if feature.kind is FeatureKind.numeric and (lo is not None or hi is not None):
            values = np.clip(values, lo, hi)  # a user's narrower bounds on the same schema
        out[feature.name] = values.astype(np.int64 if feature.dtype == "int" else np.float64)
    return pd.DataFrame(out)[spec.required_columns]
