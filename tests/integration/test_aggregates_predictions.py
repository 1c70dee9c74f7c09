"""prediction_stats against a real lake: incremental, exactly once, equal to a rebuild and to a
from-scratch group-by of predictions; the drainers' hook; stale watermarks refused."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException

from fraudops.aggregates import folding, read
from fraudops.aggregates import predictions as stats
from fraudops.aggregates.bins import LATENCY_EDGES_MS, histogram_quantiles
from fraudops.aggregates.hooks import StatsRefresher
from fraudops.aggregates.watermark import AggregatesStaleError
from fraudops.config import Settings, load_settings
from fraudops.inference_log.records import encode
from fraudops.inference_log.spool import Spool
from fraudops.lake import Lake
from fraudops.lake.schemas import (
    LABEL_INGESTS,
    LABEL_STATS,
    PREDICTION_STATS,
    PREDICTIONS,
    TABLES,
    latency_bin_columns,
    score_bin_columns,
)
from fraudops.runtime import Runtime
from fraudops.spec import BUILTIN_SPECS
from tests.unit.test_inference_log_records import make_record

pytestmark = pytest.mark.integration

SPEC = BUILTIN_SPECS["transactions30"]
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
AGGREGATES = [PREDICTION_STATS, LABEL_STATS, LABEL_INGESTS]


@pytest.fixture
def settings(home: Path) -> Settings:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
    return settings


@pytest.fixture
def lake(settings: Settings) -> Lake:
    with Lake.open(settings) as lake:
        yield lake


def predictions(seed: int, n: int, start: dt.datetime = T0, days: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    probability = rng.beta(0.7, 3.0, n)
    probability[:3] = [0.0, 1.0, 0.05]  # the edges of the score bins
    latency = rng.lognormal(np.log(3.0), 0.6, n)
    times = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s")
    return pa.table(
        {
            "inference_id": [f"p{seed}-{i}" for i in range(n)],
            "request_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "model_version": rng.choice(["1", "2"], n),
            "probability": probability,
            "prediction": (probability >= 0.5).astype(np.int32),
            "risk_tier": np.where(probability >= 0.7, "high", "low"),
            "latency_ms": latency,
            "amount": rng.gamma(2.0, 40.0, n).round(2),
        }
    )


def from_scratch(lake: Lake) -> pd.DataFrame:
    """The expected stats: a plain pandas group-by over every stored prediction."""
    raw = lake.read_frame(PREDICTIONS)
    raw["hour"] = raw["request_time"].dt.floor("h")
    raw["flag_amount"] = np.where(raw["prediction"] == 1, raw["amount"], 0.0)
    grouped = raw.groupby(["hour", "model_version"])
    expected = grouped.agg(
        n=("inference_id", "size"),
        flagged=("prediction", "sum"),
        amount_sum=("amount", "sum"),
        flagged_amount_sum=("flag_amount", "sum"),
        latency_sum_ms=("latency_ms", "sum"),
    )
    for tier in sorted(raw["risk_tier"].dropna().unique()):
        expected[f"tier:{tier}"] = grouped["risk_tier"].apply(lambda s, t=tier: int((s == t).sum()))
    score_bins = grouped["probability"].apply(lambda s: np.histogram(s, bins=20, range=(0, 1))[0])
    expected[score_bin_columns()] = np.vstack(score_bins.to_numpy())
    latency_bins = grouped["latency_ms"].apply(
        lambda s: np.histogram(np.clip(s, 0.0101, 9999), bins=LATENCY_EDGES_MS)[0]
    )
    expected[latency_bin_columns()] = np.vstack(latency_bins.to_numpy())
    return expected.reset_index()


def stored(lake: Lake) -> pd.DataFrame:
    return folding.merge([folding.from_rows(lake.read(PREDICTION_STATS))])


def assert_matches(lake: Lake) -> None:
    got, want = stored(lake), from_scratch(lake)
    got["hour"] = pd.to_datetime(got["hour"], utc=True)
    columns = [c for c in want.columns]
    pd.testing.assert_frame_equal(
        got[columns].reset_index(drop=True),
        want[columns].reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )


def test_refresh_folds_each_commit_once_and_equals_a_groupby(lake: Lake) -> None:
    lake.append(PREDICTIONS, predictions(1, 700))
    lake.append(PREDICTIONS, predictions(2, 500))
    first = stats.refresh(lake)
    assert first.rows_folded == 1_200  # the first refresh: a rebuild
    assert first.watermark == lake.table(PREDICTIONS).current_snapshot().snapshot_id
    assert_matches(lake)

    lake.append(PREDICTIONS, predictions(3, 300, start=T0 + dt.timedelta(days=2)))
    second = stats.refresh(lake)
    assert (second.mode, second.rows_folded, second.folded_total) == ("refresh", 300, 1_500)
    assert_matches(lake)

    before = lake.table(PREDICTION_STATS).current_snapshot().snapshot_id
    again = stats.refresh(lake)
    assert (again.mode, again.rows_folded, again.rows_written) == ("nothing-new", 0, 0)
    assert lake.table(PREDICTION_STATS).current_snapshot().snapshot_id == before
    assert read.freshness(lake).behind_rows == 0


def test_rebuild_equals_incremental_and_compaction_keeps_the_sums(lake: Lake) -> None:
    for seed in range(4):
        lake.append(PREDICTIONS, predictions(seed, 200))
        stats.refresh(lake)
    incremental = stored(lake)
    rebuilt = stats.rebuild(lake)
    assert rebuilt.mode == "rebuild" and rebuilt.folded_total == 800
    pd.testing.assert_frame_equal(incremental, stored(lake), check_dtype=False)
    assert lake.table(PREDICTION_STATS).current_snapshot().summary["total-data-files"] == "1"

    # Many small refreshes: one of them rewrites the table as one row per key.
    for seed in range(10, 10 + stats.COMPACT_AT_FILES):
        lake.append(PREDICTIONS, predictions(seed, 5))
        report = stats.refresh(lake)
    files = int(lake.table(PREDICTION_STATS).current_snapshot().summary["total-data-files"])
    assert files < stats.COMPACT_AT_FILES
    assert report.folded_total == 800 + 5 * stats.COMPACT_AT_FILES
    assert_matches(lake)


def test_a_refresh_that_lost_a_race_cannot_commit_its_rows(lake: Lake) -> None:
    lake.append(PREDICTIONS, predictions(1, 100))
    stats.refresh(lake)
    lake.append(PREDICTIONS, predictions(2, 100))
    stale = lake.table(PREDICTION_STATS)  # what a slower refresh loaded before the winner
    stats.refresh(lake)
    partial = folding.to_rows(folding.fold(predictions(2, 100), "amount")[0])
    from fraudops.lake.catalog import conform

    with pytest.raises(CommitFailedException):
        stale.append(conform(partial, stale.schema(), "prediction_stats"))
    assert_matches(lake)


def test_a_rewritten_predictions_table_is_refused_until_rebuilt(lake: Lake) -> None:
    lake.append(PREDICTIONS, predictions(1, 100))
    stats.refresh(lake)
    lake.replace(PREDICTIONS, predictions(2, 50))  # rows deleted under the watermark
    with pytest.raises(
        AggregatesStaleError, match=r"removed or rewrote rows.*lake aggregates --rebuild"
    ):
        stats.refresh(lake)
    assert stats.rebuild(lake).folded_total == 50
    assert_matches(lake)


def spool(settings: Settings, start: int, count: int) -> None:
    records = [
        encode(make_record(SPEC, i, inference_id=f"inf-{i:06d}", model_version=str(1 + i % 2)))
        for i in range(start, start + count)
    ]
    with Spool.from_settings(settings).open() as log:
        assert log.append_many(records) == count


def test_the_writer_refreshes_and_catches_up_a_drainer_killed_before_its_refresh(
    settings: Settings, lake: Lake
) -> None:
    from fraudops.inference_log.records import parse_line
    from fraudops.inference_log.sink import PredictionSink

    # A drainer that died between its predictions commit and its refresh: rows, no stats.
    rows = [parse_line(encode(make_record(SPEC, i, inference_id=f"dead-{i}"))) for i in range(40)]
    with PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink:
        assert sink.commit([r for r in rows if r is not None]).written == 40
    assert read.freshness(lake).behind_rows == 40

    spool(settings, 100, 60)
    with Runtime(settings) as runtime:  # its drainer: the commits followed by the refresh
        writer = runtime.log_drainer()
        assert writer is not None
        try:
            assert writer.drain().written == 60
        finally:
            writer.close()
    assert read.freshness(lake).behind_rows == 0
    assert int(stored(lake)["n"].sum()) == 100
    assert_matches(lake)


def test_a_failing_refresh_warns_and_never_raises(
    settings: Settings, lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    lake.append(PREDICTIONS, predictions(1, 50))
    refresher = StatsRefresher(lambda: Lake.open(settings, SPEC.name))
    assert refresher.after_commit() is not None
    lake.replace(PREDICTIONS, predictions(2, 20))
    with caplog.at_level(logging.WARNING):
        assert refresher.after_commit() is None
    assert "prediction_stats refresh failed" in caplog.text and "--rebuild" in caplog.text
    refresher.close()


def test_lake_init_adds_the_aggregate_tables_to_an_older_lake_and_touches_nothing_else(
    settings: Settings, lake: Lake
) -> None:
    lake.append(PREDICTIONS, predictions(1, 10))
    for name in AGGREGATES:  # a lake made before the aggregates existed
        lake.catalog.drop_table(lake.identifier(name))
    before = {
        name: (lake.table_uuid(name), lake.table(name).metadata.current_snapshot_id)
        for name in TABLES
        if name not in AGGREGATES
    }
    refresher = StatsRefresher(lambda: Lake.open(settings, SPEC.name))
    assert refresher.after_commit() is None  # said, not created
    assert not lake.exists(PREDICTION_STATS)

    assert sorted(lake.init()) == sorted(AGGREGATES)
    after = {
        name: (lake.table_uuid(name), lake.table(name).metadata.current_snapshot_id)
        for name in before
    }
    assert after == before
    assert lake.init() == []
    assert lake.table(PREDICTION_STATS).properties["commit.retry.num-retries"] == "0"


def test_latency_quantiles_read_from_the_histogram_are_within_a_bin() -> None:
    rng = np.random.default_rng(5)
    latency = rng.lognormal(np.log(4.0), 0.7, 100_000)
    partial, _ = folding.fold(
        pa.table(
            {
                "request_time": pa.array([T0] * len(latency), pa.timestamp("us", tz="UTC")),
                "model_version": ["1"] * len(latency),
                "probability": np.full(len(latency), 0.1),
                "prediction": np.zeros(len(latency), np.int32),
                "risk_tier": ["low"] * len(latency),
                "latency_ms": latency,
            }
        ),
        None,
    )
    got = histogram_quantiles(partial[latency_bin_columns()].to_numpy(), (0.5, 0.95, 0.99))[0]
    want = np.quantile(latency, [0.5, 0.95, 0.99])
    assert np.all(np.abs(got / want - 1) < 0.13), (got, want)


def test_cli_reports_the_rows_folded_and_refuses_with_the_rebuild_hint(
    settings: Settings, lake: Lake
) -> None:
    import json

    from typer.testing import CliRunner

    from fraudops.cli import app as cli_app

    env = {"FRAUDOPS_HOME": str(settings.home)}
    runner = CliRunner()
    lake.append(PREDICTIONS, predictions(1, 120))
    result = runner.invoke(cli_app, ["lake", "aggregates", "--json"], env=env)
    assert result.exit_code == 0, result.output
    first = {r["table"]: r for r in json.loads(result.stdout)["aggregates"]}
    assert first[PREDICTION_STATS]["rows_folded"] == 120
    assert first[LABEL_STATS]["rows_folded"] == 120
    lake.append(PREDICTIONS, predictions(2, 30))
    result = runner.invoke(cli_app, ["lake", "aggregates"], env=env)
    assert result.exit_code == 0, result.output
    assert "prediction_stats: refresh, 30 row(s) folded in (150 in all)" in " ".join(
        result.output.split()
    )
    lake.replace(PREDICTIONS, predictions(3, 10))
    result = runner.invoke(cli_app, ["lake", "aggregates"], env=env)
    assert result.exit_code != 0
    assert "fraudops lake aggregates --rebuild" in " ".join(result.output.split())
    result = runner.invoke(cli_app, ["lake", "aggregates", "--rebuild", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rebuilt = {r["table"]: r for r in json.loads(result.stdout)["aggregates"]}
    assert rebuilt[PREDICTION_STATS]["mode"] == "rebuild"
    assert rebuilt[PREDICTION_STATS]["folded_total"] == 10
