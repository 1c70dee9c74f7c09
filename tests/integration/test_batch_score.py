"""`fraudops score`: batch scoring of files with the registered champion (a real lake, a real
MLflow registry under a temporary home, a small XGBoost champion trained on 5,000 rows)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudops.batch.local import OUTPUT_COLUMNS, score_file
from fraudops.cli import app as cli_app
from fraudops.config import Settings, load_settings
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import FraudopsError, ValidationError
from fraudops.lake import Lake, load_file
from fraudops.registry import load_model
from fraudops.runtime import Runtime
from fraudops.scoring import ScoredBatch, Scorer
from fraudops.training.features import feature_matrix
from fraudops.training.pipeline import run_training
from tests.registry_support import registry_client


def _registry(settings: Settings) -> Any:
    return Runtime(settings).mlflow_factory()


SMALL: dict[str, Any] = {
    "training": {"xgboost": {"n_estimators": 60, "max_depth": 4}},
    "gate": {"min_roc_auc": 0.5, "min_pr_auc": 0.0},
}
SCORE_ROWS = 3000


def trained_home(root: Path) -> Path:
    """``root/home``, whose registry has a champion (version 1) trained on 5,000 rows."""
    home = root / "home"
    settings = load_settings(home=home, **SMALL)
    spec = settings.feature_spec()
    path = home.parent / "train.parquet"
    generate_transactions(settings.data, spec, rows=5000, seed=3).to_parquet(path)
    with Lake.open(settings, spec.name) as lake:
        lake.init()
        load_file(lake, path)
    with Runtime(settings, spec.name) as runtime:
        result = run_training(runtime.training_context())
    assert result.decision == "promoted"
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose registry has a champion (version 1)."""
    return trained_home(tmp_path_factory.mktemp("score"))


@pytest.fixture(scope="module")
def rows(home: Path) -> pd.DataFrame:
    """Transactions to score: fresh rows without the label or the timestamp."""
    settings = load_settings(home=home)
    frame = generate_transactions(settings.data, settings.feature_spec(), rows=SCORE_ROWS, seed=8)
    return frame.drop(columns=["is_fraud", "transaction_timestamp"])


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home)


def _reference(settings: Settings, frame: pd.DataFrame, explain: bool = False) -> ScoredBatch:
    loaded = load_model(settings, settings.feature_spec(), client=registry_client(settings))
    scorer = Scorer(loaded, settings.serving.risk_tiers, settings.serving.explain_top_k)
    return scorer.score(feature_matrix(frame, scorer.feature_names), explain=explain)


def test_scores_from_a_file_equal_the_scorer_on_the_same_rows(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out" / "scored.parquet"
    rows.to_parquet(source)
    # Small chunks: the file is scored in three pieces and must come out as one.
    report = score_file(settings, source, target, chunk_rows=1000, registry=_registry(settings))

    scored = pq.read_table(target).to_pandas()
    expected = ["transaction_id", "customer_id", *OUTPUT_COLUMNS]
    assert list(scored.columns) == report.columns == expected
    assert len(scored) == report.rows == SCORE_ROWS
    reference = _reference(settings, rows)
    assert scored["transaction_id"].tolist() == rows["transaction_id"].tolist()
    assert scored["customer_id"].tolist() == rows["customer_id"].tolist()
    np.testing.assert_array_equal(scored["probability"].to_numpy(), reference.probabilities)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), reference.predictions)
    assert scored["risk_tier"].tolist() == reference.tiers.tolist()
    assert set(scored["model_name"]) == {"fraudops-transactions30"}
    assert set(scored["model_version"]) == {"1"} == {report.model_version}
    assert report.predicted_fraud == int(reference.predictions.sum())
    assert sum(report.risk_tiers.values()) == SCORE_ROWS
    assert list(report.risk_tiers) == ["low", "medium", "high", "critical"]
    assert [p.name for p in target.parent.iterdir()] == ["scored.parquet"]  # no temp file left


def test_the_champion_is_scored_by_its_compiled_forest_or_else_by_xgboost(
    settings: Settings,
    rows: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = tmp_path / "in.parquet"
    rows.to_parquet(source)
    reference = _reference(settings, rows)
    report = score_file(
        settings, source, tmp_path / "compiled.parquet", registry=_registry(settings)
    )
    assert report.predictor == "compiled"
    cached = list((settings.home_dir / "cache" / "compiled").rglob("*.so"))
    assert [p.parent.relative_to(settings.home_dir) for p in cached] == [
        Path("cache/compiled/fraudops-transactions30/1")
    ]
    # No compiler (and so no library for this key): XGBoost scores, one line says why.
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with caplog.at_level(logging.WARNING, logger="fraudops.models.compiled"):
        fallback = score_file(
            settings, source, tmp_path / "xgboost.parquet", registry=_registry(settings)
        )
    assert fallback.predictor == "model"
    assert [r.getMessage() for r in caplog.records] == [
        "fraudops-transactions30 v1 is scored with XGBoost's predictor: no compiled forest "
        "(no C compiler '/nonexistent/cc' (set CC to one))"
    ]
    for name in ("compiled.parquet", "xgboost.parquet"):
        probabilities = pq.read_table(tmp_path / name).column("probability").to_numpy()
        np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)


def test_csv_in_csv_out_with_reason_codes_through_the_cli(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "scored.csv"
    subset = rows.head(500)
    subset.to_csv(source, index=False)
    args = ["score", "--input", str(source), "--output", str(target), "--explain", "--json"]
    result = CliRunner().invoke(cli_app, args, env={"FRAUDOPS_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["explain"], summary["model_version"]) == (500, True, "1")

    scored = pd.read_csv(target, dtype={"model_version": str}, float_precision="round_trip")
    assert list(scored.columns) == [
        "transaction_id",
        "customer_id",
        *OUTPUT_COLUMNS,
        "reason_codes",
    ]
    reference = _reference(settings, subset, explain=True)
    np.testing.assert_array_equal(scored["probability"], reference.probabilities)
    np.testing.assert_array_equal(scored["prediction"], reference.predictions)
    reasons = [json.loads(text) for text in scored["reason_codes"]]
    assert reasons == reference.reasons
    assert len(reasons[0]) == settings.serving.explain_top_k
    assert set(reasons[0][0]) == {"feature", "value", "contribution"}


def test_a_bad_file_names_columns_and_file_wide_rows_and_writes_nothing(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    bad = rows.astype({"transaction_amount": object, "customer_age": object})
    bad.loc[4, "transaction_amount"] = "12,50"  # row 5 (first chunk)
    bad.loc[2499, "transaction_amount"] = None  # row 2500 (third chunk)
    bad.loc[1200, "customer_age"] = 7  # row 1201, below the spec's 18
    source, target = tmp_path / "bad.csv", tmp_path / "scored.parquet"
    bad.to_csv(source, index=False)
    target.write_bytes(b"previous result")  # an earlier output stays as it was

    with pytest.raises(ValidationError) as caught:
        score_file(settings, source, target, chunk_rows=1000, registry=_registry(settings))
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "column 'transaction_amount': not a number at row 5 (value '12,50')" in message
    assert "column 'transaction_amount': missing value (empty, null or NaN) at row 2500" in message
    assert "column 'customer_age': out of range [18, 100] at row 1201 (value 7)" in message
    assert "nothing was written" in message
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "scored.parquet"]


def test_missing_feature_columns_fail_before_any_work(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "scored.csv"
    rows.drop(columns=["velocity_score"]).rename(columns={"cvv_match": "CVV_match"}).to_parquet(
        source
    )
    with pytest.raises(ValidationError) as caught:
        score_file(settings, source, target, registry=_registry(settings))
    message = str(caught.value)
    assert "missing feature column(s): 'cvv_match', 'velocity_score'" in message
    assert "found 'CVV_match' for 'cvv_match'" in message
    assert not target.exists()


def test_the_cli_exits_2_on_a_bad_file(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "scored.csv"
    bad = rows.head(50).copy()
    bad.loc[9, "online_transaction"] = 2
    bad.to_csv(source, index=False)
    args = ["score", "-i", str(source), "-o", str(target)]
    result = CliRunner().invoke(cli_app, args, env={"FRAUDOPS_HOME": str(settings.home)})
    assert result.exit_code == 2
    assert "column 'online_transaction': out of range [0, 1] at row 10" in result.stderr
    assert not target.exists()


def test_other_refusals(settings: Settings, rows: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    rows.head(10).to_parquet(source)
    with pytest.raises(ValidationError, match=r"unknown output format '\.json'"):
        score_file(settings, source, tmp_path / "out.json", registry=_registry(settings))
    with pytest.raises(ValidationError, match="is the input"):
        score_file(settings, source, source, registry=_registry(settings))
    with pytest.raises(FraudopsError, match="no version or alias '7'"):
        score_file(
            settings, source, tmp_path / "out.csv", version="7", registry=_registry(settings)
        )
    empty = tmp_path / "empty.csv"
    rows.head(0).to_csv(empty, index=False)
    with pytest.raises(ValidationError, match="no data rows"):
        score_file(settings, empty, tmp_path / "out.csv", registry=_registry(settings))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "in.parquet"]


def test_mlflow_pyfunc_of_the_champion_gives_the_scored_probabilities(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    source, target = tmp_path / "in.parquet", tmp_path / "scored.parquet"
    rows.to_parquet(source)
    score_file(settings, source, target, registry=_registry(settings))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", settings.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/fraudops-transactions30@champion")
    theirs = np.asarray(pyfunc.predict(rows))  # the whole frame: ids and all, by name
    scored = pq.read_table(target).column("probability").to_numpy()
    np.testing.assert_allclose(theirs, scored, rtol=1e-6, atol=0)


def test_a_score_process_imports_neither_mlflow_nor_xgboost_nor_pyiceberg(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    # What keeps `fraudops score` start-up in a fraction of a second (see fraudops.batch.local):
    # no MLflow, no xgboost package, no pyiceberg (registry.lookup), no other CLI command.
    source, target = tmp_path / "in.parquet", tmp_path / "scored.parquet"
    rows.to_parquet(source)
    code = (
        "import sys\n"
        "from fraudops.cli import main\n"
        f"sys.argv = ['fraudops', 'score', '-i', {str(source)!r}, '-o', {str(target)!r}]\n"
        "sys.argv.append('--json')\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    heavy = {'mlflow', 'xgboost', 'sklearn', 'pyiceberg', 'sqlalchemy'}\n"
        "    commands = {m for m in sys.modules if m.startswith('fraudops.cli.') and 'cmd' in m}\n"
        "    print(sorted(heavy & set(sys.modules)), sorted(commands), file=sys.stderr)\n"
    )
    env = {"FRAUDOPS_HOME": str(settings.home), "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    # Only its own command module: the others (server, simulation, ...) load on their own use.
    assert done.stderr.strip().splitlines()[-1] == "[] ['fraudops.cli.score_cmd']"
    assert json.loads(done.stdout)["rows"] == SCORE_ROWS
    reference = _reference(settings, rows)
    np.testing.assert_array_equal(
        pq.read_table(target).column("probability").to_numpy(), reference.probabilities
    )
