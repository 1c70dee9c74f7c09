"""fraudops.models.mlflow_model: each model kind saved as an MLflow Model, pickle-free, which
MLflow's pyfunc and our own loader both load to the same probabilities."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml

from fraudops.models.mlflow_model import save_model
from fraudops.models.portable import LogRegModel, XGBoostModel, load_model_dir
from tests.unit.test_models_portable import NAMES, _logreg, _xgb, slices  # noqa: F401
from tests.unit.training_fixtures import SMALL_SPEC, make_frame

INTS = [f.name for f in SMALL_SPEC.features if f.dtype == "int"]


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any unpickling (MLflow's cloudpickle included) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _frame(rows: int = 700) -> pd.DataFrame:
    """Fresh rows as a user holds them: the lake's types, columns in another order, extras."""
    frame = make_frame(rows, seed=29)
    return frame[["txn_id", *reversed(NAMES), "label"]]


def _ours(model: XGBoostModel | LogRegModel, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame[NAMES].to_numpy(dtype=np.float64))


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_xgboost_is_an_mlflow_xgboost_model_in_its_own_format(
    slices: dict,  # noqa: F811
    tmp_path: Path,
    fmt: str,
) -> None:
    model = _xgb(slices, model_format=fmt).with_threshold(0.41)
    directory = save_model(model, tmp_path / "model", SMALL_SPEC)

    files = sorted(p.name for p in directory.iterdir())
    assert f"model.{fmt}" in files and "MLmodel" in files and "fraudops.json" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"]["model_format"] == fmt
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.xgboost"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == NAMES
    assert {c["name"] for c in inputs if c["type"] == "long"} == set(INTS)
    assert mlmodel["metadata"]["fraudops_threshold"] == pytest.approx(0.41)

    frame = _frame()
    ours = load_model_dir(directory)
    assert isinstance(ours, XGBoostModel) and ours.manifest.threshold == pytest.approx(0.41)
    assert ours.manifest.files == {"booster": f"model.{fmt}"}
    np.testing.assert_array_equal(_ours(ours, frame), _ours(model, frame))
    # MLflow's own pyfunc: columns by name (reordered, extras dropped), the lake's int types.
    theirs = np.asarray(mlflow.pyfunc.load_model(str(directory)).predict(frame))
    np.testing.assert_allclose(theirs, _ours(model, frame), rtol=1e-6, atol=0)
    # Our model's importance still maps f0..fN to the manifest's names after the round trip.
    assert ours.feature_importance() == model.feature_importance()


def test_logreg_is_a_pyfunc_from_code_with_json_parameters(
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = _logreg(slices).with_threshold(0.22)
    directory = save_model(model, tmp_path / "model", SMALL_SPEC)

    assert (directory / "logreg_pyfunc.py").is_file()
    assert (directory / "artifacts" / "logreg.json").is_file()
    assert not list(directory.rglob("*.pkl"))
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert pyfunc["config"]["feature_names"] == NAMES

    frame = _frame()
    ours = load_model_dir(directory)
    assert isinstance(ours, LogRegModel) and ours.manifest.threshold == pytest.approx(0.22)
    np.testing.assert_array_equal(_ours(ours, frame), _ours(model, frame))
    theirs = np.asarray(mlflow.pyfunc.load_model(str(directory)).predict(frame))
    np.testing.assert_array_equal(theirs, _ours(model, frame))


def test_without_a_spec_every_feature_is_a_double(
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    directory = save_model(_logreg(slices), tmp_path / "model")
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    assert {c["type"] for c in json.loads(mlmodel["signature"]["inputs"])} == {"double"}
    frame = _frame(50)[NAMES].astype(np.float64)
    np.testing.assert_array_equal(
        np.asarray(mlflow.pyfunc.load_model(str(directory)).predict(frame)),
        _logreg(slices).predict_proba(frame.to_numpy()),
    )
