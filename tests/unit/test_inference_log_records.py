"""Inference-log records: the JSON line the request path writes, the rows the writer stores."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from fraudops.inference_log.records import (
    CHECKSUM_MISMATCH,
    CHECKSUM_MISSING,
    CORRUPT,
    TORN,
    PredictionRecord,
    PredictionsDecoder,
    encode,
    parse_line,
    read_line,
    unreadable_kind,
)
from fraudops.lake.schemas import predictions_schema
from fraudops.spec import BUILTIN_SPECS, FeatureSpec

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def make_record(
    spec: FeatureSpec, index: int = 0, *, inference_id: str | None = None, **changes: Any
) -> PredictionRecord:
    """A realistic record of ``spec``; ``index`` varies the values and the request time."""
    features: dict[str, float | int | None] = {
        f.name: (index % 3 if f.dtype == "int" else float(index) + 0.25) for f in spec.features
    }
    fields: dict[str, Any] = {
        "inference_id": inference_id or str(uuid.uuid4()),
        "request_time": T0 + dt.timedelta(minutes=index),
        "model_name": f"fraudops-{spec.name}",
        "model_version": "3",
        "run_id": "run-abc",
        "transaction_id": f"tx-{index}",
        "customer_id": f"c-{index % 7}",
        "amount": 10.0 + index,
        "features": features,
        "probability": 0.91,
        "prediction": 1,
        "threshold": 0.5,
        "risk_tier": "critical",
        "latency_ms": 1.5,
        "model_latency_ms": 0.4,
        "reason_codes": [{"feature": spec.feature_names[0], "contribution": 0.3}],
    }
    fields.update(changes)
    return PredictionRecord(**fields)


@pytest.fixture(params=["transactions30", "ulb"])
def spec(request: pytest.FixtureRequest) -> FeatureSpec:
    return BUILTIN_SPECS[request.param]


def test_encode_is_one_json_line_that_parses_back(spec: FeatureSpec) -> None:
    record = make_record(spec, 4)
    line = encode(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    row = parse_line(line)
    assert row is not None
    assert row["inference_id"] == record.inference_id
    assert row["request_time"] == "2025-03-01T12:34:15.123456+00:00"
    assert row["features"] == record.features
    assert row["reason_codes"] == record.reason_codes


def test_numpy_scalars_and_naive_times_encode() -> None:
    spec = BUILTIN_SPECS["transactions30"]
    record = make_record(
        spec,
        probability=np.float32(0.5),
        prediction=np.int64(1),
        request_time=dt.datetime(2025, 1, 2, 3, 4, 5),  # naive: taken as UTC
    )
    record.features[spec.feature_names[0]] = np.int64(7)  # type: ignore[assignment]
    row = parse_line(encode(record))
    assert row is not None
    assert row["probability"] == 0.5 and row["prediction"] == 1
    assert row["features"][spec.feature_names[0]] == 7
    assert row["request_time"] == "2025-01-02T03:04:05+00:00"


@pytest.mark.parametrize(
    "line",
    [b'{"inference_id": "a", "request_ti', b"not json", b"[1, 2]", b'{"request_time": "x"}', b""],
)
def test_parse_line_refuses_torn_or_foreign_lines(line: bytes) -> None:
    assert parse_line(line) is None


def test_decode_matches_the_predictions_schema(spec: FeatureSpec) -> None:
    records = [make_record(spec, i) for i in range(5)]
    rows = [parse_line(encode(r)) for r in records]
    table, rejected = PredictionsDecoder(spec).decode([r for r in rows if r is not None])

    assert rejected == []
    assert table.schema.equals(predictions_schema(spec).as_arrow(), check_metadata=True)
    assert table.num_rows == 5
    assert table["inference_id"].to_pylist() == [r.inference_id for r in records]
    assert table["request_time"].to_pylist() == [r.request_time for r in records]
    first = spec.features[0]
    assert table[first.name].to_pylist() == [r.features[first.name] for r in records]
    assert json.loads(table["reason_codes"][0].as_py()) == records[0].reason_codes
    if spec.name == "ulb":  # `Amount` is a feature there: no separate amount column
        assert "amount" not in table.column_names
    else:
        assert table["amount"].to_pylist() == [r.amount for r in records]


def test_decode_leaves_out_bad_rows_and_says_why() -> None:
    spec = BUILTIN_SPECS["transactions30"]
    good = [parse_line(encode(make_record(spec, i))) for i in range(3)]
    assert all(good)
    rows: list[dict[str, Any]] = [row for row in good if row is not None]
    rows[1]["probability"] = "very high"
    rows.append({"inference_id": "x", "features": {}})
    rows.append({"inference_id": "y", "request_time": T0.isoformat(), "features": {"nope": 1}})
    rows.append({"inference_id": "z", "request_time": "yesterday", "features": {}})

    table, rejected = PredictionsDecoder(spec).decode(rows)

    assert table["inference_id"].to_pylist() == [rows[0]["inference_id"], rows[2]["inference_id"]]
    reasons = dict(rejected)
    assert sorted(reasons) == [1, 3, 4, 5]
    assert "probability" in reasons[1] and "very high" in reasons[1]
    assert "request_time" in reasons[3]
    assert "nope" in reasons[4]
    assert "request_time" in reasons[5]


def test_decoded_table_is_taken_by_the_lake_conform_step() -> None:
    from fraudops.lake.catalog import conform

    spec = BUILTIN_SPECS["transactions30"]
    rows = [parse_line(encode(make_record(spec, i))) for i in range(3)]
    table, _ = PredictionsDecoder(spec).decode([r for r in rows if r is not None])
    conformed = conform(table, predictions_schema(spec), "predictions")
    assert conformed.num_rows == 3
    assert conformed["request_time"].type == pa.timestamp("us", tz="UTC")


# ---- the record's checksum ---------------------------------------------------------------------


def test_a_line_carries_the_checksum_of_its_bytes() -> None:
    record = make_record(BUILTIN_SPECS["transactions30"], 4, inference_id="inf-4")
    line = encode(record)
    assert line.endswith(b'"}\n') and b',"crc32":"' in line[-22:]
    row, status = read_line(line)
    assert status == "ok" and row is not None and "crc32" not in row
    assert row == {k: v for k, v in orjson.loads(line).items() if k != "crc32"}  # still JSON
    assert parse_line(line) == row


def test_a_record_changed_after_it_was_written_fails_its_checksum() -> None:
    line = encode(make_record(BUILTIN_SPECS["transactions30"], 4, inference_id="inf-4"))
    edited = line.replace(b'"probability":0.91', b'"probability":0.11')
    assert edited != line and orjson.loads(edited)["probability"] == 0.11  # valid JSON still
    assert read_line(edited) == (None, CHECKSUM_MISMATCH)
    assert read_line(line[:-11] + b'zzzzzzzz"}\n') == (None, CHECKSUM_MISMATCH)
    # The checksum key moved or kept after an edit that dropped the trailer's form.
    moved = orjson.dumps({**orjson.loads(line), "amount": 1.0})
    assert read_line(moved) == (None, CHECKSUM_MISMATCH)
    assert read_line(b"garbage") == (None, CORRUPT)
    assert [unreadable_kind(r) for r in (TORN, CORRUPT, CHECKSUM_MISMATCH, CHECKSUM_MISSING)] == [
        "torn",
        "corrupt",
        "checksum",
        "checksum",
    ]


def test_a_line_written_before_records_carried_a_checksum_is_read() -> None:
    legacy = orjson.dumps({"inference_id": "old-1", "probability": 0.5}) + b"\n"
    assert read_line(legacy) == ({"inference_id": "old-1", "probability": 0.5}, "legacy")
