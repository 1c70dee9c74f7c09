"""The /v1/predict body checks: every bad field named, in FastAPI's 422 shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from fraudops.config import Settings
from fraudops.serving.requests import RequestInvalid, RequestParser, openapi_model
from fraudops.spec import FeatureSpec


@pytest.fixture
def spec(settings: Settings) -> FeatureSpec:
    return settings.feature_spec("transactions30")


@pytest.fixture
def parser(spec: FeatureSpec) -> RequestParser:
    return RequestParser(spec, max_batch=3)


@pytest.fixture
def good(spec: FeatureSpec) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in spec.features:
        lo, hi = f.bounds
        if f.categories:
            row[f.name] = f.categories[0]
        elif f.dtype == "int":
            row[f.name] = int(lo or 0)
        else:
            row[f.name] = float(lo or 0.0) if hi is None else (float(lo or 0) + float(hi)) / 2
    return row


def errors_of(parser: RequestParser, body: Any) -> list[dict[str, Any]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(RequestInvalid) as caught:
        parser.parse_valid(raw)
    return caught.value.errors


def test_a_valid_transaction_becomes_one_row_in_spec_order(
    parser: RequestParser, good: dict[str, Any], spec: FeatureSpec
) -> None:
    parsed = parser.parse_valid(orjson.dumps({**good, "transaction_id": "t-1"}))
    assert parsed.single and len(parsed) == 1
    assert parsed.transaction_ids == ["t-1"] and parsed.customer_ids == [None]
    assert parsed.X.shape == (1, len(spec.features))
    assert parsed.X[0].tolist() == [float(good[n]) for n in spec.feature_names]


def test_a_list_gives_one_row_per_transaction(parser: RequestParser, good: dict) -> None:
    parsed = parser.parse_valid(orjson.dumps([good, {**good, "customer_id": 42}]))
    assert not parsed.single and parsed.X.shape[0] == 2
    assert parsed.customer_ids == [None, "42"]


def test_missing_unknown_and_mistyped_fields_are_each_named(
    parser: RequestParser, good: dict
) -> None:
    body = dict(good)
    del body["transaction_amount"]
    body["colour"] = "red"
    body["customer_age"] = "42"
    body["online_transaction"] = True
    errors = errors_of(parser, body)
    found = {(tuple(e["loc"]), e["type"]) for e in errors}
    assert found == {
        (("body", "transaction_amount"), "missing"),
        (("body", "colour"), "extra_forbidden"),
        (("body", "customer_age"), "float_type"),
        (("body", "online_transaction"), "float_type"),
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("transaction_hour", 24, "between 0 and 23"),
        ("transaction_amount", -5.0, "between"),
        ("online_transaction", 2, "between 0 and 1"),
        ("transaction_hour", 3.5, "whole number"),
    ],
)
def test_values_outside_the_spec_are_named_with_the_rule(
    parser: RequestParser, good: dict, field: str, value: Any, message: str
) -> None:
    errors = errors_of(parser, {**good, field: value})
    assert len(errors) == 1
    assert errors[0]["loc"] == ["body", field]
    assert message in errors[0]["msg"]


def test_an_unknown_category_code_is_refused(
    parser: RequestParser, good: dict, spec: FeatureSpec
) -> None:
    categorical = next(f for f in spec.features if f.categories)
    code = max(categorical.categories or [0]) + 1
    errors = errors_of(parser, {**good, categorical.name: code})
    assert errors[0]["loc"] == ["body", categorical.name]
    assert "codes" in errors[0]["msg"]


def test_in_a_list_the_row_index_is_in_the_location(parser: RequestParser, good: dict) -> None:
    errors = errors_of(parser, [good, {**good, "transaction_hour": -1}])
    assert errors[0]["loc"] == ["body", 1, "transaction_hour"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "json_invalid"),
        (b'{"transaction_amount": NaN}', "json_invalid"),
        (b"[]", "too_short"),
        (b"42", "model_attributes_type"),
        (b'"text"', "model_attributes_type"),
    ],
)
def test_malformed_bodies_are_refused(parser: RequestParser, body: bytes, kind: str) -> None:
    assert errors_of(parser, body)[0]["type"] == kind


def test_more_transactions_than_max_batch_are_refused(parser: RequestParser, good: dict) -> None:
    errors = errors_of(parser, [good] * 4)
    assert errors[0]["type"] == "too_long" and "serving.max_batch" in errors[0]["msg"]


def test_bad_rows_flags_exactly_the_bad_rows(parser: RequestParser, good: dict) -> None:
    ok = parser.parse(orjson.dumps(good)).X
    bad = parser.parse(orjson.dumps({**good, "transaction_hour": 99})).X
    assert parser.bad_rows(np.vstack([ok, bad, ok])).tolist() == [False, True, False]


def test_the_openapi_model_carries_the_same_ranges(spec: FeatureSpec) -> None:
    schema = openapi_model(spec).model_json_schema()
    hour = schema["properties"]["transaction_hour"]
    assert (hour["minimum"], hour["maximum"]) == (0, 23)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(spec.feature_names)


def test_values_too_large_for_float32_models_are_refused(parser: RequestParser, good: dict) -> None:
    errors = errors_of(parser, {**good, "velocity_score": 1.7e308})
    assert errors[0]["loc"] == ["body", "velocity_score"]
    assert "between" in errors[0]["msg"]


def test_a_huge_bad_value_is_echoed_without_breaking_the_error(
    parser: RequestParser, good: dict
) -> None:
    errors = errors_of(parser, {**good, "velocity_score": -1.7976931348623157e308})
    assert errors[0]["input"] == -1.7976931348623157e308
    orjson.dumps({"detail": errors})  # serialisable
