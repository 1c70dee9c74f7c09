"""`fraudops score --engine dask` on a LocalCluster of 2 worker processes against the local path:
the same scores row for row from a Parquet folder, a glob and a lake table (a real registry and
lake under a temporary home, a small XGBoost champion trained on 5,000 rows), the same checks
on bad input, and nothing written when they fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import Client
from typer.testing import CliRunner

from fraudops.batch import worker_models
from fraudops.batch.dask import score_dask as dask_score
from fraudops.batch.local import OUTPUT_COLUMNS, ScoreReport, score_file
from fraudops.batch.score import score
from fraudops.cli import app as cli_app
from fraudops.config import Settings, load_settings
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import FraudopsError, ValidationError
from fraudops.lake import Lake
from fraudops.runtime import Runtime, open_lake
from fraudops.spec import FeatureSpec
from tests.integration.test_batch_score import trained_home

FILES = {"a.parquet": 1200, "b.parquet": 900, "c.parquet": 700}
ROW_GROUP = 400  # files of several row groups: partitions are cut between them


def _registry(settings: Settings) -> Any:
    return Runtime(settings).mlflow_factory()


def score_dask(
    client: Client, settings: Settings, spec: FeatureSpec, source: str, target: str, **options: Any
) -> ScoreReport:
    """The Dask path with the lake of the spec opened as a runtime opens it."""
    lakes = partial(open_lake, settings, spec.name)
    registry = _registry(settings)
    return dask_score(
        client, settings, spec, source, target, lake_factory=lakes, registry=registry, **options
    )


@pytest.fixture(scope="module")
def client(dask_cluster: Any) -> Iterator[Client]:
    with Client(dask_cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose registry has a champion (version 1), trained as test_batch_score's is."""
    return trained_home(tmp_path_factory.mktemp("daskscore"))


@pytest.fixture
def settings(home: Path) -> Settings:
    # Partitions of ~1,000 rows: each input below is cut into several.
    return load_settings(home=home, compute={"partition_rows": 1000})


@pytest.fixture(scope="module")
def folder(home: Path) -> Path:
    """Three Parquet files of fresh rows (no label, no timestamp), several row groups each."""
    settings = load_settings(home=home)
    spec = settings.feature_spec()
    folder = home.parent / "to-score"
    folder.mkdir()
    for seed, (name, rows) in enumerate(FILES.items()):
        frame = generate_transactions(settings.data, spec, rows=rows, seed=10 + seed)
        frame["transaction_id"] = [f"{name[0]}-{i:05d}" for i in range(rows)]
        frame = frame.drop(columns=["is_fraud", "transaction_timestamp"])
        frame.to_parquet(folder / name, row_group_size=ROW_GROUP)
    (folder / "_SUCCESS").write_text("")  # marker files are not input
    return folder


def _local(settings: Settings, files: list[Path], tmp_path: Path) -> tuple[pd.DataFrame, Any]:
    """The local path's scores of ``files`` one after the other (one file, as it takes)."""
    joined = tmp_path / "joined.parquet"
    pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).to_parquet(joined)
    report = score_file(settings, joined, tmp_path / "local.parquet", registry=_registry(settings))
    return pq.read_table(tmp_path / "local.parquet").to_pandas(), report


def _assert_same_scores(dask_scores: pd.DataFrame, local: pd.DataFrame) -> None:
    assert list(dask_scores.columns) == list(local.columns)
    assert len(dask_scores) == len(local) > 0
    assert dask_scores["transaction_id"].tolist() == local["transaction_id"].tolist()
    assert dask_scores["customer_id"].tolist() == local["customer_id"].tolist()
    # The same compiled forest (or XGBoost) on the same float32 matrix: equal, not close.
    np.testing.assert_array_equal(dask_scores["probability"], local["probability"])
    np.testing.assert_array_equal(dask_scores["prediction"], local["prediction"])
    assert dask_scores["risk_tier"].tolist() == local["risk_tier"].tolist()
    assert set(dask_scores["model_name"]) == {"fraudops-transactions30"}
    assert set(dask_scores["model_version"]) == {"1"}


def _assert_same_report(report: ScoreReport, local: ScoreReport) -> None:
    assert (report.rows, report.predicted_fraud) == (local.rows, local.predicted_fraud)
    assert report.risk_tiers == local.risk_tiers
    assert (report.model_name, report.model_version) == ("fraudops-transactions30", "1")
    assert report.columns == local.columns
    assert report.predictor == local.predictor == "compiled"
    assert report.rows_per_s > 0


def _scorer_cache(client: Client) -> dict[str, list[tuple[str, str]]]:
    return client.run(lambda: [key[:2] for key in worker_models.SCORERS])  # type: ignore[no-any-return]


def test_a_folder_scores_as_the_local_path_row_for_row_one_file_per_partition(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "scored"
    report = score_dask(client, settings, settings.feature_spec(), str(folder), str(target))

    parts = sorted(target.iterdir())
    # Row groups of 400 in file order, up to 1,000 rows a partition: a0 a1 | a2 b0 | b1 b2 c0 | c1
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [800, 800, 900, 300]
    scored = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    local, local_report = _local(settings, sorted(folder.glob("*.parquet")), tmp_path)
    _assert_same_scores(scored, local)
    _assert_same_report(report, local_report)
    assert report.rows == sum(FILES.values()) == 2800
    assert list(scored.columns) == ["transaction_id", "customer_id", *OUTPUT_COLUMNS]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "joined.parquet",
        "local.parquet",
        "scored",
    ]
    # The model was loaded once on each worker, not once per partition.
    assert sorted(_scorer_cache(client).values()) == [
        [("fraudops-transactions30", "1")],
        [("fraudops-transactions30", "1")],
    ]

    # A second run replaces the previous result, as `score` replaces an output file.
    again = score_dask(client, settings, settings.feature_spec(), str(folder), str(target))
    assert again.rows == 2800
    assert len(list(target.iterdir())) == 4


def test_a_glob_scores_the_files_it_matches(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "glob-out"
    pattern = str(folder / "[bc].parquet")
    report = score_dask(client, settings, settings.feature_spec(), pattern, str(target))
    scored = pd.concat([pd.read_parquet(p) for p in sorted(target.iterdir())], ignore_index=True)
    local, local_report = _local(settings, [folder / "b.parquet", folder / "c.parquet"], tmp_path)
    _assert_same_scores(scored, local)
    _assert_same_report(report, local_report)
    assert report.rows == 1600


def test_a_lake_table_scores_as_its_export_and_can_land_in_predictions(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    spec = settings.feature_spec()
    with Lake.open(settings) as lake:  # a second file in transactions: two partitions
        lake.append("transactions", pd.read_parquet(folder / "a.parquet"))
        exported = tmp_path / "transactions.parquet"
        pq.write_table(
            lake.read("transactions", ["transaction_id", "customer_id", *spec.feature_names]),
            exported,
        )
    target = tmp_path / "from-lake"
    report = score_dask(client, settings, spec, "lake:transactions", str(target))
    scored = pd.concat([pd.read_parquet(p) for p in sorted(target.iterdir())], ignore_index=True)
    assert len(list(target.iterdir())) == 2
    local, local_report = _local(settings, [exported], tmp_path)
    _assert_same_scores(scored, local)
    _assert_same_report(report, local_report)
    assert report.rows == 5000 + 1200

    # The folder into the lake's predictions: one commit of every row, the local scores.
    with Lake.open(settings) as lake:
        snapshots = len(lake.table("predictions").snapshots())
        before = lake.count("predictions")
    into = score_dask(client, settings, spec, str(folder), "lake:predictions")
    with Lake.open(settings) as lake:
        assert len(lake.table("predictions").snapshots()) == snapshots + 1
        assert lake.count("predictions") - before == into.rows == 2800
        stored = lake.read_frame("predictions").sort_values("transaction_id", ignore_index=True)
    local_folder, _ = _local(settings, sorted(folder.glob("*.parquet")), tmp_path)
    local_folder = local_folder.sort_values("transaction_id", ignore_index=True)
    np.testing.assert_array_equal(stored["probability"], local_folder["probability"])
    assert stored["risk_tier"].tolist() == local_folder["risk_tier"].tolist()
    assert stored["inference_id"].nunique() == 2800
    assert stored["threshold"].nunique() == 1
    inputs = pd.concat([pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))])
    inputs = inputs.sort_values("transaction_id", ignore_index=True)
    np.testing.assert_array_equal(stored["transaction_amount"], inputs["transaction_amount"])
    np.testing.assert_array_equal(stored["amount"], inputs["transaction_amount"])


def test_bad_rows_are_named_by_file_and_row_and_nothing_is_written(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in FILES:
        pq.write_table(pq.read_table(folder / name), bad / name, row_group_size=ROW_GROUP)
    b = pd.read_parquet(bad / "b.parquet")
    b.loc[6, "transaction_amount"] = np.nan  # row 7 of b.parquet
    b.loc[850, "customer_age"] = 7  # row 851: a later row group, another partition
    b.to_parquet(bad / "b.parquet", row_group_size=ROW_GROUP)
    c = pd.read_parquet(bad / "c.parquet")
    c.loc[0, "online_transaction"] = 2
    c.to_parquet(bad / "c.parquet", row_group_size=ROW_GROUP)

    target = tmp_path / "scored"
    target.mkdir()
    (target / "part-00000.parquet").write_bytes(b"previous result")  # stays as it was
    with Lake.open(settings) as lake:
        before = lake.table("predictions").current_snapshot()
    spec = settings.feature_spec()
    for output in (str(target), "lake:predictions"):
        with pytest.raises(ValidationError) as caught:
            score_dask(client, settings, spec, str(bad), output)
        message = str(caught.value)
        assert caught.value.exit_code == 2
        assert "(3 problems; nothing was written)" in message
        assert (
            f"{bad / 'b.parquet'}: column 'transaction_amount': missing value (empty, null or "
            "NaN) at row 7" in message
        )
        assert (
            f"{bad / 'b.parquet'}: column 'customer_age': out of range [18, 100] at row 851 "
            "(value 7)" in message
        )
        assert (
            f"{bad / 'c.parquet'}: column 'online_transaction': out of range [0, 1] at row 1"
            in message
        )
    assert [p.name for p in target.iterdir()] == ["part-00000.parquet"]
    assert (target / "part-00000.parquet").read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "scored"]  # no temp folder
    with Lake.open(settings) as lake:
        assert lake.table("predictions").current_snapshot() == before

    # A missing feature column fails on the client, before any partition is scored.
    pd.read_parquet(bad / "a.parquet").drop(columns=["velocity_score"]).to_parquet(
        bad / "a.parquet"
    )
    with pytest.raises(
        ValidationError, match=r"a\.parquet: missing feature column\(s\): 'velocity_score'"
    ):
        score_dask(client, settings, spec, str(bad), str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_refusals_name_what_to_do(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    spec = settings.feature_spec()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    cases = {
        str(other): "holds notes.txt, not a previous score output",
        str(tmp_path / "out.csv"): "writes a Parquet folder",
        str(folder / "inner"): "is inside the input folder",
        str(folder.parent): "holds the input",
        "lake:labels": "the lake output is the table of scores, lake:predictions",
    }
    for target, expected in cases.items():
        with pytest.raises(ValidationError, match=expected):
            score_dask(client, settings, spec, str(folder), target)
    with pytest.raises(ValidationError, match="the glob matches no file"):
        score_dask(client, settings, spec, str(tmp_path / "*.parquet"), str(tmp_path / "o"))
    with pytest.raises(ValidationError, match="no data rows"):
        empty = tmp_path / "empty"
        empty.mkdir()
        pd.read_parquet(folder / "a.parquet").head(0).to_parquet(empty / "x.parquet")
        score_dask(client, settings, spec, str(empty), str(tmp_path / "o"))
    with pytest.raises(FraudopsError, match="no version or alias '7'"):
        score_dask(client, settings, spec, str(folder), str(tmp_path / "o"), version="7")
    assert (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "other"]  # no temp folder
    # The local engine scores one file: a folder names --engine dask.
    with (
        Runtime(settings, engine="local") as runtime,
        pytest.raises(ValidationError, match="needs --engine dask"),
    ):
        score(
            runtime.engine,
            settings,
            spec,
            str(folder),
            str(tmp_path / "x.parquet"),
            lake_factory=runtime.lake_factory(),
            registry=runtime.mlflow_factory(),
        )


def test_the_cli_scores_on_the_cluster_at_scheduler_address(
    client: Client, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "cli-out"
    env = {
        "FRAUDOPS_HOME": str(settings.home),
        "FRAUDOPS_COMPUTE__SCHEDULER_ADDRESS": client.scheduler.address,  # type: ignore[union-attr]
    }
    args = ["score", "--engine", "dask", "-i", str(folder / "*.parquet"), "-o", str(target)]
    result = CliRunner().invoke(cli_app, [*args, "--explain", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["explain"], summary["model_version"]) == (2800, True, "1")
    scored = pd.concat([pd.read_parquet(p) for p in sorted(target.iterdir())], ignore_index=True)
    local_target = tmp_path / "local.parquet"
    joined = tmp_path / "joined.parquet"
    pd.concat([pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))]).to_parquet(joined)
    score_file(settings, joined, local_target, explain=True, registry=_registry(settings))
    local = pd.read_parquet(local_target)
    _assert_same_scores(scored, local)
    assert scored["reason_codes"].tolist() == local["reason_codes"].tolist()

    bad = ["score", "--engine", "dask", "-i", str(folder), "-o", str(tmp_path / "x.csv")]
    failed = CliRunner().invoke(cli_app, bad, env=env)
    assert failed.exit_code == 2
    assert "writes a Parquet folder" in failed.stderr
