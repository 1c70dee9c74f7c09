"""fraudops.models.compiled: the compiled forest gives XGBoost's probabilities, is built once per
model and machine and then loaded from the cache, and stands aside (None, one log line) when it
cannot be built."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from fraudops.config import XGBoostParams
from fraudops.models.compiled import (
    CompiledForest,
    Unsupported,
    cache_path,
    compiled_predictor,
    forest_tables,
)
from fraudops.models.mlflow_model import save_model
from fraudops.models.portable import XGBoostModel, load_model_dir
from fraudops.training.trainers import train_xgboost
from tests.unit.test_models_portable import NAMES, slices  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


@pytest.fixture(scope="module")
def deep(slices: dict, tmp_path_factory: pytest.TempPathFactory) -> XGBoostModel:  # noqa: F811
    """A depth-6 forest loaded as `fraudops score` loads it (from the saved bytes)."""
    (X, y), (Xv, yv) = slices["train"], slices["validation"]
    params = XGBoostParams(n_estimators=120, max_depth=6, early_stopping_rounds=30, n_jobs=1)
    trained = train_xgboost(
        X, y, Xv, yv, params=params, seed=1, feature_names=NAMES, spec_name="small"
    )
    directory = tmp_path_factory.mktemp("model") / "model"
    save_model(trained, directory)
    model = load_model_dir(directory)
    assert isinstance(model, XGBoostModel)
    return model


def _built(model: XGBoostModel, cache: Path) -> CompiledForest:
    forest = compiled_predictor(model, cache, "fraudops-small", "3")
    assert forest is not None
    return forest


def test_compiled_probabilities_equal_xgboost_s(
    deep: XGBoostModel,
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    forest = _built(deep, tmp_path)
    X = slices["holdout"][0]
    expected = deep.predict_proba(X)
    assert forest.num_features == X.shape[1] and forest.num_trees > 1
    # Row-major and column-major, float64 and float32, a row slice of a column-major matrix.
    for variant in (X, X.astype(np.float32), np.asfortranarray(X.astype(np.float32))):
        np.testing.assert_allclose(forest.predict(variant), expected, rtol=0, atol=1e-6)
    columns = np.asfortranarray(X.astype(np.float32))
    np.testing.assert_allclose(forest.predict(columns[7:300]), expected[7:300], rtol=0, atol=1e-6)
    # Enough rows to be split over threads, and a single row.
    many = np.tile(X, (80_000 // len(X) + 1, 1))
    np.testing.assert_allclose(
        forest.predict(many), np.tile(expected, 80_000 // len(X) + 1), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(forest.predict(X[:1]), expected[:1], rtol=0, atol=1e-6)
    assert forest.predict(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match=r"expected \(rows, 5\)"):
        forest.predict(X[:, :4])


def test_values_at_the_thresholds_and_missing_values_score_as_in_xgboost(
    deep: XGBoostModel, tmp_path: Path
) -> None:
    forest = _built(deep, tmp_path)
    tables = forest_tables(deep.model_json())
    rng = np.random.default_rng(5)
    X = np.empty((5000, tables.features), dtype=np.float32)
    for f in range(tables.features):
        cuts = tables.cuts[f][np.isfinite(tables.cuts[f])]
        values = np.concatenate([cuts, np.nextafter(cuts, np.float32(np.inf)), [-np.inf, np.inf]])
        X[:, f] = rng.choice(values.astype(np.float32), size=len(X))
    np.testing.assert_allclose(forest.predict(X), deep.predict_proba(X), rtol=0, atol=1e-6)
    X[::9, 2] = np.nan  # XGBoost's default branches: such a matrix is scored by XGBoost
    np.testing.assert_array_equal(forest.predict(X), deep.predict_proba(X))


def test_a_model_scores_through_its_compiled_forest(deep: XGBoostModel, tmp_path: Path) -> None:
    forest = _built(deep, tmp_path)
    fast = deep.with_predictor(forest).with_threshold(0.2)
    assert fast.predictor is forest and fast.manifest.threshold == 0.2
    assert deep.predictor is None  # the original is untouched
    X = np.random.default_rng(1).normal(size=(64, 5))
    np.testing.assert_allclose(fast.predict_proba(X), deep.predict_proba(X), rtol=0, atol=1e-6)


def test_the_library_is_built_once_then_loaded_from_the_cache(
    deep: XGBoostModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fraudops.models.compiled")
    first = _built(deep, tmp_path)
    path = cache_path(deep, tmp_path, "fraudops-small", "3")
    assert first.path == path and path.is_file()
    assert path.parent == tmp_path / "compiled" / "fraudops-small" / "3"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    built_at = path.stat().st_mtime_ns
    assert sum("compiled fraudops-small v3" in r.getMessage() for r in caplog.records) == 1
    second = _built(deep, tmp_path)
    assert second.path == path and path.stat().st_mtime_ns == built_at
    assert sum("compiled fraudops-small v3" in r.getMessage() for r in caplog.records) == 1
    # Another version of the same name has its own entry.
    assert cache_path(deep, tmp_path, "fraudops-small", "4") != path


def test_a_damaged_library_is_built_again(deep: XGBoostModel, tmp_path: Path) -> None:
    path = cache_path(deep, tmp_path, "fraudops-small", "3")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a library")  # say, a disk that filled up under another tool
    forest = _built(deep, tmp_path)
    assert forest.path == path and path.stat().st_size > 1000


@pytest.mark.parametrize(
    ("compiler", "why"),
    [("/nonexistent/cc", "no C compiler '/nonexistent/cc'"), ("false", "the C compiler failed")],
)
def test_without_a_working_compiler_it_steps_aside_with_one_log_line(
    deep: XGBoostModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    compiler: str,
    why: str,
) -> None:
    monkeypatch.setenv("CC", compiler)
    with caplog.at_level(logging.INFO, logger="fraudops.models.compiled"):
        assert compiled_predictor(deep, tmp_path, "fraudops-small", "3") is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and why in messages[0], messages
    assert "scored with XGBoost's predictor" in messages[0]
    assert not list((tmp_path / "compiled").rglob("*.so"))  # nothing half-built is kept


def test_models_the_kernel_does_not_cover_are_refused(deep: XGBoostModel) -> None:
    raw = json.loads(deep.model_json())
    raw["learner"]["objective"]["name"] = "reg:squarederror"
    with pytest.raises(Unsupported, match="reg:squarederror"):
        forest_tables(json.dumps(raw).encode())
    raw = json.loads(deep.model_json())
    tree = raw["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["split_type"][0] = 1
    with pytest.raises(Unsupported, match="categorical"):
        forest_tables(json.dumps(raw).encode())
