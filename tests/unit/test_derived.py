"""Derived-feature declarations: what a spec may say, and the errors that name the entry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fraudops.derived import DerivedFeature, parse_duration
from fraudops.spec import Feature, FeatureKind, FeatureSpec


def _spec(derived: list[dict[str, object]], **extra: object) -> FeatureSpec:
    return FeatureSpec.model_validate(
        {
            "name": "raw",
            "id_column": "tx_id",
            "timestamp_column": "tx_time",
            "label_column": "is_fraud",
            "amount_column": "amount",
            "customer_column": "customer_id",
            "keys": ["customer_id", "terminal_id"],
            "features": [{"name": "amount", "min": 0}],
            "derived": derived,
            **extra,
        }
    )


def test_durations() -> None:
    assert parse_duration("7d", field="w") == 7 * 86_400
    assert parse_duration("12h", field="w") == 43_200
    assert parse_duration("30m", field="w") == 1_800
    assert parse_duration(90, field="w") == 90
    with pytest.raises(ValueError, match="no duration"):
        parse_duration("7 days", field="w")
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0d", field="w")


def test_a_full_declaration_gives_model_features_in_order() -> None:
    spec = _spec(
        [
            {"name": "is_weekend", "calendar": "weekend"},
            {"name": "hour", "calendar": "hour"},
            {"name": "cust_nb_tx_1d", "by": "customer_id", "window": "1d", "agg": "count"},
            {
                "name": "cust_avg_7d",
                "by": "customer_id",
                "window": "7d",
                "agg": "mean",
                "of": "amount",
            },
            {"name": "cust_since", "by": "customer_id", "agg": "time_since_last"},
            {
                "name": "term_risk",
                "by": "terminal_id",
                "window": "7d",
                "delay": "7d",
                "agg": "fraud_rate",
            },
        ]
    )
    assert spec.feature_names == [
        "amount",
        "is_weekend",
        "hour",
        "cust_nb_tx_1d",
        "cust_avg_7d",
        "cust_since",
        "term_risk",
    ]
    assert spec.raw_feature_names == ["amount"]
    # a raw file carries the keys and the plain features, never the derived ones
    assert spec.required_columns == [
        "tx_id",
        "customer_id",
        "terminal_id",
        "tx_time",
        "is_fraud",
        "amount",
    ]
    assert spec.feature("is_weekend").kind is FeatureKind.binary
    assert spec.feature("hour").bounds == (0.0, 23.0)
    assert spec.feature("term_risk").bounds == (0.0, 1.0)
    assert spec.feature("cust_nb_tx_1d").dtype == "int"
    assert spec.derived[5].lookback_s == 14 * 86_400


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "x", "by": "merchant_id", "window": "1d", "agg": "count"},
            "'merchant_id' is no key",
        ),
        (
            {"name": "x", "by": "customer_id", "window": "1d", "agg": "mean", "of": "fee"},
            "'fee' is no plain feature",
        ),
        ({"name": "x", "by": "customer_id", "window": "1d", "agg": "mean"}, "needs `of:`"),
        (
            {"name": "x", "by": "customer_id", "window": "7d", "agg": "fraud_rate"},
            "fraud_rate needs `delay:`",
        ),
        (
            {"name": "x", "calendar": "hour", "delay": "1d"},
            "calendar feature reads the timestamp only",
        ),
        ({"name": "x", "by": "customer_id", "agg": "count"}, "needs `window:`"),
        (
            {"name": "x", "by": "customer_id", "window": "1d", "agg": "time_since_last"},
            "takes no window",
        ),
        ({"name": "x", "by": "customer_id", "window": "1 day", "agg": "count"}, "is no duration"),
        ({"name": "x", "calendar": "fortnight"}, "calendar"),
        ({"name": "amount", "calendar": "hour"}, "duplicate feature names"),
    ],
)
def test_bad_declarations_name_the_entry(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec([entry])


def test_keys_must_not_be_features_or_repeat() -> None:
    with pytest.raises(ValidationError, match="both a feature and a key"):
        _spec([], keys=["amount"])
    with pytest.raises(ValidationError, match="repeat a column"):
        _spec([], keys=["terminal_id", "terminal_id"])


def test_calendar_needs_datetime_timestamps() -> None:
    with pytest.raises(ValidationError, match="timestamp_kind datetime"):
        _spec([{"name": "h", "calendar": "hour"}], timestamp_kind="seconds")


def test_specs_without_derived_features_are_unchanged() -> None:
    spec = FeatureSpec(
        name="plain",
        timestamp_column="t",
        label_column="y",
        features=[Feature(name="a"), Feature(name="b")],
    )
    assert spec.feature_names == spec.raw_feature_names == ["a", "b"]
    assert spec.required_columns == ["t", "y", "a", "b"]
    assert DerivedFeature(name="n", calendar="night").lookback_s == 0
