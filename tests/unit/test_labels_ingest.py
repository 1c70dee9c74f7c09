"""Label events: their form, the all-or-nothing batch refusal, label files, the settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from fraudops.config import load_settings
from fraudops.errors import ConfigError, ValidationError
from fraudops.labels.files import read_label_file
from fraudops.labels.ingest import (
    LabelEvent,
    LabelsValidationError,
    validate_events,
)

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_event_accepts_the_usual_spellings_of_a_label_and_a_time() -> None:
    for raw, label in [
        (1, 1),
        (0, 0),
        (True, 1),
        ("false", 0),
        ("fraud", 1),
        ("legit", 0),
        (1.0, 1),
    ]:
        assert LabelEvent.model_validate({"inference_id": "a", "label": raw}).label == label
    event = LabelEvent.model_validate(
        {"transaction_id": 42, "label": "1", "confirmed_at": "2025-03-01T10:00:00", "notes": ""}
    )
    assert event.transaction_id == "42"  # a numeric id from a file is still an id
    assert event.confirmed_at == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)  # naive = UTC
    assert event.notes is None
    shifted = LabelEvent.model_validate(
        {"inference_id": "a", "label": 0, "confirmed_at": "2025-03-01T12:00:00+02:00"}
    )
    assert shifted.confirmed_at == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)


def test_a_batch_is_refused_whole_with_every_bad_entry_and_field_named() -> None:
    entries = [
        {"inference_id": "a", "label": 1},
        {"inference_id": "b", "label": 2},  # not 0/1
        {"label": 0},  # no id
        {"inference_id": "d", "label": 0, "confirmed_at": "yesterday"},
        {"inference_id": "e", "label": 0, "colour": "red"},  # unknown field
        "not an object",
        {"inference_id": "g", "label": 1, "confirmed_at": "2025-03-11T00:00:00Z"},  # future
    ]
    with pytest.raises(LabelsValidationError) as caught:
        validate_events(entries, now=NOW)
    locs = [tuple(err["loc"]) for err in caught.value.errors]
    assert locs == [
        (1, "label"),
        (2,),
        (3, "confirmed_at"),
        (4, "colour"),
        (5,),
        (6, "confirmed_at"),
    ]
    message = str(caught.value)
    assert message.startswith("label batch refused, nothing written: entry 1, field 'label'")
    assert "entry 2: " in message and "inference_id or a transaction_id" in message
    assert "and 1 more" in message  # five shown, the rest counted
    assert isinstance(caught.value, ValidationError) and caught.value.exit_code == 2
    renamed = caught.value.renamed(lambda i: f"row {i + 1}")
    assert "row 2, field 'label'" in str(renamed)


def test_a_confirmation_a_few_minutes_ahead_is_clock_skew_not_the_future() -> None:
    events = validate_events(
        [{"inference_id": "a", "label": 1, "confirmed_at": NOW + dt.timedelta(minutes=2)}],
        now=NOW,
    )
    assert len(events) == 1


def test_label_files_csv_jsonl_and_parquet(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "transaction_id,is_fraud,confirmed_at,source\n"
        "007,1,2025-03-02T00:00:00Z,chargeback\n"
        "008,0,,\n"
    )
    rows, name = read_label_file(csv, "is_fraud")  # the spec's label column reads as `label`
    assert rows == [
        {
            "transaction_id": "007",
            "label": "1",
            "confirmed_at": "2025-03-02T00:00:00Z",
            "source": "chargeback",
        },
        {"transaction_id": "008", "label": "0", "confirmed_at": "", "source": ""},
    ]
    assert name(1) == "row 2 (line 3)"
    events = validate_events(rows, now=NOW)
    assert events[0].transaction_id == "007" and events[1].confirmed_at is None

    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text('{"inference_id": "a", "label": 1}\n\n{"inference_id": "b", "label": 0}\n')
    rows, name = read_label_file(jsonl)
    assert [r["inference_id"] for r in rows] == ["a", "b"] and name(1) == "line 3"

    parquet = tmp_path / "labels.parquet"
    pd.DataFrame(
        {"inference_id": ["a", None], "transaction_id": [None, "t"], "label": [1.0, 0.0]}
    ).to_parquet(parquet)
    rows, _ = read_label_file(parquet)
    assert rows[0]["transaction_id"] is None and rows[1]["inference_id"] is None
    assert [e.label for e in validate_events(rows, now=NOW)] == [1, 0]

    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"inference_id": "a", "label": 1}\n{oops\n')
    with pytest.raises(ValidationError, match="line 2: not JSON"):
        read_label_file(bad)
    with pytest.raises(ValidationError, match="unknown label file type"):
        (tmp_path / "labels.xlsx").write_text("x")
        read_label_file(tmp_path / "labels.xlsx")


def test_labels_settings_refuse_inverted_delays_and_empty_sources(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"fraud_delay_min_days 8\.0 > fraud_delay_max_days 7\.0"):
        load_settings(home=home, labels={"fraud_delay_min_days": 8})
    with pytest.raises(ConfigError, match="legit_sources needs weights"):
        load_settings(home=home, labels={"legit_sources": {"no_dispute": 0}})
