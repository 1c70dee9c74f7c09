"""The synthetic generator: schema, bounds, determinism, time, customers and a learnable signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from fraudops.config import DataSettings
from fraudops.data.synthetic import generate_transactions, time_range
from fraudops.errors import ConfigError
from fraudops.spec import TRANSACTIONS30, ULB, FeatureKind, FeatureSpec

SPEC = TRANSACTIONS30


def data_settings(**values: object) -> DataSettings:
    # model_validate: mypy (without the pydantic plugin) rejects keyword construction.
    return DataSettings.model_validate(values)


SMALL = data_settings(customers=500)


def assert_within_spec(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    """Every feature column has the spec's storage type and stays in its bounds and categories."""
    for feature in spec.features:
        values = frame[feature.name]
        expected = np.int64 if feature.dtype == "int" else np.float64
        assert values.dtype == expected, feature.name
        assert values.notna().all(), feature.name
        lo, hi = feature.bounds
        if lo is not None:
            assert values.min() >= lo, (feature.name, values.min())
        if hi is not None:
            assert values.max() <= hi, (feature.name, values.max())
        if feature.kind is FeatureKind.binary:
            assert set(values.unique()) <= {0, 1}, feature.name
        if feature.categories is not None:
            assert set(values.unique()) <= set(feature.categories), feature.name


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_transactions(SMALL, SPEC, rows=5_000, seed=11)


def test_columns_dtypes_and_bounds_follow_the_spec(frame: pd.DataFrame) -> None:
    assert sorted(frame.columns) == sorted(SPEC.required_columns)
    for column in ("transaction_id", "customer_id"):
        assert frame[column].map(lambda v: isinstance(v, str)).all(), column
    assert str(frame["transaction_timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["is_fraud"].dtype == np.int64
    assert frame["transaction_id"].is_unique
    assert frame["transaction_id"].iloc[0] == "tx-000000000"
    assert frame["customer_id"].str.fullmatch(r"cust-\d{5}").all()
    assert_within_spec(frame, SPEC)


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = generate_transactions(SMALL, SPEC, rows=2_000, seed=5)
    again = generate_transactions(SMALL, SPEC, rows=2_000, seed=5)
    other = generate_transactions(SMALL, SPEC, rows=2_000, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first["transaction_amount"].equals(other["transaction_amount"])


def test_defaults_come_from_the_settings() -> None:
    data = data_settings(rows=1_234, seed=9, customers=300)
    frame = generate_transactions(data, SPEC)
    assert len(frame) == 1_234
    pd.testing.assert_frame_equal(frame, generate_transactions(data, SPEC, rows=1_234, seed=9))


@pytest.mark.parametrize(("rows", "rate"), [(5_000, 0.005), (4_000, 0.02), (3, 0.005)])
def test_fraud_count_is_the_configured_rate(rows: int, rate: float) -> None:
    frame = generate_transactions(data_settings(fraud_rate=rate, customers=100), SPEC, rows=rows)
    assert frame["is_fraud"].sum() == max(1, round(rows * rate))


def test_fraud_is_stationary_over_the_year() -> None:
    frame = generate_transactions(
        data_settings(fraud_rate=0.02, customers=2_000), SPEC, rows=20_000, seed=3
    )
    quarters = frame.groupby(frame["transaction_timestamp"].dt.quarter)["is_fraud"].mean()
    assert len(quarters) == 4
    assert quarters.between(0.014, 0.026).all(), quarters.to_dict()


def test_timestamps_cover_the_months_and_agree_with_hour_and_day(frame: pd.DataFrame) -> None:
    start, end = time_range(SMALL)
    assert (start, end) == (
        pd.Timestamp("2025-01-01", tz="UTC"),
        pd.Timestamp("2026-01-01", tz="UTC"),
    )
    stamps = frame["transaction_timestamp"]
    assert stamps.min() >= start and stamps.max() < end
    assert stamps.is_monotonic_increasing
    assert stamps.dt.month.nunique() == 12
    assert (frame["transaction_hour"] == stamps.dt.hour).all()
    assert (frame["transaction_day_of_week"] == stamps.dt.dayofweek).all()


def test_hour_of_day_pattern_favours_daytime_and_fraud_the_night(frame: pd.DataFrame) -> None:
    big = generate_transactions(
        data_settings(fraud_rate=0.05, customers=1_000), SPEC, rows=20_000, seed=1
    )
    night = big["transaction_hour"].between(0, 5)
    legit, fraud = big["is_fraud"] == 0, big["is_fraud"] == 1
    assert night[legit].mean() < 0.05
    assert night[fraud].mean() > 3 * night[legit].mean()
    assert big.loc[legit, "transaction_hour"].between(10, 20).mean() > 0.55


def test_other_start_and_months() -> None:
    data = data_settings(start="2024-03-15", months=2, customers=100)
    stamps = generate_transactions(data, SPEC, rows=1_000)["transaction_timestamp"]
    assert stamps.min() >= pd.Timestamp("2024-03-15", tz="UTC")
    assert stamps.max() < pd.Timestamp("2024-05-15", tz="UTC")


def test_customers_are_all_present_with_stable_attributes(frame: pd.DataFrame) -> None:
    assert frame["customer_id"].nunique() == SMALL.customers
    stable = [
        "customer_age",
        "customer_gender",
        "customer_tenure_months",
        "account_age_days",
        "credit_limit",
        "previous_fraud_incidents",
    ]
    per_customer = frame.groupby("customer_id")[stable].nunique()
    assert (per_customer == 1).all().all()
    # The account is no older than the relationship (plus its first month).
    assert (frame["account_age_days"] <= frame["customer_tenure_months"] * 30.44 + 30).all()
    assert (frame["customer_tenure_months"] <= (frame["customer_age"] - 18) * 12).all()


def test_a_shared_customer_seed_shares_the_customers() -> None:
    a = generate_transactions(SMALL, SPEC, rows=3_000, seed=1, customer_seed=77)
    b = generate_transactions(SMALL, SPEC, rows=3_000, seed=2, customer_seed=77)
    attrs = ["customer_age", "credit_limit", "account_age_days"]
    left = a.groupby("customer_id")[attrs].first()
    right = b.groupby("customer_id")[attrs].first()
    pd.testing.assert_frame_equal(left, right)


def test_marginals_are_plausible(frame: pd.DataFrame) -> None:
    amount = frame["transaction_amount"]
    assert amount.mean() > 1.4 * amount.median()  # right-skewed
    log_amount = np.log(amount[amount > 1])
    assert abs(log_amount.skew()) < 1.0  # roughly symmetric on the log scale: log-normal-ish
    assert 15 < amount.median() < 100
    mcc = frame["merchant_category_code"].value_counts()
    assert {5411, 5812, 5999, 4829, 7995, 6011} <= set(mcc.index)
    assert mcc.index[0] == 5411
    legit = frame[frame["is_fraud"] == 0]
    assert (legit["card_present"] == 1 - legit["online_transaction"]).all()
    assert (legit["chip_transaction"] <= legit["card_present"]).all()
    assert (frame["num_transactions_7days"] >= frame["num_transactions_24h"]).all()
    assert (frame["max_transaction_amount_30days"] >= frame["avg_transaction_amount_30days"]).all()
    assert 0.2 < frame["online_transaction"].mean() < 0.45
    assert frame["international_transaction"].mean() < 0.1


def test_fraud_looks_different_on_the_seed_patterns() -> None:
    big = generate_transactions(
        data_settings(fraud_rate=0.05, customers=1_000), SPEC, rows=20_000, seed=2
    )
    fraud, legit = big[big["is_fraud"] == 1], big[big["is_fraud"] == 0]
    assert (1 - fraud["cvv_match"]).mean() > 10 * (1 - legit["cvv_match"]).mean()
    assert fraud["high_risk_country"].mean() > 10 * legit["high_risk_country"].mean()
    assert fraud["velocity_score"].median() > legit["velocity_score"].median()
    assert fraud["available_credit_ratio"].median() < legit["available_credit_ratio"].median()
    assert (fraud["account_age_days"] < 120).mean() > 2 * (legit["account_age_days"] < 120).mean()


def test_the_signal_is_learnable_but_not_perfectly() -> None:
    frame = generate_transactions(
        data_settings(fraud_rate=0.02, customers=2_000), SPEC, rows=20_000, seed=4
    )
    x = frame[SPEC.feature_names].to_numpy(float)
    y = frame["is_fraud"].to_numpy()
    cut = int(len(frame) * 0.7)  # time-ordered: the frame is sorted by timestamp
    model = xgb.XGBClassifier(
        n_estimators=150,
        max_depth=3,
        learning_rate=0.1,
        n_jobs=1,
        tree_method="hist",
        random_state=0,
    )
    model.fit(x[:cut], y[:cut])
    auc = roc_auc_score(y[cut:], model.predict_proba(x[cut:])[:, 1])
    assert 0.88 < auc < 0.985, auc
    simple = (
        (1 - frame["cvv_match"])
        + (1 - frame["address_verification_match"])
        + frame["high_risk_country"]
        + (frame["velocity_score"] > 0.8)
        + (1 - frame["available_credit_ratio"])
    )
    assert 0.72 < roc_auc_score(y, simple) < 0.95


def test_other_specs_are_refused() -> None:
    with pytest.raises(ConfigError, match="transactions30"):
        generate_transactions(SMALL, ULB, rows=10)
    fewer = SPEC.model_copy(update={"name": "mine", "features": SPEC.features[:-1]})
    with pytest.raises(ConfigError, match="available_credit_ratio"):
        generate_transactions(SMALL, fewer, rows=10)


def test_bad_rows_and_start_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="rows"):
        generate_transactions(SMALL, SPEC, rows=0)
    with pytest.raises(ConfigError, match=r"data\.start"):
        generate_transactions(data_settings(start="not a date"), SPEC, rows=10)
