"""The feature spec: which columns a dataset has and what values they may hold.

Declared once (built-ins here, user specs in ``fraudops.yaml`` under ``specs:``); validation, the
training columns, the lake schemas, and later the API schema and the drift tests all derive from it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fraudops.derived import DEFAULT_KEY_TTL_S, VALUE_AGGS, Agg, Calendar, DerivedFeature


class FeatureKind(StrEnum):
    numeric = "numeric"
    binary = "binary"
    categorical = "categorical"


class Feature(BaseModel):
    """One model input column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: FeatureKind = FeatureKind.numeric
    dtype: Literal["int", "float"] = Field(
        "float", description="Storage type: int columns refuse fractional values."
    )
    min: float | None = Field(None, description="Smallest allowed value (inclusive).")
    max: float | None = Field(None, description="Largest allowed value (inclusive).")
    categories: list[int] | None = Field(
        None, description="Allowed codes of a categorical feature; None allows any integer."
    )
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Feature:
        if self.kind is FeatureKind.binary and self.dtype != "int":
            raise ValueError(f"binary feature {self.name!r} must have dtype int")
        if self.kind is FeatureKind.categorical and self.dtype != "int":
            raise ValueError(f"categorical feature {self.name!r} must have dtype int (codes)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")
        return self

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        if self.kind is FeatureKind.binary:
            return (0.0, 1.0)
        return (self.min, self.max)


class FeatureSpec(BaseModel):
    """A dataset's columns: id, customer, event time, label, and the model features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="Filled from the key under `specs:`.")
    description: str = ""
    id_column: str | None = Field(
        None, description="Unique transaction id; when absent the lake generates one on load."
    )
    customer_column: str | None = None
    timestamp_column: str
    timestamp_kind: Literal["datetime", "seconds"] = Field(
        "datetime",
        description="datetime: an ISO/pandas timestamp; seconds: seconds from the data's start.",
    )
    label_column: str
    amount_column: str | None = Field(
        None, description="The transaction amount feature (reported in logs and alerts)."
    )
    features: list[Feature] = Field(description="The plain features: columns of the raw data.")
    keys: list[str] = Field(
        default_factory=list,
        description="Raw columns derived features aggregate by (a card, a terminal).",
    )
    derived: list[DerivedFeature] = Field(
        default_factory=list,
        description="Features computed from the timestamp and each key's history (derived.py).",
    )
    # Not dumped: the settings' children reload a dump, where a spec may not set it.
    key_ttl_s: float = Field(
        DEFAULT_KEY_TTL_S,
        gt=0,
        exclude=True,
        description="Filled from `features.key_ttl_s` (not set in a spec): a key's previous "
        "transaction older than this counts as none, offline as online.",
    )

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        names = [f.name for f in self.features] + [d.name for d in self.derived]
        if not self.features:
            raise ValueError(f"spec {self.name!r} declares no features")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"spec {self.name!r}: duplicate feature names {dupes}")
        meta = [self.id_column, self.customer_column, self.label_column, *self.keys]
        clash = [c for c in meta if c is not None and c in names]
        if clash:
            raise ValueError(f"spec {self.name!r}: {clash} is both a feature and a key column")
        if self.amount_column is not None and self.amount_column not in names:
            raise ValueError(
                f"spec {self.name!r}: amount_column {self.amount_column!r} is no feature"
            )
        self._check_derived()
        return self

    def _check_derived(self) -> None:
        keys = self.keys
        if len(set(keys)) != len(keys):
            raise ValueError(f"spec {self.name!r}: keys {keys} repeat a column")
        for key in keys:
            if key in (self.label_column, self.timestamp_column, self.id_column):
                raise ValueError(
                    f"spec {self.name!r}: key {key!r} is the id, timestamp or label column"
                )
        plain = {f.name: f for f in self.features}
        for d in self.derived:
            where = f"spec {self.name!r}: derived feature {d.name!r}"
            if d.calendar is not None and self.timestamp_kind != "datetime":
                raise ValueError(
                    f"{where}: calendar features need timestamp_kind datetime (the timestamps "
                    f"of this spec are {self.timestamp_kind}, with no day or hour)"
                )
            if d.by is not None and d.by not in keys:
                known = ", ".join(keys) or "none declared"
                raise ValueError(f"{where}: by {d.by!r} is no key (keys: {known})")
            if d.of is not None:
                if d.of not in plain:
                    raise ValueError(
                        f"{where}: of {d.of!r} is no plain feature of the spec "
                        f"(one of {', '.join(plain)})"
                    )
                if plain[d.of].kind is not FeatureKind.numeric:
                    raise ValueError(f"{where}: of {d.of!r} is {plain[d.of].kind}, not numeric")

    @property
    def key_ttl_us(self) -> int:
        """``key_ttl_s`` in whole µs, as both engines compare it (t - t_prev <= it)."""
        return round(self.key_ttl_s * 1_000_000)

    def longest_lookback(self) -> DerivedFeature | None:
        """The derived feature reading furthest back (window + delay), None without any."""
        return max(self.derived, key=lambda d: d.lookback_s, default=None)

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs, in order: the plain features, then the derived ones."""
        return [f.name for f in self.features] + [d.name for d in self.derived]

    @property
    def raw_feature_names(self) -> list[str]:
        """The plain features: the feature columns raw data carries."""
        return [f.name for f in self.features]

    @property
    def model_features(self) -> list[Feature]:
        """Every model input as a Feature (a derived one with its kind and bounds)."""
        return list(self.features) + [derived_as_feature(d) for d in self.derived]

    @property
    def key_columns(self) -> list[str]:
        """The non-feature columns a loaded file must carry (id and customer when declared,
        the keys of derived features)."""
        cols = [self.id_column, self.customer_column, *self.keys]
        if self.timestamp_column not in self.feature_names:
            cols.append(self.timestamp_column)
        cols.append(self.label_column)
        return list(dict.fromkeys(c for c in cols if c is not None))

    @property
    def required_columns(self) -> list[str]:
        """The columns of a raw file: keys, then the plain features (derived ones are computed)."""
        return self.key_columns + [n for n in self.raw_feature_names if n not in self.key_columns]

    def feature(self, name: str) -> Feature:
        for f in self.model_features:
            if f.name == name:
                return f
        raise KeyError(name)


_CALENDAR_BOUNDS = {
    Calendar.hour: (0.0, 23.0),
    Calendar.day_of_week: (0.0, 6.0),
}


def derived_as_feature(d: DerivedFeature) -> Feature:
    """A derived feature as a model input: its kind, storage type and bounds."""
    if d.calendar in (Calendar.weekend, Calendar.night):
        return Feature(name=d.name, kind=FeatureKind.binary, dtype="int", description=d.description)
    if d.calendar is not None:
        lo, hi = _CALENDAR_BOUNDS[d.calendar]
        return Feature(name=d.name, dtype="int", min=lo, max=hi, description=d.description)
    if d.agg is Agg.count:
        return Feature(name=d.name, dtype="int", min=0, description=d.description)
    if d.agg is Agg.fraud_rate:
        return Feature(name=d.name, min=0, max=1, description=d.description)
    if d.agg is Agg.time_since_last:
        return Feature(name=d.name, min=-1, description=d.description)
    if d.agg is Agg.std:
        return Feature(name=d.name, min=0, description=d.description)
    assert d.agg in VALUE_AGGS
    return Feature(name=d.name, description=d.description)  # sum/mean/min/max of any sign


def _num(
    name: str,
    lo: float | None = 0.0,
    hi: float | None = None,
    *,
    dtype: str = "float",
    description: str = "",
) -> Feature:
    return Feature(
        name=name, kind=FeatureKind.numeric, dtype=dtype, min=lo, max=hi, description=description
    )


def _bin(name: str, description: str = "") -> Feature:
    return Feature(name=name, kind=FeatureKind.binary, dtype="int", description=description)


def _cat(
    name: str,
    categories: list[int] | None,
    lo: float | None = None,
    hi: float | None = None,
    description: str = "",
) -> Feature:
    return Feature(
        name=name,
        kind=FeatureKind.categorical,
        dtype="int",
        categories=categories,
        min=lo,
        max=hi,
        description=description,
    )


# Seed 000's 30 training features, in its order (request example in its README).
TRANSACTIONS30 = FeatureSpec(
    name="transactions30",
    description="Seed 000's synthetic card transactions: 30 features, 12 months, ~0.5% fraud.",
    id_column="transaction_id",
    customer_column="customer_id",
    timestamp_column="transaction_timestamp",
    timestamp_kind="datetime",
    label_column="is_fraud",
    amount_column="transaction_amount",
    features=[
        _num("transaction_hour", 0, 23, dtype="int", description="Hour of day, 0-23"),
        _num("transaction_day_of_week", 0, 6, dtype="int", description="0 = Monday"),
        _num("transaction_amount", 0, 1_000_000, description="Amount in the card's currency"),
        _cat("transaction_type_code", [1, 2, 3, 4, 5], description="Purchase, withdrawal, ..."),
        _num("customer_age", 18, 100, dtype="int"),
        _cat("customer_gender", [0, 1, 2]),
        _num("customer_tenure_months", 0, 600, dtype="int"),
        _num("account_age_days", 0, 20_000, dtype="int"),
        _num("distance_from_home_km", 0, 20_100),
        _num("distance_from_last_transaction_km", 0, 20_100),
        _num("time_since_last_transaction_min", 0, 1_000_000),
        _bin("online_transaction"),
        _bin("international_transaction"),
        _bin("high_risk_country"),
        _cat("merchant_category_code", None, 0, 9999, description="ISO 18245 MCC"),
        _num("merchant_reputation_score", 0, 1),
        _bin("chip_transaction"),
        _bin("pin_used"),
        _bin("card_present"),
        _bin("cvv_match"),
        _bin("address_verification_match"),
        _num("num_transactions_24h", 0, 10_000, dtype="int"),
        _num("num_transactions_7days", 0, 50_000, dtype="int"),
        _num("avg_transaction_amount_30days", 0, 1_000_000),
        _num("max_transaction_amount_30days", 0, 10_000_000),
        _num("velocity_score", 0, None),
        _bin("recurring_transaction"),
        _num("previous_fraud_incidents", 0, 1_000, dtype="int"),
        _num("credit_limit", 0, 10_000_000),
        _num("available_credit_ratio", 0, 1),
    ],
)

# The public ULB credit-card set (shared/data/creditcard.parquet): PCA components, no ids.
ULB = FeatureSpec(
    name="ulb",
    description="ULB credit-card fraud: Time (s from start), V1..V28 (PCA), Amount, Class.",
    id_column=None,
    customer_column=None,
    timestamp_column="Time",
    timestamp_kind="seconds",
    label_column="Class",
    amount_column="Amount",
    features=[_num(f"V{i}", None, None) for i in range(1, 29)] + [_num("Amount", 0, None)],
)


def _window(
    name: str, key: str, window: str, agg: Agg, of: str | None = None, delay: str | None = None
) -> DerivedFeature:
    return DerivedFeature(name=name, by=key, window=window, delay=delay, agg=agg, of=of)


# Raw card transactions (`fraudops data generate --raw`, fraudops.data.raw): the amount is the only
# plain feature; the rest is derived from the time and each card's and terminal's history, as the
# Fraud Detection Handbook's baseline features. A terminal's fraud rate reads labels 7 days late.
CARDS = FeatureSpec(
    name="cards",
    description="Raw card transactions (tx_id, tx_time, customer_id, terminal_id, amount, "
    "is_fraud): calendar and per-card / per-terminal window features derived from history.",
    id_column="tx_id",
    customer_column="customer_id",
    timestamp_column="tx_time",
    timestamp_kind="datetime",
    label_column="is_fraud",
    amount_column="amount",
    keys=["customer_id", "terminal_id"],
    features=[_num("amount", 0, None, description="Amount in the card's currency")],
    derived=[
        DerivedFeature(name="is_weekend", calendar=Calendar.weekend),
        DerivedFeature(name="is_night", calendar=Calendar.night),
        DerivedFeature(name="hour", calendar=Calendar.hour),
        *(
            f
            for w in ("1d", "7d", "30d")
            for f in (
                _window(f"cust_nb_tx_{w}", "customer_id", w, Agg.count),
                _window(f"cust_avg_amt_{w}", "customer_id", w, Agg.mean, "amount"),
            )
        ),
        _window("cust_max_amt_30d", "customer_id", "30d", Agg.max, "amount"),
        DerivedFeature(name="cust_secs_since_last", by="customer_id", agg=Agg.time_since_last),
        *(
            f
            for w in ("1d", "7d", "30d")
            for f in (
                _window(f"term_nb_tx_{w}", "terminal_id", w, Agg.count, delay="7d"),
                _window(f"term_risk_{w}", "terminal_id", w, Agg.fraud_rate, delay="7d"),
            )
        ),
    ],
)

BUILTIN_SPECS: dict[str, FeatureSpec] = {s.name: s for s in (TRANSACTIONS30, ULB, CARDS)}
