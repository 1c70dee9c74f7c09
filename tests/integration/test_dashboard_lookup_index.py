"""The Lookup page's transaction-id index: built from the table, caught up from new appends, and
out of the way when the table was rewritten."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.config import Settings, load_settings
from fraudops.dashboard.lookup_index import TransactionIndex
from fraudops.dashboard.pages.lookup import lookup
from fraudops.ids import uuid7
from fraudops.lake import Lake
from fraudops.lake.schemas import PREDICTIONS
from fraudops.runtime import Runtime

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def settings(home: Path) -> Settings:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
    return settings


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    with Lake.open(settings) as lake:
        yield lake


def predictions(start: int, n: int, *, hours: int = 5) -> pd.DataFrame:
    times = [T0 + dt.timedelta(hours=hours * i) for i in range(start, start + n)]
    return pd.DataFrame(
        {
            "inference_id": [uuid7(t) for t in times],
            "transaction_id": [f"tx-{i:06d}" for i in range(start, start + n)],
            "request_time": times,
            "model_version": "1",
            "probability": 0.25,
            "prediction": 0,
            "risk_tier": "low",
        }
    )


def test_the_index_names_the_days_of_a_transaction_and_follows_new_appends(lake: Lake) -> None:
    for start in (0, 100, 200):  # three commits, ~62 days
        lake.append(PREDICTIONS, predictions(start, 100))
    index = TransactionIndex()
    index.build(lake.table(PREDICTIONS))
    assert index.ready and index.rows == 300
    table = lake.table(PREDICTIONS)
    assert index.days(table, "tx-000123") == [(T0 + dt.timedelta(hours=5 * 123)).date()]
    assert index.days(table, "tx-999999") == []
    # A transaction logged twice (a retry on another day): both days.
    again = predictions(123, 1)
    again["request_time"] = T0 + dt.timedelta(days=40)
    lake.append(PREDICTIONS, again)
    lake.append(PREDICTIONS, predictions(300, 10))
    table = lake.table(PREDICTIONS)
    assert index.days(table, "tx-000123") == sorted(
        {(T0 + dt.timedelta(hours=5 * 123)).date(), (T0 + dt.timedelta(days=40)).date()}
    )
    assert index.days(table, "tx-000305") == [(T0 + dt.timedelta(hours=5 * 305)).date()]
    assert index.rows == 311


def test_a_rewritten_table_is_caught_up_from_the_files_it_has_not_seen(lake: Lake) -> None:
    lake.append(PREDICTIONS, predictions(0, 50))
    index = TransactionIndex()
    index.build(lake.table(PREDICTIONS))
    lake.replace(PREDICTIONS, predictions(1000, 20))  # an overwrite: history no longer leads back
    table = lake.table(PREDICTIONS)
    assert index.days(table, "tx-001005") == [(T0 + dt.timedelta(hours=5 * 1005)).date()]
    # The index is a superset (the rows of removed files may still be named): the scan decides.
    assert index.days(table, "tx-000005") in ([], [(T0 + dt.timedelta(hours=25)).date()])


def test_the_persisted_index_is_loaded_and_moved_on_by_every_process(
    lake: Lake, tmp_path: Path
) -> None:
    lake.append(PREDICTIONS, predictions(0, 100))
    folder = tmp_path / "index"
    first = TransactionIndex(folder)
    first.build(lake.table(PREDICTIONS))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["snapshot_id"] == lake.table(PREDICTIONS).current_snapshot().snapshot_id
    # Another process: loads the segments, reads no data file (the snapshot is the indexed one).
    second = TransactionIndex(folder)
    assert second.days_of(lake.table(PREDICTIONS), ["tx-000042", "tx-424242"]) == {
        "tx-000042": [(T0 + dt.timedelta(hours=5 * 42)).date()],
        "tx-424242": [],
    }
    assert (
        json.loads((folder / "manifest.json").read_text())["generation"] == (manifest["generation"])
    )
    # Twenty commits later, each caught up by one or the other: segments merged, files removed.
    for start in range(100, 300, 10):
        lake.append(PREDICTIONS, predictions(start, 10))
        (first if start % 20 else second).days_of(lake.table(PREDICTIONS), ["tx-000001"])
    table = lake.table(PREDICTIONS)
    assert first.days_of(table, ["tx-000295"])["tx-000295"] == [
        (T0 + dt.timedelta(hours=5 * 295)).date()
    ]
    assert first.rows == 300
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["segments"]) <= 17
    on_disk = {p.name for p in folder.iterdir()} - {"manifest.json", "lock"}
    assert on_disk == {f"{n}.{k}.npy" for n in manifest["segments"] for k in ("hashes", "days")}


def test_the_lookup_page_finds_by_transaction_id_through_the_index(settings: Settings) -> None:
    with Lake.open(settings) as lake:
        lake.append(PREDICTIONS, predictions(0, 100))
        lake.append(PREDICTIONS, predictions(100, 100))
    with Runtime(settings) as runtime:
        first = lookup(runtime, "tx-000150")  # the index is built on first use, meanwhile: a scan
        assert first.title.startswith("Prediction ")
        from fraudops.dashboard.lookup_index import index_for

        table = runtime.lake().table(PREDICTIONS)
        index_for(table).build(table)
        found = lookup(runtime, "tx-000150")
        assert found.title == first.title
        assert lookup(runtime, "tx-424242").notes == ["no prediction with id 'tx-424242'"]
        by_inference = lookup(runtime, found.title.removeprefix("Prediction "))
        assert by_inference.title == found.title


def test_a_persisted_index_holds_its_segments_mapped_not_on_the_heap(
    lake: Lake, tmp_path: Path
) -> None:
    """The server's label ingestion keeps its index for the process's life: the segments it
    builds and merges are read back from their files, not kept as heap copies (12 bytes of
    anonymous memory per prediction ever logged, growing with the table)."""
    lake.append(PREDICTIONS, predictions(0, 100))
    index = TransactionIndex(tmp_path / "index")
    index.build(lake.table(PREDICTIONS))
    for start in range(100, 300, 10):  # caught up and merged (past MERGE_AT_SEGMENTS)
        lake.append(PREDICTIONS, predictions(start, 10))
        index.days_of(lake.table(PREDICTIONS), ["tx-000001"])
    assert index.rows == 300
    segments = index._segments
    assert len(segments) <= 17
    for segment in segments:
        assert isinstance(segment.hashes, np.memmap) and isinstance(segment.days, np.memmap)
    table = lake.table(PREDICTIONS)
    assert index.days_of(table, ["tx-000295"])["tx-000295"] == [
        (T0 + dt.timedelta(hours=5 * 295)).date()
    ]
