"""Drift injection, drifted sets with their ground truth, and the data set files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.config import DriftRule, Settings
from fraudops.data.drift import apply_drift, drift_rules, generate_drifted_set
from fraudops.data.files import write_datasets
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError, FraudopsError
from fraudops.spec import TRANSACTIONS30
from tests.unit.test_data_synthetic import assert_within_spec, data_settings

SPEC = TRANSACTIONS30
DATA = data_settings(customers=300, drift_samples=1_500)


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate_transactions(DATA, SPEC, rows=2_000, seed=3)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---- rules ---------------------------------------------------------------------------------


def test_drift_rules_by_name() -> None:
    assert drift_rules(DATA, None) == DATA.default_drift
    assert drift_rules(DATA, "default") == DATA.default_drift
    assert drift_rules(DATA, "run3")["credit_limit"].factor == 8.0
    assert "transaction_timestamp" not in drift_rules(DATA, None)


def test_unknown_pattern_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'run9'.*default, run1, run2, run3, run4, run5, run6"):
        drift_rules(DATA, "run9")


# ---- apply_drift ---------------------------------------------------------------------------


def test_zero_noise_rules_are_exact(base: pd.DataFrame) -> None:
    rules = {
        "transaction_amount": DriftRule(type="multiplicative", factor=1.4),
        "num_transactions_24h": DriftRule(type="additive", shift=3),
        "distance_from_home_km": DriftRule(type="additive", shift=2.5),
    }
    out = apply_drift(base, rules, SPEC, _rng())
    np.testing.assert_array_equal(out["transaction_amount"], base["transaction_amount"] * 1.4)
    np.testing.assert_array_equal(out["num_transactions_24h"], base["num_transactions_24h"] + 3)
    np.testing.assert_array_equal(out["distance_from_home_km"], base["distance_from_home_km"] + 2.5)
    assert out["num_transactions_24h"].dtype == np.int64
    untouched = [c for c in base.columns if c not in rules]
    pd.testing.assert_frame_equal(out[untouched], base[untouched])


def test_returns_a_copy(base: pd.DataFrame) -> None:
    before = base.copy()
    apply_drift(base, {"credit_limit": DriftRule(factor=3.0, noise=1.0)}, SPEC, _rng())
    pd.testing.assert_frame_equal(base, before)


def test_noise_is_drawn_per_row_and_ints_are_rounded(base: pd.DataFrame) -> None:
    rules = {
        "num_transactions_7days": DriftRule(type="additive", shift=10, noise=3),
        "velocity_score": DriftRule(factor=2.0, noise=0.1),
    }
    out = apply_drift(base, rules, SPEC, _rng())
    delta = out["num_transactions_7days"] - base["num_transactions_7days"]
    assert out["num_transactions_7days"].dtype == np.int64
    assert 9 < delta.mean() < 11 and 2.5 < delta.std() < 3.5
    ratio = out["velocity_score"] / base["velocity_score"]
    assert 1.98 < ratio.mean() < 2.02 and 0.08 < ratio.std() < 0.12
    again = apply_drift(base, rules, SPEC, _rng())
    pd.testing.assert_frame_equal(out, again)


def test_results_are_clipped_to_the_bounds(base: pd.DataFrame) -> None:
    rules = {
        "available_credit_ratio": DriftRule(factor=5.0),
        "account_age_days": DriftRule(type="additive", shift=-100_000),
        "merchant_category_code": DriftRule(type="additive", shift=9_000),
        "transaction_type_code": DriftRule(type="additive", shift=10),
        "online_transaction": DriftRule(type="additive", shift=-3),
        "customer_age": DriftRule(factor=0.1),
    }
    out = apply_drift(base, rules, SPEC, _rng())
    assert out["available_credit_ratio"].max() == 1.0
    assert (out["account_age_days"] == 0).all()
    assert out["merchant_category_code"].max() == 9_999
    assert (out["transaction_type_code"] == 5).all()  # the largest declared category
    assert (out["online_transaction"] == 0).all()
    assert (out["customer_age"] == 18).all()
    assert_within_spec(out, SPEC)


def test_unknown_feature_names_it_and_the_pattern(base: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'run7'.*'card_colour'"):
        apply_drift(base, {"card_colour": DriftRule(factor=2.0)}, SPEC, _rng(), pattern="run7")
    with pytest.raises(ConfigError, match=r"transaction_timestamp.*not a feature"):
        apply_drift(
            base, {"transaction_timestamp": DriftRule(type="additive", shift=50_000)}, SPEC, _rng()
        )


def test_every_configured_pattern_keeps_the_data_valid(base: pd.DataFrame) -> None:
    for name in [None, *DATA.drift_patterns]:
        out = apply_drift(base, drift_rules(DATA, name), SPEC, _rng(), pattern=name)
        assert_within_spec(out, SPEC)


# ---- drifted sets --------------------------------------------------------------------------


def test_drifted_set_and_ground_truth() -> None:
    drifted, truth = generate_drifted_set(DATA, SPEC, pattern="run1")
    assert len(drifted) == len(truth) == DATA.drift_samples
    assert "is_fraud" not in drifted.columns
    assert sorted(drifted.columns) == sorted(c for c in SPEC.required_columns if c != "is_fraud")
    assert list(truth.columns) == ["transaction_id", "is_fraud"]
    assert (truth["transaction_id"] == drifted["transaction_id"]).all()
    assert drifted["transaction_id"].str.startswith("tx-d-run1-").all()
    assert truth["is_fraud"].sum() == round(DATA.drift_samples * DATA.fraud_rate)
    assert_within_spec(drifted, SPEC)
    training = generate_transactions(DATA, SPEC, rows=3_000)
    assert not set(training["transaction_id"]) & set(drifted["transaction_id"])
    # Same customer population as the training set (customer seed = data.seed).
    joined = drifted.merge(training.drop_duplicates("customer_id"), on="customer_id")
    assert len(joined) > 0
    assert (joined["customer_age_x"] == joined["customer_age_y"]).all()


def test_drifted_sets_are_deterministic_and_share_their_base_sample() -> None:
    a, truth_a = generate_drifted_set(DATA, SPEC, pattern="run6", rows=800)
    b, _ = generate_drifted_set(DATA, SPEC, pattern="run6", rows=800)
    pd.testing.assert_frame_equal(a, b)
    c, truth_c = generate_drifted_set(DATA, SPEC, pattern="run5", rows=800)
    assert (truth_a["is_fraud"] == truth_c["is_fraud"]).all()
    assert (a["customer_age"] == c["customer_age"]).all()  # run5/run6 don't touch it
    assert (a["account_age_days"] <= c["account_age_days"]).mean() > 0.95  # run6: × 0.3


def test_run3_multiplies_credit_limit_by_about_eight() -> None:
    drifted, _ = generate_drifted_set(DATA, SPEC, pattern="run3", rows=2_000)
    base = generate_transactions(
        DATA,
        SPEC,
        rows=2_000,
        seed=DATA.drift_seed,
        customer_seed=DATA.seed,
        id_prefix="tx-d-run3-",
    )
    assert (base["transaction_id"] == drifted["transaction_id"]).all()
    ratio = drifted["credit_limit"] / base["credit_limit"]
    assert 7.8 < ratio.median() < 8.2
    assert 1.8 < ratio.std() < 2.2
    mcc_shift = drifted["merchant_category_code"] - base["merchant_category_code"]
    assert 480 < mcc_shift.mean() < 520


# ---- files ---------------------------------------------------------------------------------


def test_write_datasets_parquet(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "data"
    files = write_datasets(settings, SPEC, out, rows=3_000, seed=8, patterns=["run3"])
    assert sorted(p.name for p in out.iterdir()) == [
        "drifted_default.parquet",
        "drifted_run3.parquet",
        "ground_truth_default.parquet",
        "ground_truth_run3.parquet",
        "transactions.parquet",
    ]
    train = pd.read_parquet(files.transactions)
    pd.testing.assert_frame_equal(
        train, generate_transactions(settings.data, SPEC, rows=3_000, seed=8)
    )
    assert files.rows == 3_000 and files.seed == 8
    assert files.fraud_rate == pytest.approx(15 / 3_000)
    assert files.customers == train["customer_id"].nunique()
    drifted = pd.read_parquet(files.drifted["run3"])
    truth = pd.read_parquet(files.ground_truth["run3"])
    assert len(drifted) == len(truth) == files.drift_rows == settings.data.drift_samples
    assert str(drifted["transaction_timestamp"].dtype) == "datetime64[us, UTC]"
    summary = json.loads(json.dumps(files.to_dict()))
    assert summary["drifted"]["run3"] == str(out / "drifted_run3.parquet")
    assert summary["time_start"].startswith("2025-01-01")
    assert summary["elapsed_seconds"] > 0


def test_write_datasets_csv_all_patterns(settings: Settings, tmp_path: Path) -> None:
    files = write_datasets(settings, SPEC, tmp_path, rows=1_000, fmt="csv")
    assert list(files.drifted) == ["default", "run1", "run2", "run3", "run4", "run5", "run6"]
    train = pd.read_csv(files.transactions, parse_dates=["transaction_timestamp"])
    assert len(train) == 1_000
    assert train["transaction_timestamp"].min() >= pd.Timestamp("2025-01-01", tz="UTC")
    truth = pd.read_csv(files.ground_truth["run6"])
    assert list(truth.columns) == ["transaction_id", "is_fraud"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_pattern_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.raises(ConfigError, match="run42"):
        write_datasets(settings, SPEC, out, rows=500, patterns=["run1", "run42"])
    assert not out.exists()


def test_a_failed_write_leaves_no_temporary_or_partial_file(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "ground_truth_default.parquet").mkdir()  # a folder where a file must go
    with pytest.raises(FraudopsError, match="ground_truth_default"):
        write_datasets(settings, SPEC, tmp_path, rows=500, patterns=[])
    assert not list(tmp_path.glob(".*.tmp"))
    for path in tmp_path.glob("*.parquet"):  # whatever was renamed into place is complete
        if path.is_file():
            assert len(pd.read_parquet(path)) in (500, settings.data.drift_samples)
