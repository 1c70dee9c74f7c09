"""The whole training pipeline on ~20K synthetic rows: a real lake, a real MLflow (SQLite store and
artifact folder under a temporary home). One promoted champion, one rejected challenger, one worse
challenger that is registered but not promoted, and the records each decision leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fraudops import registry
from fraudops.config import Settings, load_settings
from fraudops.errors import GateFailed, LakeError, NotPromoted, ValidationError
from fraudops.lake import Lake, load_file
from fraudops.models.profile import load_profile
from fraudops.progress import Reporter
from fraudops.runtime import Runtime, mlflow_client
from fraudops.scoring import Scorer
from fraudops.training.features import feature_matrix, label_vector
from fraudops.training.pipeline import run_training
from fraudops.training.result import TrainingResult
from fraudops.training.split import time_split
from tests.governance_support import model_events
from tests.registry_support import registry_client

ROWS = 20_000
WEAK: dict[str, Any] = {
    "training": {"xgboost": {"n_estimators": 2, "max_depth": 1}},
    "gate": {"min_roc_auc": 0.5, "min_pr_auc": 0.0},
}


def train(settings: Settings, spec_name: str | None = None, **options: Any) -> TrainingResult:
    with Runtime(settings, spec_name) as runtime:
        return run_training(runtime.training_context(), **options)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fraudops.data.synthetic import generate_transactions

    home = tmp_path_factory.mktemp("pipeline") / "home"
    settings = load_settings(home=home)
    spec = settings.feature_spec("transactions30")
    frame = generate_transactions(settings.data, spec, rows=ROWS, seed=11)
    path = home.parent / "transactions.parquet"
    frame.to_parquet(path)
    with Lake.open(settings, spec.name) as lake:
        lake.init()
        load_file(lake, path)
    return home


@pytest.fixture(scope="module")
def story(home: Path) -> dict[str, Any]:
    """Three trainings in a row: champion, rejected (raises), weaker challenger (result)."""
    progress = Reporter()
    first = train(load_settings(home=home), progress=progress)
    with pytest.raises(GateFailed) as rejected:
        train(load_settings(home=home, gate={"min_roc_auc": 0.999, "min_pr_auc": 0.99}))
    weak = train(load_settings(home=home, **WEAK), raise_on_gate=False)
    return {"first": first, "rejected": rejected.value, "weak": weak, "timings": progress.timings}


def _settings(home: Path) -> Settings:
    return load_settings(home=home)


def test_first_training_becomes_champion(story: dict[str, Any], home: Path) -> None:
    first: TrainingResult = story["first"]
    assert (first.decision, first.exit_code, first.version) == ("promoted", 0, "1")
    assert first.champion_before is None and first.champion_after == "1"
    assert first.metrics.roc_auc >= 0.85 and first.metrics.pr_auc >= 0.5  # seed floors
    assert first.metrics.n == first.split["holdout_rows"] == pytest.approx(ROWS * 0.2, abs=50)
    # The default operating point is the expected-loss decision; its threshold is the cut of
    # the same alert volume on validation.
    assert first.threshold == first.metrics.threshold
    assert first.threshold_policy == "expected_loss"
    # The fraud team's figures: money with the spec's amount, per day with its timestamp.
    assert first.metrics.amount_caught is not None and first.metrics.amount_missed is not None
    assert first.metrics.flagged_per_day is not None and first.metrics.k == 10
    assert first.metrics.card_precision_at_k is not None
    assert [c.name for c in first.gate.checks] == ["min_roc_auc", "min_pr_auc"]
    assert {"Loading transactions", "Training xgboost", "Logging to MLflow"} <= set(first.timings)
    summary = first.to_dict()
    json.dumps(summary)  # --json can print it as is
    assert summary["model_name"] == "fraudops-transactions30"


def test_champion_loads_from_the_registry_and_scores_like_the_run(
    story: dict[str, Any], home: Path
) -> None:
    from sklearn.metrics import roc_auc_score

    settings = _settings(home)
    loaded = registry.load_model(
        settings, "transactions30", client=registry_client(settings)
    )  # the champion by default
    assert (loaded.version, loaded.run_id) == ("1", story["first"].run_id)
    assert loaded.manifest.kind == "xgboost"
    assert loaded.manifest.threshold == story["first"].threshold
    with Lake.open(settings, "transactions30") as lake:
        frame = lake.read_frame("transactions")
    spec = settings.feature_spec()
    split = time_split(frame, spec, validation_fraction=0.1, holdout_fraction=0.2)
    X = feature_matrix(split.holdout, spec.feature_names)
    scores = loaded.model.predict_proba(X)
    y = label_vector(split.holdout, spec)
    auc = roc_auc_score(y, scores)
    assert auc == pytest.approx(story["first"].metrics.roc_auc, abs=1e-9)
    # The calibrator and the operating point travel with the version, and the Scorer (serving,
    # batch, Dask workers) flags exactly what the evaluation counted.
    assert loaded.manifest.calibration is not None and loaded.manifest.decision is not None
    assert loaded.manifest.decision["policy"] == "expected_loss"
    assert loaded.manifest.decision["amount_feature"] == spec.amount_column
    flagged = (
        Scorer(loaded, settings.serving.risk_tiers, flat_forest=False)
        .score(X)
        .predictions.astype(bool)
    )
    assert int(flagged.sum()) == story["first"].metrics.flagged
    assert int((flagged & (y == 1)).sum()) == story["first"].metrics.tp


def test_the_run_holds_params_metrics_and_artifacts(story: dict[str, Any], home: Path) -> None:
    settings = _settings(home)
    client = mlflow_client(settings)
    run = client.get_run(story["first"].run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["decision"] == "promoted" and run.data.tags["version"] == "1"
    assert run.data.params["trainer"] == "xgboost" and run.data.params["spec"] == "transactions30"
    assert int(run.data.params["train_rows"]) == pytest.approx(ROWS * 0.7, abs=50)
    assert "xgboost.max_depth" in run.data.params and "model.scale_pos_weight" in run.data.params
    assert run.data.metrics["roc_auc"] == pytest.approx(story["first"].metrics.roc_auc)
    assert "val_pr_auc" in run.data.metrics and run.data.metrics["gate_min_roc_auc"] == 1.0
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert top == {"model", "reference", "charts", "spec.json", "metrics.json"}
    charts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "charts")}
    assert charts == {
        "roc_curve.png",
        "pr_curve.png",
        "confusion_matrix.png",
        "feature_importance.png",
        "class_balance.png",
        "score_distribution.png",
    }
    model_files = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")}
    # An MLflow Model (xgboost flavor) in XGBoost's own format, our manifest beside, no pickle.
    assert model_files == {
        "MLmodel",
        "model.ubj",
        "fraudops.json",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    }
    # Artifacts live under the configured root, one folder per experiment.
    assert run.info.artifact_uri.startswith(settings.artifact_location + "/fraudops-training/")


def test_reference_profile_is_stored_with_the_model(story: dict[str, Any], home: Path) -> None:
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        run_id=story["first"].run_id,
        artifact_path="reference",
        tracking_uri=_settings(home).tracking_uri,
        dst_path=str(home.parent / "ref"),
    )
    profile = load_profile(local)
    spec = _settings(home).feature_spec()
    assert list(profile.features) == spec.feature_names
    assert profile.rows == story["first"].split["train_rows"]
    assert profile.baseline_metrics["roc_auc"] == story["first"].metrics.roc_auc
    assert profile.threshold == story["first"].threshold
    assert profile.scores.count == (
        story["first"].split["validation_rows"] + story["first"].split["holdout_rows"]
    )
    assert profile.kinds["online_transaction"] == "binary"
    np.testing.assert_allclose(profile.features["transaction_amount"].proportions.sum(), 1.0)


def test_a_missed_threshold_is_rejected_and_not_registered(
    story: dict[str, Any], home: Path
) -> None:
    error: GateFailed = story["rejected"]
    assert error.exit_code == 3
    message = str(error)
    assert "roc_auc" in message and "< 0.9990" in message and "pr_auc" in message
    assert "not registered" in message
    settings = _settings(home)
    versions = registry.list_versions(mlflow_client(settings), settings)
    assert [v["version"] for v in versions] == ["2", "1"]  # the rejected run added none
    rejected_runs = [
        r
        for r in registry.pipeline_runs(mlflow_client(settings), settings)
        if r["decision"] == "rejected"
    ]
    assert len(rejected_runs) == 1 and rejected_runs[0]["status"] == "FINISHED"
    assert rejected_runs[0]["version"] in ("", None)


def test_a_worse_challenger_is_registered_but_not_promoted(
    story: dict[str, Any], home: Path
) -> None:
    weak: TrainingResult = story["weak"]
    assert (weak.decision, weak.exit_code, weak.version) == ("not_promoted", 4, "2")
    assert weak.champion_before == weak.champion_after == "1"
    failed = weak.gate.failed
    assert failed and all(c.kind == "champion" for c in failed)
    assert weak.champion_metrics["roc_auc"] == pytest.approx(
        story["first"].metrics.roc_auc
    )  # the champion scored on the same holdout
    assert "trails champion v1" in weak.reason
    settings = _settings(home)
    assert registry.champion(mlflow_client(settings), settings)["version"] == "1"  # type: ignore[index]
    listed = {v["version"]: v for v in registry.list_versions(mlflow_client(settings), settings)}
    assert listed["1"]["aliases"] == ["champion"] and listed["2"]["aliases"] == []
    assert listed["2"]["decision"] == "not_promoted"
    shown = registry.show_version(mlflow_client(settings), settings, "2")
    assert shown["tags"]["promoted"] == "false" and "trails" in shown["tags"]["gate_reason"]


def test_model_events_tell_each_decision_with_its_reason(story: dict[str, Any], home: Path) -> None:
    events = model_events(_settings(home), "transactions30")
    rows = list(zip(events["event_type"], events["version"], strict=True))
    assert rows == [
        ("registered", "1"),
        ("promoted", "1"),
        ("rejected", None),
        ("registered", "2"),
        ("not_promoted", "2"),
    ]
    assert events["reason"].str.len().min() > 10
    promoted = events[events["event_type"] == "promoted"].iloc[0]
    assert promoted["champion_before"] is None and promoted["champion_after"] == "1"
    assert json.loads(promoted["metrics"])["roc_auc"] == story["first"].metrics.roc_auc
    refused = events[events["event_type"] == "not_promoted"].iloc[0]
    assert refused["champion_after"] == "1" and "champion" in refused["reason"]
    assert json.loads(refused["metrics"])["champion"]["pr_auc"] > 0
    assert set(events["trigger"]) == {"train"}
    assert set(events["actor"]) == {"fraudops"}  # the pipeline's gate decided, no person
    assert "0.9990" in events[events["event_type"] == "rejected"].iloc[0]["reason"]


def test_not_promoted_raises_after_recording(story: dict[str, Any], home: Path) -> None:
    settings = load_settings(home=home, **WEAK)
    with pytest.raises(NotPromoted) as caught:
        train(
            settings,
            trigger="retrain",
            reason="drift on transaction_amount",
            monitoring_run_id="mon-1",
        )
    assert caught.value.exit_code == 4 and "version 3 registered but not promoted" in str(
        caught.value
    )
    events = model_events(settings, "transactions30").tail(2)
    assert events["event_type"].tolist() == ["registered", "not_promoted"]
    assert events["trigger"].tolist() == ["retrain", "retrain"]
    assert events["monitoring_run_id"].tolist() == ["mon-1", "mon-1"]
    assert events["reason"].iloc[-1].startswith("drift on transaction_amount — trails")


def test_logreg_trains_and_is_pickle_free(story: dict[str, Any], home: Path) -> None:
    settings = load_settings(
        home=home,
        gate={
            "min_roc_auc": 0.5,
            "min_pr_auc": 0.0,
            "min_recall": {"logreg": 0.0},
            "champion_margin": 1.0,
        },
    )
    result = train(settings, trainer="logreg")
    assert result.decision == "promoted" and result.metrics.roc_auc > 0.85
    loaded = registry.load_model(
        settings, "transactions30", result.version, client=registry_client(settings)
    )
    assert loaded.manifest.kind == "logreg"
    names = {
        Path(a.path).name for a in mlflow_client(settings).list_artifacts(result.run_id, "model")
    }
    # A pyfunc "model from code" (no cloudpickle) with its parameters as JSON.
    assert names == {
        "MLmodel",
        "logreg_pyfunc.py",
        "artifacts",
        "fraudops.json",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    }


def test_a_failing_step_marks_the_run_failed(home: Path) -> None:
    settings = _settings(home)
    with Lake.open(settings, "ulb") as lake:
        lake.init()  # tables exist but hold no rows
    with pytest.raises(ValidationError, match=r"ulb\.transactions is empty"):
        train(settings, spec_name="ulb")
    failed = registry.pipeline_runs(mlflow_client(settings), settings, "ulb")
    assert [r["status"] for r in failed] == ["FAILED"]
    assert failed[0]["trainer"] == "xgboost" and failed[0]["duration_s"] is not None


def test_nothing_stays_registered_when_model_events_cannot_be_written(tmp_path: Path) -> None:
    import pandas as pd

    # A home of its own: the module's shared home already holds other tests' runs.
    settings = load_settings(home=tmp_path / "own-home")

    rng = np.random.default_rng(5)
    rows = 3000
    fraud = rng.random(rows) < 0.05
    frame = pd.DataFrame(
        {f"V{i}": rng.normal(size=rows) + 2 * fraud * (i < 4) for i in range(1, 29)}
    )
    frame.insert(0, "Time", np.sort(rng.uniform(0, 172_800, rows)).round())
    frame["Amount"] = rng.lognormal(3, 1, rows).round(2)
    frame["Class"] = fraud.astype(int)
    frame.to_parquet(tmp_path / "ulb.parquet")
    with Lake.open(settings, "ulb") as lake:
        lake.init()
        load_file(lake, tmp_path / "ulb.parquet")
        lake.catalog.drop_table(lake.identifier("model_events"))

    with pytest.raises(LakeError, match="model_events does not exist"):
        train(settings, spec_name="ulb", raise_on_gate=False)
    # The model passed the gate and was registered (so the registered model exists), but the
    # version was taken back when its events could not be written.
    mlflow_client(settings).get_registered_model("fraudops-ulb")
    assert registry.list_versions(mlflow_client(settings), settings, "ulb") == []
    assert registry.champion(mlflow_client(settings), settings, "ulb") is None
    assert [
        r["status"] for r in registry.pipeline_runs(mlflow_client(settings), settings, "ulb")
    ] == ["FAILED"]
