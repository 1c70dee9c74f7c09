"""Derived features on Dask (partitions shuffled by key) equal the local engine's, bit for bit,
on a raw set loaded in several files, and the Dask training's slices carry them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.config import Settings, load_settings
from fraudops.data.raw import RawConfig, generate_raw
from fraudops.lake import Lake, load_file
from fraudops.lake.dask_io import read_dask
from fraudops.progress import Reporter
from fraudops.runtime import Runtime
from fraudops.training.backend import open_backend
from fraudops.training.dask_derived import derive_dask
from fraudops.training.derived_rows import training_columns, with_derived_features

pytestmark = pytest.mark.integration

SPEC = "cards"
FILES = 4


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, dask_cluster: Any) -> Settings:
    home = tmp_path_factory.mktemp("daskderived") / "home"
    settings = load_settings(
        home=home,
        compute={"scheduler_address": dask_cluster.scheduler_address, "partition_rows": 1_500},
    )
    raw = generate_raw(RawConfig(customers=80, terminals=160, days=30, seed=9)).table.to_pandas()
    # Rows of every key in every file, out of time order: the shuffle must bring them together.
    raw = raw.sample(frac=1.0, random_state=4).reset_index(drop=True)
    step = -(-len(raw) // FILES)
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        for i in range(FILES):
            path = Path(home.parent) / f"raw-{i}.parquet"
            raw.iloc[i * step : (i + 1) * step].to_parquet(path, index=False)
            load_file(lake, path)
    return settings


def _local(settings: Settings) -> pd.DataFrame:
    spec = settings.feature_spec(SPEC)
    with Lake.open(settings, SPEC) as lake:
        frame = lake.read_frame("transactions", columns=training_columns(spec))
    return with_derived_features(frame, spec).set_index("tx_id").sort_index()


def test_dask_derived_features_equal_the_local_engine(settings: Settings) -> None:
    from distributed import Client

    spec = settings.feature_spec(SPEC)
    local = _local(settings)
    with Lake.open(settings, SPEC) as lake, Client(settings.compute.scheduler_address) as client:
        frame = read_dask(lake, "transactions", columns=training_columns(spec))
        assert frame.npartitions >= 2
        derived = derive_dask(frame, spec)
        dask = client.compute(derived).result().set_index("tx_id").sort_index()
    assert dask.index.astype(str).tolist() == local.index.astype(str).tolist()
    assert len(dask) > 3_000
    for d in spec.derived:
        assert np.array_equal(dask[d.name].to_numpy(), local[d.name].to_numpy()), d.name
        assert dask[d.name].dtype == local[d.name].dtype, d.name
    assert (local["term_risk_30d"] > 0).any()  # the labels reached the windows


def test_the_dask_training_slices_carry_the_same_derived_values(settings: Settings) -> None:
    spec = settings.feature_spec(SPEC)
    local = _local(settings)
    with Runtime(settings, SPEC, engine="dask") as runtime:
        split = open_backend(runtime.training_context()).split(None, Reporter())
        holdout = split.frames["holdout"].compute().set_index("tx_id").sort_index()  # type: ignore[attr-defined]
    assert len(holdout) == split.stats.slices["holdout"].rows
    expected = local.loc[holdout.index]
    for d in spec.derived:
        assert np.array_equal(holdout[d.name].to_numpy(), expected[d.name].to_numpy()), d.name
