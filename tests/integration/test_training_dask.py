"""Training on the Dask engine against a LocalCluster of 2 workers: the same figures as the local
engine on the same lake data, the same time split, the same reference profile, logistic
regression refused, and a retrain through Dask that a running `fraudops serve` hot-reloads.

The lake holds 50K synthetic rows (5% fraud, so the holdout's ~480 frauds make PR-AUC a stable
figure) appended in five commits, read as one partition per file. Row subsampling is off in
this module: each Dask worker draws its own rows, so with ``subsample < 1`` the two engines'
models differ as two seeds do (measured: ±0.03 PR-AUC on this data); without it, what differs
is the distributed quantile sketch and the order of the histogram sums.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.config import Settings, load_settings
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError
from fraudops.lake import Lake, load_file
from fraudops.lake.dask_io import read_dask
from fraudops.models.profile import CategoricalProfile, NumericProfile
from fraudops.progress import Reporter
from fraudops.runtime import Runtime
from fraudops.training.dask_profile import SummaryReference, summarize_reference
from fraudops.training.dask_split import dask_time_split, latest_rows
from fraudops.training.local import MatrixReference
from fraudops.training.outcome import SLICES, Trained
from fraudops.training.pipeline import fit_and_evaluate, run_training
from fraudops.training.retrain_data import latest_lake_rows
from tests.labels_support import chargebacks, ingest
from tests.serving_support import (
    Server,
    fraud_first,
    get_json,
    post_json,
    transactions,
    wait_logged,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SPEC = "transactions30"
ROWS = 50_000
FILES = 5
TOLERANCE = 0.005  # the bound on |ROC-AUC| and |PR-AUC| differences


@pytest.fixture(scope="module")
def cluster(dask_cluster: Any) -> Any:
    return dask_cluster


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, cluster: Any) -> Settings:
    home = tmp_path_factory.mktemp("dasktrain") / "home"
    settings = load_settings(
        home=home,
        data={"fraud_rate": 0.05},
        compute={"scheduler_address": cluster.scheduler_address, "partition_rows": 10_000},
        training={"xgboost": {"subsample": 1.0, "colsample_bytree": 1.0, "n_estimators": 150}},
        retrain={"min_holdout_positives": 5, "base_rows": 30_000},
    )
    spec = settings.feature_spec(SPEC)
    frame = generate_transactions(settings.data, spec, rows=ROWS, seed=11)
    step = ROWS // FILES
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        for i in range(FILES):  # one commit, one data file each
            path = home.parent / f"transactions-{i}.parquet"
            frame.iloc[i * step : (i + 1) * step].to_parquet(path)
            load_file(lake, path)
    return settings


@pytest.fixture(scope="module")
def trained(settings: Settings) -> dict[str, Any]:
    """Both engines' modelling on the same lake (no run recorded: nothing registered yet)."""
    out: dict[str, Any] = {}
    for engine in ("local", "dask"):
        started = time.perf_counter()
        with Runtime(settings, SPEC, engine=engine) as runtime:
            out[engine] = fit_and_evaluate(runtime.training_context(), "xgboost", Reporter())
        out[f"{engine}_seconds"] = time.perf_counter() - started
    return out


def test_a_dask_trained_model_scores_the_holdout_as_the_local_one(trained: dict[str, Any]) -> None:
    local: Trained = trained["local"]
    dask: Trained = trained["dask"]
    print(
        f"\nholdout ROC-AUC local {local.holdout.roc_auc:.4f} dask {dask.holdout.roc_auc:.4f}; "
        f"PR-AUC local {local.holdout.pr_auc:.4f} dask {dask.holdout.pr_auc:.4f}; "
        f"seconds local {trained['local_seconds']:.1f} dask {trained['dask_seconds']:.1f}"
    )
    assert (dask.holdout.n, dask.holdout.positives) == (local.holdout.n, local.holdout.positives)
    assert local.holdout.roc_auc > 0.93 and local.holdout.pr_auc > 0.8  # a real model
    assert abs(dask.holdout.roc_auc - local.holdout.roc_auc) <= TOLERANCE
    assert abs(dask.holdout.pr_auc - local.holdout.pr_auc) <= TOLERANCE
    assert abs(dask.validation.roc_auc - local.validation.roc_auc) <= TOLERANCE
    # The same trainer's parameters: the class weight from the partitions' counts.
    for key in ("scale_pos_weight", "max_depth", "learning_rate", "seed"):
        assert dask.model.manifest.params[key] == local.model.manifest.params[key]
    assert dask.model.manifest.feature_names == local.model.manifest.feature_names
    assert dask.model.manifest.threshold == dask.choice.threshold
    # The portable model scores a bare matrix in this process as it scored on the workers.
    importance = dask.model.feature_importance()
    assert sum(importance.values()) > 0


def test_the_time_split_pushed_into_the_scans_cuts_where_the_local_split_cuts(
    settings: Settings, trained: dict[str, Any], cluster: Any
) -> None:
    from distributed import Client

    local: Trained = trained["local"]
    dask: Trained = trained["dask"]
    assert dask.split == local.split  # rows, frauds, first and last timestamp of each slice
    assert dask.split.summary() == local.split.summary()
    spec = settings.feature_spec(SPEC)
    with Client(cluster) as client, Lake.open(settings, SPEC) as lake:
        split = dask_time_split(client, lake, spec, validation_fraction=0.1, holdout_fraction=0.2)
        assert split.stats == local.split
        # Each slice's pushed filter reads exactly its rows: no row lost or read twice.
        ts = spec.timestamp_column
        for name in SLICES:
            frame = read_dask(lake, "transactions", [ts], split.row_filter(name, ts))
            assert frame.npartitions >= 1
            times = frame[ts].compute()
            assert len(times) == local.split.slices[name].rows
            assert (times.min(), times.max()) == (
                local.split.slices[name].start,
                local.split.slices[name].end,
            )
        # A retrain's lake rows: only the latest base_rows read, the same rows as locally.
        columns = [*spec.feature_names, spec.label_column, ts]
        for limit in (30_000, 7):
            expected = latest_lake_rows(lake.read_frame("transactions", columns), spec, limit)
            pd.testing.assert_frame_equal(latest_rows(client, lake, spec, limit, columns), expected)


def test_the_reference_profile_from_partitions_equals_the_local_one(
    settings: Settings, trained: dict[str, Any], cluster: Any
) -> None:
    from distributed import Client

    local: Trained = trained["local"]
    dask: Trained = trained["dask"]
    assert isinstance(local.reference, MatrixReference)
    assert isinstance(dask.reference, SummaryReference)
    spec = settings.feature_spec(SPEC)
    scores = np.concatenate([local.validation_scores, local.holdout_scores])
    common = {"scores": scores, "baseline_metrics": {"roc_auc": 0.9}, "threshold": 0.5, "bins": 10}
    mine = local.reference.profile(spec, **common)
    theirs = dask.reference.profile(spec, **common)
    assert theirs.rows == mine.rows == local.split.slices["train"].rows
    assert set(theirs.features) == set(mine.features) == set(spec.feature_names)
    numeric = 0
    for name, expected in mine.features.items():
        got = theirs.features[name]
        assert type(got) is type(expected), name
        if isinstance(expected, NumericProfile):
            assert isinstance(got, NumericProfile)
            numeric += 1
            # Exact: edges, proportions, the whole ECDF.
            assert np.array_equal(got.edges, expected.edges), name
            assert np.array_equal(got.proportions, expected.proportions), name
            assert np.array_equal(got.ecdf_values, expected.ecdf_values), name
            assert np.array_equal(got.ecdf_counts, expected.ecdf_counts), name
            assert got.exact and expected.exact and got.count == expected.count
            assert (got.stats["min"], got.stats["max"]) == (
                expected.stats["min"],
                expected.stats["max"],
            )
            # Up to float rounding: a weighted sum of the distinct values, not NumPy's pairwise
            # sum over the column.
            for key in ("mean", "std"):
                assert got.stats[key] == pytest.approx(expected.stats[key], rel=1e-9, abs=1e-12)
        else:
            assert isinstance(got, CategoricalProfile) and isinstance(expected, CategoricalProfile)
            assert np.array_equal(got.categories, expected.categories), name
            assert np.array_equal(got.counts, expected.counts), name
    assert numeric >= 10
    assert np.array_equal(theirs.scores.ecdf_counts, mine.scores.ecdf_counts)
    # A slice summarised by a second, independent pass gives the same counts.
    with Client(cluster) as client, Lake.open(settings, SPEC) as lake:
        split = dask_time_split(client, lake, spec, validation_fraction=0.1, holdout_fraction=0.2)
        holdout = read_dask(
            lake, "transactions", row_filter=split.row_filter("holdout", spec.timestamp_column)
        )
        again = summarize_reference(client, holdout, spec)
    assert again.rows == local.split.slices["holdout"].rows


def test_logistic_regression_is_refused_on_dask_before_any_run(settings: Settings) -> None:
    from typer.testing import CliRunner

    from fraudops.cli import app as cli_app

    with Runtime(settings, SPEC, engine="dask") as runtime:
        with pytest.raises(ConfigError, match=r"'logreg'.*--engine local.*--trainer xgboost"):
            run_training(runtime.training_context(), trainer="logreg")
        assert "client" not in runtime.engine.__dict__  # refused before the cluster was reached
    helped = CliRunner().invoke(cli_app, ["train", "--help"], env={"COLUMNS": "200"})
    assert helped.exit_code == 0
    text = " ".join(helped.output.split())
    assert "--engine" in text and "local engine only" in text


# ---- a retrain through Dask, hot-reloaded by a running server ------------------------------


def _served_and_labelled(settings: Settings, server: Server) -> datetime:
    """600 transactions (all 3,000's frauds among them) through the server, their labels a day
    later; returns the time they are all mature at."""

    bodies, fraud = fraud_first(settings, 3000, seed=21)
    served_at = datetime.now(UTC)
    answered: dict[str, str] = {}
    for i in range(0, len(bodies), 50):
        status, answer = post_json(server.url + "/v1/predict", bodies[i : i + 50], timeout=30)
        assert status == 200, answer
        for body, result in zip(bodies[i : i + 50], answer["results"], strict=True):
            answered[result["inference_id"]] = body["transaction_id"]
    wait_logged(settings, set(answered))
    events = chargebacks(answered.items(), fraud, served_at)
    later = served_at + timedelta(days=35)
    ingest(settings, SPEC, events, now=later)
    return later


def test_a_retrain_through_dask_is_promoted_and_the_server_hot_reloads_it(
    settings: Settings, trained: dict[str, Any]
) -> None:
    from fraudops.monitoring.retraining import retrain

    # A deliberately weak champion (two stumps), trained locally past lowered floors.
    weak = load_settings(
        home=settings.home_dir,
        gate={"min_roc_auc": 0.0, "min_pr_auc": 0.0},
        training={"xgboost": {"n_estimators": 2, "max_depth": 1, "early_stopping_rounds": 0}},
    )
    with Runtime(weak, SPEC) as runtime:
        champion = run_training(runtime.training_context(), raise_on_gate=False)
    assert champion.decision == "promoted"
    server = Server(settings.home_dir, FRAUDOPS_SERVING__RELOAD_INTERVAL_S="0.2").start()
    try:
        probe = transactions(settings, 1, seed=99)
        assert post_json(server.url + "/v1/predict", probe)[1]["model_version"] == champion.version
        as_of = _served_and_labelled(settings, server)
        with Runtime(settings, SPEC, engine="dask") as runtime:
            result = retrain(runtime.monitoring_context(), now=as_of, reason="retrain through dask")
        assert result.decision == "promoted", result.reason
        assert result.retrain is not None and result.retrain.holdout_rows == 600
        assert result.retrain.lake_rows == 30_000  # retrain.base_rows, read over partitions
        assert (result.champion_before, result.champion_after) == (
            champion.version,
            result.version,
        )
        wait_for(
            lambda: (
                post_json(server.url + "/v1/predict", probe)[1]["model_version"] == result.version
            ),
            f"the server answers with the retrained v{result.version}",
            timeout=30,
            poll=0.2,
        )
        assert result.version != champion.version
        assert get_json(server.url + "/readyz")[0] == 200
    finally:
        server.stop()
