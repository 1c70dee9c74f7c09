"""Lake table schemas derived from the feature spec."""

from __future__ import annotations

import pytest
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestamptzType,
)

from fraudops.errors import ConfigError, LakeError
from fraudops.lake.schemas import (
    TABLES,
    partition_spec,
    predictions_schema,
    table_schema,
    transactions_schema,
)
from fraudops.spec import TRANSACTIONS30, ULB, FeatureSpec


def _types(schema: Schema) -> dict[str, IcebergType]:
    return {f.name: f.field_type for f in schema.fields}


def test_table_names() -> None:
    assert TABLES == [
        "transactions",
        "predictions",
        "labels",
        "monitoring_runs",
        "feature_drift",
        "alerts",
        "model_events",
        "prediction_stats",
        "label_stats",
        "label_ingests",
    ]
    with pytest.raises(LakeError, match=r"unknown lake table 'transaction'.*transactions"):
        table_schema("transaction", TRANSACTIONS30)


def test_transactions30_columns_in_order_and_typed() -> None:
    schema = transactions_schema(TRANSACTIONS30)
    names = [f.name for f in schema.fields]
    assert names[:3] == ["transaction_id", "customer_id", "transaction_timestamp"]
    assert names[3:33] == TRANSACTIONS30.feature_names
    assert names[33:] == ["is_fraud", "_batch_id", "_loaded_at"]
    types = _types(schema)
    assert types["transaction_timestamp"] == TimestamptzType()
    assert types["transaction_hour"] == LongType()
    assert types["transaction_amount"] == DoubleType()
    assert types["online_transaction"] == LongType()
    assert types["is_fraud"] == IntegerType()
    assert schema.find_field("transaction_id").required
    assert not schema.find_field("transaction_amount").required


def test_ulb_transactions_get_a_generated_id_and_seconds_as_double() -> None:
    schema = transactions_schema(ULB)
    assert schema.fields[0].name == "transaction_id" and schema.fields[0].required
    assert _types(schema)["Time"] == DoubleType()
    assert _types(schema)["Class"] == IntegerType()
    assert len(schema.fields) == 1 + 1 + 29 + 1 + 2


def test_predictions_carry_typed_features_and_the_serving_columns() -> None:
    schema = predictions_schema(TRANSACTIONS30)
    types = _types(schema)
    assert schema.find_field("inference_id").required
    assert types["request_time"] == TimestamptzType()
    assert types["amount"] == DoubleType()
    assert types["customer_age"] == LongType()
    assert types["prediction"] == IntegerType()
    assert types["reason_codes"] == StringType()
    assert types["shadow_probability"] == DoubleType()
    assert not schema.find_field("shadow_probability").required


def test_predictions_of_ulb_leave_out_amount_that_would_clash_with_the_feature() -> None:
    # DuckDB folds identifier case: `amount` and `Amount` would be one ambiguous name.
    names = [f.name.lower() for f in predictions_schema(ULB).fields]
    assert names.count("amount") == 1
    assert _types(predictions_schema(ULB))["Amount"] == DoubleType()


def test_a_feature_clashing_with_a_fixed_column_is_a_config_error() -> None:
    spec = FeatureSpec.model_validate(
        {
            "name": "clash",
            "timestamp_column": "ts",
            "label_column": "y",
            "features": [{"name": "Probability"}],
        }
    )
    with pytest.raises(ConfigError, match="column 'probability' clashes with column 'Probability'"):
        predictions_schema(spec)


def test_only_predictions_are_partitioned_by_day_of_request() -> None:
    for name in TABLES:
        schema = table_schema(name, TRANSACTIONS30)
        spec = partition_spec(name, schema)
        if name == "predictions":
            (field,) = spec.fields
            assert isinstance(field.transform, DayTransform)
            assert schema.find_field(field.source_id).name == "request_time"
        else:
            assert spec.is_unpartitioned()


def test_monitoring_and_event_tables() -> None:
    runs = _types(table_schema("monitoring_runs", ULB))
    assert runs["n_current"] == LongType() and runs["drifted_count"] == IntegerType()
    assert runs["data_drift_detected"] == BooleanType()
    drift = table_schema("feature_drift", ULB)
    assert drift.find_field("feature").required and drift.find_field("run_id").required
    assert _types(table_schema("alerts", ULB))["attempts"] == IntegerType()
    events = [f.name for f in table_schema("model_events", ULB).fields]
    assert events[:3] == ["event_id", "event_time", "spec"]
    assert {"champion_before", "champion_after", "trigger", "monitoring_run_id"} <= set(events)
    labels = _types(table_schema("labels", ULB))
    assert labels["label"] == IntegerType() and labels["confirmed_at"] == TimestamptzType()


def test_cards_predictions_log_every_derived_feature_and_transactions_stay_raw() -> None:
    from fraudops.lake.evolution import columns_to_add
    from fraudops.lake.schemas import served_raw_columns
    from fraudops.spec import CARDS

    derived = [d.name for d in CARDS.derived]
    raw = served_raw_columns(CARDS)  # the served time and keys, for the recomputation
    assert raw == ["tx_time", "terminal_id"]
    predictions = predictions_schema(CARDS)
    names = [f.name for f in predictions.fields]
    # Appended last, typed as model features (counts and calendar readings as longs), then
    # the served raw columns.
    assert names[-len(derived) - len(raw) :] == derived + raw
    assert predictions.find_field("cust_nb_tx_1d").field_type == LongType()
    assert predictions.find_field("is_night").field_type == LongType()
    assert predictions.find_field("term_risk_7d").field_type == DoubleType()
    assert "amount" in names and names.index("amount") < names.index("probability")
    transactions = [f.name for f in transactions_schema(CARDS).fields]
    assert not set(derived) & set(transactions)
    assert {"tx_id", "customer_id", "terminal_id", "tx_time", "amount", "is_fraud"} <= set(
        transactions
    )
    # A predictions table created before the spec derived features upgrades by adding them.
    older = Schema(*predictions.fields[: -len(derived) - len(raw)])
    added = columns_to_add(older, predictions)
    assert added is not None and [f.name for f in added] == derived + raw
