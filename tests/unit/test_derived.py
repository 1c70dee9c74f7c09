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


def test_a_key_ttl_shorter_than_a_window_is_refused_naming_the_spec_and_feature() -> None:
    """The online state forgets a key after features.key_ttl_s: a shorter ttl than a window +
    delay would cut windows the offline engine computes in full."""
    from fraudops.config import load_settings
    from fraudops.errors import ConfigError

    lookback = 37 * 86_400  # cards: term_nb_tx_30d, window 30d + delay 7d
    with pytest.raises(ConfigError, match=r"features\.key_ttl_s") as refused:
        load_settings(spec="cards", features={"key_ttl_s": lookback - 1})
    assert "'cards'" in str(refused.value) and "'term_nb_tx_30d'" in str(refused.value)
    assert f"at least {lookback}" in str(refused.value)
    # another spec active: loads; the short-ttl spec is refused when asked for
    other = load_settings(spec="transactions30", features={"key_ttl_s": 86_400})
    with pytest.raises(ConfigError, match="'term_nb_tx_30d'"):
        other.feature_spec("cards")
    # just enough: both engines read the ttl from the spec
    settings = load_settings(spec="cards", features={"key_ttl_s": lookback})
    assert settings.feature_spec().key_ttl_s == lookback
    assert settings.feature_spec().key_ttl_us == lookback * 1_000_000
    copied = settings.model_copy(
        update={"features": settings.features.model_copy(update={"key_ttl_s": 4e6})}
    )
    assert copied.feature_spec().key_ttl_s == 4e6  # settings copied: the spec follows


def test_a_spec_may_not_set_its_own_key_ttl() -> None:
    from fraudops.config import load_settings
    from fraudops.errors import ConfigError

    raw = _spec([]).model_dump()
    assert "key_ttl_s" not in raw  # a dump reloads (the serving workers' settings file)
    assert load_settings(specs={"mine": raw}).feature_spec("mine").name == "mine"
    with pytest.raises(ConfigError, match=r"specs.mine.key_ttl_s.*features.key_ttl_s"):
        load_settings(specs={"mine": raw | {"key_ttl_s": 60.0}})
