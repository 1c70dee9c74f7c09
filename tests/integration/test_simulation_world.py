"""The simulation's serving process: the real app driven through its public seams — request times
from the simulated clock, the log rotated and drained before each monitoring run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from fraudops.config import Settings
from fraudops.data.sampling import request_records, sample_traffic
from fraudops.errors import FraudopsError
from fraudops.lake import Lake
from fraudops.runtime import Runtime
from fraudops.simulation.world import ServingWorld
from tests.serving_support import train_champion

START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return train_champion(tmp_path_factory.mktemp("world") / "home")


def _served(settings: Settings) -> pd.DataFrame:
    with Lake.open(settings, "transactions30") as lake:
        return lake.read_frame("predictions", columns=["inference_id", "request_time"])


def test_simulated_request_times_reach_the_lake_once_drained_after_each_rotation(
    trained: Settings,
) -> None:
    spec = trained.feature_spec("transactions30")
    frame = sample_traffic(trained.data, spec, 40, seed=3, id_prefix="w-3-")
    records = request_records(frame, spec)
    before = len(_served(trained))
    times = [START, START + timedelta(hours=5), START + timedelta(days=1, minutes=7)]
    runtime = Runtime(trained, spec.name, actor="simulation")
    world = ServingWorld(runtime, START)
    try:
        first = world.predict([(times[0], records[:10]), (times[1], records[10:25])])
        world.flush()  # rotated: the open segment is sealed and drained now, not at its age
        drained = _served(trained)
        second = world.predict([(times[2], records[25:])])
        world.flush()
    finally:
        world.close()
        runtime.close()
    assert [len(a) for a in first + second] == [10, 15, 15]
    assert len(drained) == before + 25
    served = _served(trained)
    ids = {r["inference_id"]: at for a, at in zip(first + second, times, strict=True) for r in a}
    mine = served[served["inference_id"].isin(ids)]
    assert len(mine) == 40 and mine["inference_id"].is_unique  # each exactly once
    expected = pd.to_datetime(mine["inference_id"].map(ids), utc=True)
    assert (pd.to_datetime(mine["request_time"], utc=True) == expected).all()
    assert [r["transaction_id"] for a in first for r in a] == [
        r["transaction_id"] for r in records[:25]
    ]


def test_an_answer_other_than_200_stops_the_simulation_with_its_status(trained: Settings) -> None:
    spec = trained.feature_spec("transactions30")
    runtime = Runtime(trained, spec.name, actor="simulation")
    world = ServingWorld(runtime, START)
    try:
        with pytest.raises(FraudopsError, match="answered 422"):
            world.predict([(START, [{"transaction_id": "bad", "transaction_amount": -5}])])
    finally:
        world.close()
        runtime.close()
