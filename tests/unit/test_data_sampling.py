"""Traffic samples: generated at the training set's scale, sampled, drifted from one stream."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudops.config import ConceptDrift
from fraudops.data.drift import DEFAULT_PATTERN
from fraudops.data.sampling import request_records, sample_traffic
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError
from fraudops.spec import TRANSACTIONS30
from tests.unit.test_data_synthetic import assert_within_spec, data_settings

SPEC = TRANSACTIONS30
DATA = data_settings(rows=20_000, customers=2_000)


@pytest.fixture(scope="module")
def plain() -> pd.DataFrame:
    return sample_traffic(DATA, SPEC, 1_500, seed=5, id_prefix="t-5-")


def test_a_sample_is_reproducible_shuffled_and_of_the_training_customers(
    plain: pd.DataFrame,
) -> None:
    assert len(plain) == 1_500 and list(plain.index) == list(range(1_500))
    assert plain.equals(sample_traffic(DATA, SPEC, 1_500, seed=5, id_prefix="t-5-"))
    assert not plain.equals(sample_traffic(DATA, SPEC, 1_500, seed=6, id_prefix="t-5-"))
    assert plain["transaction_id"].str.startswith("t-5-").all()
    assert not plain["transaction_timestamp"].is_monotonic_increasing  # random order
    training = generate_transactions(DATA, SPEC)  # customers of data.seed
    assert set(plain["customer_id"]) <= set(training["customer_id"])
    assert_within_spec(plain, SPEC)


def test_a_sample_is_drawn_from_a_generation_at_the_training_sets_scale(
    plain: pd.DataFrame,
) -> None:
    # The customer mix (and with it the velocity features) depends on the rows generated:
    # the sample's rows are rows of a full-scale generation, not a 1,500-row one.
    full = generate_transactions(DATA, SPEC, seed=5, customer_seed=DATA.seed, id_prefix="t-5-")
    assert len(full) == DATA.rows
    picked = full.set_index("transaction_id").loc[plain["transaction_id"]].reset_index()
    assert picked[plain.columns].equals(plain)


def test_data_drift_moves_the_pattern_and_concept_drift_only_labels(plain: pd.DataFrame) -> None:
    drifted = sample_traffic(
        DATA, SPEC, 1_500, seed=5, id_prefix="t-5-", data_drift=DEFAULT_PATTERN
    )
    assert drifted["transaction_id"].equals(plain["transaction_id"])  # the same transactions
    ratio = drifted["transaction_amount"].mean() / plain["transaction_amount"].mean()
    assert ratio == pytest.approx(1.4, rel=0.05)  # data.default_drift: amount ×1.4
    assert drifted["merchant_category_code"].equals(plain["merchant_category_code"])
    assert drifted["is_fraud"].equals(plain["is_fraud"])

    both = sample_traffic(
        DATA,
        SPEC,
        1_500,
        seed=5,
        id_prefix="t-5-",
        data_drift=DEFAULT_PATTERN,
        concept_drift=ConceptDrift(amount_quantile=0.95),
    )
    features = SPEC.feature_names
    assert both[features].equals(drifted[features])  # concept drift leaves the features alone
    flipped = both["is_fraud"] != drifted["is_fraud"]
    assert flipped.sum() > 50  # about 5% of 1,500 rows, less the frauds among them
    high = drifted["transaction_amount"] >= drifted["transaction_amount"].quantile(0.95)
    assert (flipped <= high).all() and (drifted.loc[flipped, "is_fraud"] == 0).all()


def test_request_records_carry_ids_and_features_as_json_values(plain: pd.DataFrame) -> None:
    records = request_records(plain.head(3), SPEC)
    assert list(records[0]) == ["transaction_id", "customer_id", *SPEC.feature_names]
    assert "is_fraud" not in records[0]
    assert type(records[0]["transaction_hour"]) is int
    assert type(records[0]["transaction_amount"]) is float
    assert records[2]["transaction_id"] == plain["transaction_id"].iloc[2]


def test_an_empty_sample_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 1 row"):
        sample_traffic(DATA, SPEC, 0, seed=1, id_prefix="x-")
