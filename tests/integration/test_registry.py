"""The registry services on a real MLflow (SQLite store under a temporary home) and a real lake:
register, promote by hand, roll back through the promotion history, load by version or alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fraudops import governance, registry
from fraudops.config import LogRegParams, Settings
from fraudops.errors import FraudopsError, LakeError
from fraudops.lake import Lake
from fraudops.models.mlflow_model import save_model
from fraudops.models.portable import ScoringModel
from fraudops.registry.client import experiment_id
from fraudops.registry.events import ModelEvent
from fraudops.registry.store import find_version
from fraudops.runtime import Runtime, mlflow_client, open_lake
from fraudops.training.trainers import train_logreg
from tests.governance_support import model_events
from tests.registry_support import registry_client

SPEC = "transactions30"


def _model(settings: Settings, seed: int, spec: str = SPEC) -> ScoringModel:
    names = settings.feature_spec(spec).feature_names
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, len(names)))
    y = (X[:, 0] + rng.normal(size=600) > 1.5).astype(int)
    return train_logreg(
        X, y, params=LogRegParams(smote=False), seed=seed, feature_names=names, spec_name=spec
    ).with_threshold(0.3 + seed / 100)


def _register(
    settings: Settings, seed: int, tmp_path: Path, spec: str = SPEC, *, old_layout: bool = False
) -> str:
    """A run with a model directory and a registered version of it, as the pipeline leaves it
    (an MLflow Model), or as versions registered before MLflow Models were (``old_layout``)."""
    client = mlflow_client(settings)
    run = client.create_run(
        experiment_id(client, settings, settings.mlflow.training_experiment),
        tags={"spec": spec, "trainer": "logreg"},
    )
    model = _model(settings, seed, spec)
    directory = tmp_path / f"m{seed}" / registry.MODEL_ARTIFACT_PATH
    if old_layout:
        model.save(directory)  # model.json + logreg.json, nothing else
    else:
        save_model(model, directory, settings.feature_spec(spec))
    client.log_artifacts(run.info.run_id, str(tmp_path / f"m{seed}"))
    client.set_terminated(run.info.run_id)
    mv = registry.register_version(
        client,
        settings.registered_model_name(spec),
        run_id=run.info.run_id,
        spec_name=spec,
        tags={"trainer": "logreg", "roc_auc": "0.9", "pr_auc": str(0.5 + seed / 100)},
        description="test",
    )
    return str(mv.version)


def promote(settings: Settings, version: str, *, reason: str) -> dict[str, Any]:
    with Runtime(settings) as runtime:
        return governance.promote(runtime, version, actor="test", reason=reason).to_dict()


def rollback(settings: Settings, *, reason: str) -> dict[str, Any]:
    with Runtime(settings) as runtime:
        return governance.rollback(runtime, actor="test", reason=reason).to_dict()


@pytest.fixture
def lake_settings(settings: Settings) -> Settings:
    with Lake.open(settings, SPEC) as lake:
        lake.init()
    return settings


def test_promote_and_roll_back_through_the_history(lake_settings: Settings, tmp_path: Path) -> None:
    settings = lake_settings
    versions = [_register(settings, seed, tmp_path) for seed in (1, 2, 3)]
    assert versions == ["1", "2", "3"]
    assert registry.champion(mlflow_client(settings), settings) is None
    for version in versions:
        event = promote(settings, version, reason=f"ship v{version}")
        assert event["event_type"] == "manual_promote" and event["champion_after"] == version
    assert registry.champion(mlflow_client(settings), settings)["version"] == "3"  # type: ignore[index]

    back = rollback(settings, reason="v3 misbehaves")
    assert (back["champion_before"], back["champion_after"]) == ("3", "2")
    assert rollback(settings, reason="v2 too")["champion_after"] == "1"
    with pytest.raises(FraudopsError, match="no previous champion"):
        rollback(settings, reason="nothing left")
    assert registry.champion(mlflow_client(settings), settings)["version"] == "1"  # type: ignore[index]

    # Promoting after a rollback starts a new reign: rolling back returns to v1, not to v2.
    promote(settings, "3", reason="fixed")
    assert rollback(settings, reason="again")["champion_after"] == "1"

    events = model_events(settings, SPEC)
    assert events["event_type"].tolist() == ["manual_promote"] * 3 + ["rollback"] * 2 + [
        "manual_promote",
        "rollback",
    ]
    assert events["reason"].tolist()[3] == "v3 misbehaves"
    assert events["trigger"].tolist()[3] == "rollback"
    assert events["champion_before"].tolist()[:3] == [None, "1", "2"]


def test_load_by_version_or_alias_matches_the_saved_model(
    lake_settings: Settings, tmp_path: Path
) -> None:
    settings = lake_settings
    _register(settings, 4, tmp_path)
    _register(settings, 5, tmp_path)
    promote(settings, "v2", reason="test")
    X = np.random.default_rng(0).normal(size=(50, 30))
    champion = registry.load_model(settings, SPEC, client=registry_client(settings))
    assert champion.version == "2" and champion.manifest.threshold == pytest.approx(0.35)
    np.testing.assert_array_equal(
        champion.model.predict_proba(X), _model(settings, 5).predict_proba(X)
    )
    first = registry.load_model(
        settings, settings.feature_spec(SPEC), "1", client=registry_client(settings)
    )
    assert first.version == "1" and first.run_id != champion.run_id
    with pytest.raises(FraudopsError, match=r"no version or alias '9' \(versions: 2, 1\)"):
        registry.load_model(settings, SPEC, "9", client=registry_client(settings))
    with pytest.raises(FraudopsError, match="no version or alias 'staging'"):
        registry.load_model(settings, SPEC, "staging", client=registry_client(settings))


def test_listing_and_showing_versions(lake_settings: Settings, tmp_path: Path) -> None:
    settings = lake_settings
    assert registry.list_versions(mlflow_client(settings), settings) == []
    _register(settings, 6, tmp_path)
    _register(settings, 7, tmp_path)
    promote(settings, "1", reason="first")
    rows = registry.list_versions(mlflow_client(settings), settings)
    assert [r["version"] for r in rows] == ["2", "1"]
    assert rows[1]["aliases"] == ["champion"] and rows[0]["aliases"] == []
    assert rows[0]["pr_auc"] == pytest.approx(0.57) and rows[0]["trainer"] == "logreg"
    shown = registry.show_version(mlflow_client(settings), settings, "champion")
    assert shown["version"] == "1" and shown["source"].endswith("/artifacts/model")
    assert shown["artifacts"] == ["model"]
    with pytest.raises(FraudopsError, match="already the champion"):
        promote(settings, "1", reason="again")
    runs = registry.pipeline_runs(mlflow_client(settings), settings, SPEC)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"FINISHED"}
    assert registry.pipeline_runs(mlflow_client(settings), settings, "ulb") == []


def test_alias_is_put_back_when_the_event_cannot_be_recorded(
    settings: Settings, tmp_path: Path
) -> None:
    # The ulb lake was never initialised: model_events cannot be written.
    _register(settings, 8, tmp_path, spec="ulb")
    name = settings.registered_model_name("ulb")
    event = ModelEvent("ulb", name, "manual_promote", "manual", "test", "1", None, None, "1")
    with pytest.raises(LakeError, match="lake init"):
        registry.move_champion(
            settings,
            mlflow_client(settings),
            "ulb",
            "1",
            event=event,
            lake=open_lake(settings, "ulb"),
        )
    assert registry.champion(mlflow_client(settings), settings, "ulb") is None
    assert registry.list_versions(mlflow_client(settings), settings, "ulb")[0]["aliases"] == []


def test_no_registry_yet_is_explained(settings: Settings) -> None:
    with pytest.raises(FraudopsError, match="no versions registered yet"):
        registry.show_version(mlflow_client(settings), settings, "champion")
    assert registry.pipeline_runs(mlflow_client(settings), settings) == []


def test_versions_of_the_old_layout_still_load(lake_settings: Settings, tmp_path: Path) -> None:
    settings = lake_settings
    _register(settings, 11, tmp_path, old_layout=True)
    _register(settings, 12, tmp_path)
    X = np.random.default_rng(1).normal(size=(40, 30))
    old = registry.load_model(settings, SPEC, "1", client=registry_client(settings))
    assert sorted(p.name for p in Path(old.source.removeprefix("file://")).iterdir()) == [
        "logreg.json",
        "model.json",
    ]
    np.testing.assert_array_equal(old.model.predict_proba(X), _model(settings, 11).predict_proba(X))
    assert old.manifest.threshold == pytest.approx(0.41)
    new = registry.load_model(settings, SPEC, "2", client=mlflow_client(settings))
    assert (Path(new.source.removeprefix("file://")) / "MLmodel").is_file()
    np.testing.assert_array_equal(new.model.predict_proba(X), _model(settings, 12).predict_proba(X))


def test_an_alias_moved_by_mlflow_s_own_client_is_seen_at_once(
    lake_settings: Settings, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    settings = lake_settings
    name = settings.registered_model_name(SPEC)
    for seed in (13, 14, 15):
        _register(settings, seed, tmp_path)
    promote(settings, "1", reason="first")
    assert registry.load_model(settings, SPEC, client=registry_client(settings)).version == "1"
    # Another process's client, not ours: what a user of MLflow's UI or API does.
    theirs = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    X = np.random.default_rng(2).normal(size=(30, 30))
    for version, seed in (("3", 15), ("2", 14)):
        theirs.set_registered_model_alias(name, "champion", version)
        found = find_version(settings.tracking_uri, name, "champion")
        assert found is not None and found.version == version  # the direct read answered
        loaded = registry.load_model(settings, SPEC, client=registry_client(settings))
        assert loaded.version == version
        assert loaded.run_id == theirs.get_model_version(name, version).run_id
        np.testing.assert_array_equal(
            loaded.model.predict_proba(X), _model(settings, seed).predict_proba(X)
        )
    assert find_version(settings.tracking_uri, name, "v3").version == "3"  # type: ignore[union-attr]
    # A deleted version, a missing alias: the direct read does not answer, MLflow words it.
    theirs.delete_registered_model_alias(name, "champion")
    theirs.delete_model_version(name, "3")
    assert find_version(settings.tracking_uri, name, "3") is None
    assert find_version(settings.tracking_uri, name, "champion") is None
    with pytest.raises(FraudopsError, match=r"no version or alias 'champion' \(versions: 2, 1\)"):
        registry.load_model(settings, SPEC, client=registry_client(settings))
    with pytest.raises(FraudopsError, match="no version or alias '3'"):
        registry.load_model(settings, SPEC, "3", client=registry_client(settings))


def test_the_direct_read_leaves_other_stores_to_mlflow(tmp_path: Path) -> None:
    assert find_version("postgresql://u@127.0.0.1/x", "m", "champion") is None
    assert find_version("http://127.0.0.1:5000", "m", "champion") is None
    assert find_version(f"sqlite:///{tmp_path / 'none.db'}", "m", "champion") is None
    not_mlflow = tmp_path / "other.db"
    not_mlflow.write_bytes(b"")  # an empty SQLite file: no MLflow tables
    assert find_version(f"sqlite:///{not_mlflow}", "m", "champion") is None


def test_mlflow_pyfunc_loads_the_champion_to_our_probabilities(
    lake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    settings = lake_settings
    _register(settings, 16, tmp_path)
    promote(settings, "1", reason="ship")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", settings.tracking_uri)
    names = settings.feature_spec(SPEC).feature_names
    frame = pd.DataFrame(np.random.default_rng(3).normal(size=(80, 30)), columns=names)
    frame = frame.astype(
        {f.name: "int64" for f in settings.feature_spec(SPEC).features if f.dtype == "int"}
    )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registered_model_name(SPEC)}@champion")
    ours = registry.load_model(
        settings, SPEC, client=registry_client(settings)
    ).model.predict_proba(frame.to_numpy(np.float64))
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(frame)), ours)
