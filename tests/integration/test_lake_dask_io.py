"""The lake as Dask dataframes (``fraudops.lake.dask_io``) on a real SQLite catalog, read and
written by a LocalCluster of 2 worker processes: the same rows as a local read, partitions that
follow the planned data files, and appends that are one snapshot or nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client

from fraudops.config import load_settings
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import LakeError
from fraudops.lake import Lake
from fraudops.lake.dask_io import append_dask, read_dask

BATCHES = {"a": 1500, "b": 1200, "c": 800}  # one append (one data file) each
COLUMNS = ["transaction_id", "customer_id", "transaction_amount", "customer_age", "is_fraud"]


@pytest.fixture(scope="module")
def client(dask_cluster: Any) -> Iterator[Client]:
    with Client(dask_cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    home = tmp_path_factory.mktemp("daskio") / "home"
    settings = load_settings(home=home)
    with Lake.open(settings) as opened:
        opened.init()
        for seed, (prefix, rows) in enumerate(BATCHES.items()):
            frame = generate_transactions(settings.data, opened.spec, rows=rows, seed=seed)
            frame["transaction_id"] = [f"{prefix}-{i:06d}" for i in range(rows)]
            opened.append("transactions", frame)
        yield opened


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("transaction_id", ignore_index=True)


def _as_dask_types(local: pd.DataFrame) -> pd.DataFrame:
    """A local read with text as Dask holds it (``dataframe.convert-string``: Arrow strings)."""
    text = [c for c, t in local.dtypes.items() if t is np.dtype(object)]
    return local.astype(dict.fromkeys(text, "string[pyarrow]"))


def _data_files(lake: Lake, table: str) -> set[str]:
    location = lake.table(table).location().removeprefix("file://")
    return {p.name for p in Path(location, "data").rglob("*.parquet")}


def test_read_dask_equals_the_local_read_with_a_filter_and_a_projection(
    client: Client, lake: Lake
) -> None:
    where = "transaction_amount > 100 and customer_age >= 30"
    local = _as_dask_types(lake.read("transactions", COLUMNS, where).to_pandas())
    frame = read_dask(lake, "transactions", COLUMNS, where)
    assert list(frame.columns) == COLUMNS
    got = frame.compute()
    assert 0 < len(got) < sum(BATCHES.values())
    assert len(got) == len(local)
    assert got.dtypes.to_dict() == local.dtypes.to_dict()
    pd.testing.assert_frame_equal(_sorted(got), _sorted(local))
    # The whole table, every column: the same too.
    whole = read_dask(lake, "transactions").compute()
    everything = _as_dask_types(lake.read_frame("transactions"))
    pd.testing.assert_frame_equal(_sorted(whole), _sorted(everything))


def test_partitions_follow_the_planned_files_grouped_by_partition_rows(
    client: Client, lake: Lake
) -> None:
    def lengths(limit: int) -> list[int]:
        frame = read_dask(lake, "transactions", ["transaction_id"], partition_rows=limit)
        return sorted(frame.map_partitions(len).compute().tolist())

    assert lengths(1000) == [800, 1200, 1500]  # each file larger than the limit: one alone
    # pyiceberg plans the newest file first: 800 + 1200 fit under 3000, 1500 starts the next.
    assert lengths(3000) == [1500, 2000]
    assert lengths(10_000) == [3500]
    # A filter on the ids prunes two files by their manifest statistics: one partition left.
    pruned = read_dask(lake, "transactions", ["transaction_id"], "transaction_id >= 'c'")
    assert pruned.npartitions == 1
    assert len(pruned.compute()) == BATCHES["c"]


def test_an_empty_table_or_a_filter_pruning_everything_is_an_empty_frame_with_its_columns(
    client: Client, lake: Lake
) -> None:
    labels = read_dask(lake, "labels")
    assert list(labels.columns) == lake.column_names("labels")
    assert len(labels.compute()) == 0
    none = read_dask(lake, "transactions", COLUMNS, "transaction_id >= 'z'")
    got = none.compute()
    local = _as_dask_types(lake.read("transactions", COLUMNS, "transaction_id >= 'z'").to_pandas())
    assert (len(got), list(got.columns)) == (0, COLUMNS)
    assert got.dtypes.to_dict() == local.dtypes.to_dict()
    with pytest.raises(LakeError, match="has no column"):
        read_dask(lake, "transactions", ["nope"])


def _predictions(rows: int, start: int) -> pd.DataFrame:
    at = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "inference_id": [f"inf-{start + i:06d}" for i in range(rows)],
            "request_time": [at + dt.timedelta(seconds=i) for i in range(rows)],
            "probability": [i / rows for i in range(rows)],
            "model_version": "1",
        }
    )


def test_append_dask_writes_every_partition_in_one_snapshot(client: Client, lake: Lake) -> None:
    table = lake.table("predictions")
    before = len(table.snapshots())
    frame = dd.from_pandas(_predictions(1000, 0), npartitions=4)
    assert append_dask(lake, "predictions", frame) == 1000
    table = lake.table("predictions")
    assert len(table.snapshots()) == before + 1
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    assert (summary["added-data-files"], summary["added-records"]) == ("4", "1000")
    stored = lake.read_frame("predictions", ["inference_id", "probability"])
    assert len(stored) == 1000
    assert stored.sort_values("inference_id")["probability"].tolist() == [
        i / 1000 for i in range(1000)
    ]


def test_a_partition_that_does_not_conform_leaves_the_table_and_its_folder_unchanged(
    client: Client, lake: Lake
) -> None:
    before_snapshot = lake.table("predictions").current_snapshot()
    before_count = lake.count("predictions")
    before_files = _data_files(lake, "predictions")
    parts = [_predictions(300, 5000), _predictions(300, 6000), _predictions(300, 7000)]
    parts[1].loc[17, "inference_id"] = None  # required: partition 1 row 18 cannot be stored
    frame = dd.from_delayed([dask.delayed(p) for p in parts], meta=parts[0].iloc[:0])
    with pytest.raises(LakeError) as caught:
        append_dask(lake, "predictions", frame)
    assert "partition 1" in str(caught.value)
    assert "required column 'inference_id' is null at row(s) 18" in str(caught.value)
    assert lake.table("predictions").current_snapshot() == before_snapshot
    assert lake.count("predictions") == before_count
    assert _data_files(lake, "predictions") == before_files  # partitions 0 and 2 removed
