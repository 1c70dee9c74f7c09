"""validate_frame: every kind of bad input is named with its column, rows and values."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fraudops.errors import ValidationError
from fraudops.lake.validation import validate_frame
from fraudops.spec import TRANSACTIONS30, ULB, Feature, FeatureSpec

# ---- frame builders (also used by the lake integration tests) ---------------------------------


def transactions30_frame(n: int = 200, *, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """``n`` valid rows of the transactions30 spec, ids ``tx-<start>``..."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "transaction_id": [f"tx-{start + i:06d}" for i in range(n)],
        "customer_id": [f"cust-{i % 17}" for i in range(n)],
        "transaction_timestamp": pd.date_range("2025-03-01", periods=n, freq="37min", tz="UTC"),
        "is_fraud": (rng.random(n) < 0.1).astype(int),
    }
    for feature in TRANSACTIONS30.features:
        data[feature.name] = _feature_values(feature, rng, n)
    return pd.DataFrame(data)


def ulb_frame(n: int = 200, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"Time": np.sort(rng.uniform(0, 5_000, n)).round(0)}
    for i in range(1, 29):
        data[f"V{i}"] = rng.normal(0, 1, n)
    data["Amount"] = rng.uniform(0, 500, n).round(2)
    data["Class"] = (rng.random(n) < 0.05).astype(np.int64)
    return pd.DataFrame(data)


def _feature_values(feature: Feature, rng: np.random.Generator, n: int) -> np.ndarray:
    lo, hi = feature.bounds
    low = lo if lo is not None else 0.0
    if feature.categories:
        return rng.choice(feature.categories, n)
    high = min(hi if hi is not None else low + 100, low + 100)
    if feature.dtype == "int":
        return rng.integers(int(low), int(high) + 1, n)
    return rng.uniform(low, high, n)


def refusal(frame: pd.DataFrame | pa.Table, spec: FeatureSpec = TRANSACTIONS30) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_frame(frame, spec, source="batch.csv")
    return str(caught.value)


def problem_line(message: str, column: str) -> str:
    lines = [line for line in message.splitlines() if f"column {column!r}" in line]
    assert len(lines) == 1, message
    return lines[0]


# ---- a clean frame --------------------------------------------------------------------------


def test_clean_frame_passes_and_is_cast_to_the_lake_types() -> None:
    frame = transactions30_frame(50)
    frame["notes"] = "extra column"  # not in the spec: dropped
    clean = validate_frame(frame, TRANSACTIONS30)

    assert clean.num_rows == 50
    assert clean.column_names[:3] == ["transaction_id", "customer_id", "transaction_timestamp"]
    assert clean.column_names[-1] == "is_fraud"
    assert "notes" not in clean.column_names
    assert set(clean.column_names) == set(TRANSACTIONS30.required_columns)
    assert clean.schema.field("transaction_timestamp").type == pa.timestamp("us", tz="UTC")
    assert clean.schema.field("is_fraud").type == pa.int32()
    for feature in TRANSACTIONS30.features:
        expected = pa.int64() if feature.dtype == "int" else pa.float64()
        assert clean.schema.field(feature.name).type == expected, feature.name
    assert clean["transaction_amount"].to_pylist() == pytest.approx(
        frame["transaction_amount"].tolist()
    )
    assert clean["is_fraud"].to_pylist() == frame["is_fraud"].tolist()


def test_csv_text_columns_are_parsed() -> None:
    # What the loader hands over for a CSV: every column as text, empty cells as nulls.
    frame = transactions30_frame(20).astype(str)
    frame["transaction_timestamp"] = [f"2025-03-01T{h:02d}:15:00Z" for h in range(20)]
    frame.loc[0, "transaction_hour"] = " 7 "  # surrounding spaces are tolerated
    frame.loc[1, "transaction_hour"] = "3.0"  # an integral float is an integer
    table = pa.Table.from_pandas(frame, preserve_index=False)
    clean = validate_frame(table, TRANSACTIONS30)

    assert clean["transaction_hour"].to_pylist()[:2] == [7, 3]
    first = clean["transaction_timestamp"][0].as_py()
    assert (first.hour, first.minute, first.utcoffset().total_seconds()) == (0, 15, 0)


@pytest.mark.parametrize(
    ("values", "expected_hour"),
    [
        (pd.date_range("2025-03-01 10:00", periods=3, freq="h"), 10),  # naive: taken as UTC
        (pd.date_range("2025-03-01 10:00", periods=3, freq="h", tz="Europe/Paris"), 9),
        (["2025-03-01 10:00:00", "2025-03-01T11:00:00+00:00", "2025-03-01"], 10),  # mixed text
    ],
)
def test_timestamps_in_any_iso_form_become_utc(values: Any, expected_hour: int) -> None:
    frame = transactions30_frame(3)
    frame["transaction_timestamp"] = values
    clean = validate_frame(frame, TRANSACTIONS30)
    assert clean["transaction_timestamp"][0].as_py().hour == expected_hour


def test_ulb_frame_without_ids_passes_with_seconds_as_double() -> None:
    frame = ulb_frame(30)
    clean = validate_frame(frame, ULB)
    assert clean.column_names[0] == "Time"
    assert clean.schema.field("Time").type == pa.float64()
    assert clean.schema.field("Class").type == pa.int32()
    assert "transaction_id" not in clean.column_names  # the loader generates it


# ---- each kind of problem -------------------------------------------------------------------


def test_missing_columns_are_all_named_with_a_case_hint() -> None:
    frame = transactions30_frame(10).drop(columns=["pin_used", "cvv_match"])
    frame = frame.rename(columns={"is_fraud": "IS_FRAUD"})
    message = refusal(frame)
    assert "batch.csv" in message and "'transactions30'" in message
    assert "missing column(s): 'is_fraud', 'pin_used', 'cvv_match'" in message
    assert "found 'IS_FRAUD' for 'is_fraud'" in message


def test_data_of_another_spec_is_recognised() -> None:
    message = refusal(ulb_frame(5), TRANSACTIONS30)
    assert "(the columns are 'Time', 'V1', 'V2', 'V3', 'V4', ...: data of another spec?)" in message


def test_text_in_a_numeric_column_names_rows_and_values() -> None:
    frame = transactions30_frame(10)
    frame["transaction_amount"] = frame["transaction_amount"].astype(object)
    frame.loc[[2, 6], "transaction_amount"] = ["abc", "12,5"]
    line = problem_line(refusal(frame), "transaction_amount")
    assert "not a number at rows 3, 7" in line
    assert "'abc', '12,5'" in line


def test_fraction_in_an_int_column() -> None:
    frame = transactions30_frame(10)
    frame["customer_age"] = frame["customer_age"].astype(float)
    frame.loc[4, "customer_age"] = 30.5
    line = problem_line(refusal(frame), "customer_age")
    assert "not an integer at row 5 (value 30.5)" in line


@pytest.mark.parametrize("bad", [np.nan, None])
def test_missing_feature_value(bad: Any) -> None:
    frame = transactions30_frame(10)
    frame["velocity_score"] = frame["velocity_score"].astype(object)
    frame.loc[8, "velocity_score"] = bad
    line = problem_line(refusal(frame), "velocity_score")
    assert "missing value" in line and "row 9" in line


def test_infinite_feature_value() -> None:
    frame = transactions30_frame(10)
    frame.loc[0, "credit_limit"] = np.inf
    assert "infinite value at row 1 (value inf)" in problem_line(refusal(frame), "credit_limit")


def test_out_of_range_values_name_the_bounds() -> None:
    frame = transactions30_frame(10)
    frame.loc[[1, 3], "transaction_hour"] = [24, -1]
    frame.loc[5, "merchant_reputation_score"] = 1.5
    frame.loc[6, "online_transaction"] = 2  # binary
    message = refusal(frame)
    assert "out of range [0, 23] at rows 2, 4 (values 24, -1)" in problem_line(
        message, "transaction_hour"
    )
    assert "out of range [0, 1] at row 6 (value 1.5)" in problem_line(
        message, "merchant_reputation_score"
    )
    assert "out of range [0, 1] at row 7 (value 2)" in problem_line(message, "online_transaction")


def test_unknown_category() -> None:
    frame = transactions30_frame(10)
    frame.loc[2, "transaction_type_code"] = 9
    line = problem_line(refusal(frame), "transaction_type_code")
    assert "unknown category (allowed: [1, 2, 3, 4, 5]) at row 3 (value 9)" in line


def test_huge_integers_are_refused_not_wrapped() -> None:
    frame = transactions30_frame(4)
    frame["is_fraud"] = np.array([0, 1, 2**40, 0], dtype=np.int64)
    frame["num_transactions_24h"] = np.array([1, 2, 3, 2**60], dtype=np.int64)
    message = refusal(frame)
    assert "label must be 0 or 1 at row 3 (value 1099511627776)" in message
    assert "num_transactions_24h': integer beyond ±9007199254740992 at row 4" in message


def test_label_must_be_zero_or_one() -> None:
    frame = transactions30_frame(10)
    frame.loc[[0, 9], "is_fraud"] = [2, -1]
    line = problem_line(refusal(frame), "is_fraud")
    assert "label must be 0 or 1 at rows 1, 10 (values 2, -1)" in line


def test_unparseable_timestamp() -> None:
    frame = transactions30_frame(10)
    frame["transaction_timestamp"] = frame["transaction_timestamp"].astype(str)
    frame.loc[3, "transaction_timestamp"] = "yesterday"
    line = problem_line(refusal(frame), "transaction_timestamp")
    assert "not an ISO-8601 date-time at row 4 (value 'yesterday')" in line


def test_duplicate_and_missing_ids() -> None:
    frame = transactions30_frame(10)
    frame.loc[7, "transaction_id"] = "tx-000002"
    frame.loc[5, "transaction_id"] = None
    message = refusal(frame)
    lines = [line for line in message.splitlines() if "'transaction_id'" in line]
    assert "missing id at row 6" in lines[0]
    assert "duplicate id at rows 3, 8 (values 'tx-000002', 'tx-000002')" in lines[1]


def test_negative_seconds_in_a_seconds_timestamp() -> None:
    frame = ulb_frame(10)
    frame.loc[0, "Time"] = -3.0
    assert "negative seconds" in problem_line(refusal(frame, ULB), "Time")


def test_wrong_arrow_type_for_a_number_column() -> None:
    frame = transactions30_frame(5)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("customer_age"),
        "customer_age",
        pa.array([pd.Timestamp("2025-01-01")] * 5),
    )
    line = problem_line(refusal(table), "customer_age")
    assert "expected a number, not timestamp[us] at all 5 rows (first value 2025-01-01" in line


def test_many_bad_rows_are_counted_and_a_few_shown() -> None:
    frame = transactions30_frame(100)
    frame.loc[frame.index[10:], "customer_age"] = 5  # below 18 in 90 rows
    line = problem_line(refusal(frame), "customer_age")
    assert "out of range [18, 100] at 90 rows, e.g. rows 11, 12, 13, 14, 15 (values 5, " in line
    frame["customer_age"] = 5
    line = problem_line(refusal(frame), "customer_age")
    assert "out of range [18, 100] at all 100 rows (first value 5)" in line


def test_every_problem_is_listed_in_one_message() -> None:
    frame = transactions30_frame(10).drop(columns=["card_present"])
    frame.loc[0, "transaction_hour"] = 99
    frame.loc[1, "is_fraud"] = 7
    message = refusal(frame)
    assert "(3 problems; nothing was written)" in message
    assert re.search(r"missing column\(s\): 'card_present'", message)


def test_mixed_object_column_in_pandas_is_reported_not_crashing() -> None:
    frame = transactions30_frame(6)
    frame["credit_limit"] = pd.Series([1.0, "x", 3.0, {"a": 1}, 5.0, 6.0], dtype=object)
    line = problem_line(refusal(frame), "credit_limit")
    assert "not a number at rows 2, 4" in line


def test_empty_frame_and_duplicate_column_names() -> None:
    assert "no data rows" in refusal(transactions30_frame(0))
    frame = transactions30_frame(3)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("is_fraud", table["is_fraud"])
    assert "duplicate column name(s): 'is_fraud'" in refusal(table)


def test_custom_spec_feature_without_bounds_accepts_any_finite_value() -> None:
    spec = FeatureSpec.model_validate(
        {
            "name": "mini",
            "timestamp_column": "ts",
            "label_column": "y",
            "features": [{"name": "x", "kind": "numeric", "dtype": "float"}],
        }
    )
    frame = pd.DataFrame({"ts": ["2025-01-01"] * 3, "y": [0, 1, 0], "x": [-1e9, 0.0, 1e9]})
    clean = validate_frame(frame, spec)
    assert clean.column_names == ["ts", "x", "y"]
