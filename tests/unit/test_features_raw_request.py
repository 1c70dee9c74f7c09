"""Raw transaction requests: what is accepted, and errors that name each bad field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fraudops.config import load_settings
from fraudops.errors import ConfigError, ValidationError
from fraudops.features.online_factory import check_online_store, open_online_store
from fraudops.features.online_memory import MemoryStore
from fraudops.features.raw_request import RawRequestInvalid, RawRequestParser, to_time_us
from fraudops.spec import FeatureSpec

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
SPEC = FeatureSpec.model_validate(
    {
        "name": "raw",
        "id_column": "tx_id",
        "timestamp_column": "tx_time",
        "label_column": "is_fraud",
        "customer_column": "customer_id",
        "keys": ["customer_id", "terminal_id"],
        "features": [
            {"name": "amount", "min": 0},
            {"name": "channel", "kind": "categorical", "dtype": "int", "categories": [1, 2]},
        ],
        "derived": [{"name": "n1d", "by": "customer_id", "window": "1d", "agg": "count"}],
    }
)


def _ok(**extra: Any) -> dict[str, Any]:
    return {
        "tx_time": "2026-12-07T11:59:00Z",
        "customer_id": 42,
        "terminal_id": "T-9",
        "amount": 12.5,
        "channel": 2,
        **extra,
    }


def _errors(obj: Any, parser: RawRequestParser | None = None) -> dict[str, str]:
    with pytest.raises(RawRequestInvalid) as caught:
        (parser or RawRequestParser(SPEC)).parse(obj, now=NOW)
    assert isinstance(caught.value, ValidationError)  # the CLI's user-facing error
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors}


def test_a_valid_request_becomes_a_typed_transaction() -> None:
    tx = RawRequestParser(SPEC).parse(_ok(transaction_id="abc"), now=NOW)
    assert tx.time_us == to_time_us(dt.datetime(2026, 12, 7, 11, 59, tzinfo=dt.UTC))
    assert tx.keys == {"customer_id": "42", "terminal_id": "T-9"}
    assert tx.values == {"amount": 12.5, "channel": 2.0}
    assert (tx.transaction_id, tx.customer_id) == ("abc", "42")
    # the spec's own id column is accepted too; a naive time is UTC; an offset is converted
    same = RawRequestParser(SPEC).parse(_ok(tx_id=7, tx_time="2026-12-07T12:59:00+01:00"), now=NOW)
    assert (same.transaction_id, same.time_us) == ("7", tx.time_us)
    naive = RawRequestParser(SPEC).parse(_ok(tx_time="2026-12-07 11:59:00"), now=NOW)
    assert naive.time_us == tx.time_us and naive.transaction_id is None


def test_each_bad_field_is_named() -> None:
    errors = _errors(
        {
            "tx_time": "yesterday",
            "terminal_id": True,
            "amount": "12",
            "channel": 3,
            "is_fraud": 1,
            "num_transactions_24h": 3,
        }
    )
    assert errors == {
        "body.is_fraud": "Extra inputs are not permitted",
        "body.num_transactions_24h": "Extra inputs are not permitted",
        "body.tx_time": "'yesterday' is no ISO 8601 time",
        "body.customer_id": "Field required",
        "body.terminal_id": "Input should be an integer or a non-empty string of at most 256 "
        "characters",
        "body.amount": "Input should be a valid number",
        "body.channel": "Input should be one of the codes [1, 2]",
    }
    assert _errors(_ok(amount=-1)) == {"body.amount": "Input should be between 0 and inf"}
    assert _errors(_ok(tx_time=1_700_000_000)) == {
        "body.tx_time": "Input should be an ISO 8601 time string"
    }
    assert _errors(_ok(transaction_id="a", tx_id="b")) == {
        "body.tx_id": "the id twice (also 'transaction_id')"
    }
    assert _errors([1]) == {"body": "expected a transaction object"}


def test_a_timestamp_beyond_the_allowed_clock_skew_is_refused() -> None:
    parser = RawRequestParser(SPEC, max_clock_skew_s=300)
    assert parser.parse(_ok(tx_time="2026-12-07T12:05:00Z"), now=NOW)  # exactly at the limit
    errors = _errors(_ok(tx_time="2026-12-07T12:05:01Z"), parser)
    assert errors == {
        "body.tx_time": "2026-12-07T12:05:01Z is later than now + features.max_clock_skew_s (300 s)"
    }
    # the past is fine: a replay of last month is served
    assert parser.parse(_ok(tx_time="2026-11-01T00:00:00Z"), now=NOW)


def test_a_batch_reports_every_row() -> None:
    parser = RawRequestParser(SPEC)
    assert len(parser.parse_many([_ok(), _ok()], now=NOW)) == 2
    with pytest.raises(RawRequestInvalid) as caught:
        parser.parse_many([_ok(), _ok(amount=None), _ok(channel=1.5)], now=NOW)
    assert [e["loc"] for e in caught.value.errors] == [
        ["body", 1, "amount"],
        ["body", 2, "channel"],
    ]
    assert "body.1.amount: Input should be a valid number" in str(caught.value)


def test_seconds_timestamps() -> None:
    spec = SPEC.model_copy(update={"timestamp_kind": "seconds"})
    tx = RawRequestParser(spec).parse(_ok(tx_time=86_400.5), now=NOW)
    assert tx.time_us == 86_400_500_000
    assert _errors(_ok(tx_time="86400"), RawRequestParser(spec)) == {
        "body.tx_time": "Input should be a finite number (seconds)"
    }


def test_several_workers_need_the_shared_store() -> None:
    settings = load_settings()
    assert isinstance(open_online_store(settings, SPEC), MemoryStore)
    check_online_store(settings, workers=1)
    with pytest.raises(ConfigError, match=r"features\.online_store: redis"):
        check_online_store(settings, workers=2)
    check_online_store(load_settings(features={"online_store": "redis"}), workers=2)
