"""fraudops.models.xgboost_native: libxgboost's predictor without the xgboost package, giving
exactly what ``Booster.inplace_predict`` gives; a loaded model scores without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudops.errors import FraudopsError
from fraudops.models.mlflow_model import save_model
from fraudops.models.portable import XGBoostModel, load_model_dir
from fraudops.models.xgboost_native import load_native
from tests.unit.test_models_portable import _xgb, slices  # noqa: F401

SRC = Path(__file__).resolve().parents[2] / "src"


def test_native_predictions_equal_the_package_s(
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = _xgb(slices)
    model.save(tmp_path / "m")
    raw = (tmp_path / "m" / "booster.ubj").read_bytes()
    native = load_native(raw)
    assert native is not None and native.num_features == 5
    X = slices["holdout"][0]
    X[::7, 1] = np.nan  # missing values take the trees' default branches, as in XGBoost
    expected = np.asarray(model.booster.inplace_predict(X), dtype=np.float64)
    for dtype in (np.float64, np.float32):
        np.testing.assert_array_equal(native.predict(X.astype(dtype)), expected)
    np.testing.assert_array_equal(native.predict(np.asfortranarray(X)), expected)
    assert native.predict(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match=r"expected \(rows, 5\)"):
        native.predict(X[:, :4])


def test_a_loaded_model_scores_natively_and_builds_the_booster_only_when_asked(
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = _xgb(slices)
    save_model(model, tmp_path / "model")
    loaded = load_model_dir(tmp_path / "model")
    assert isinstance(loaded, XGBoostModel)
    X = slices["holdout"][0]
    native = loaded.predict_proba(X)
    np.testing.assert_array_equal(native, model.predict_proba(X))
    assert loaded.with_threshold(0.1).predict_proba(X[:5]).tolist() == native[:5].tolist()
    # Contributions need the Python Booster: built from the same bytes, nameless like ours.
    np.testing.assert_array_equal(loaded.contributions(X[:20]), model.contributions(X[:20]))
    assert loaded.booster.feature_names is None
    np.testing.assert_array_equal(loaded.predict_proba(X), native)


def test_bad_bytes_are_a_clear_error() -> None:
    with pytest.raises(FraudopsError, match="cannot load the XGBoost model"):
        load_native(b"not a model")


def test_loading_and_scoring_does_not_import_the_xgboost_package(
    slices: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = _xgb(slices)
    save_model(model, tmp_path / "model")
    X = slices["holdout"][0]
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys, numpy as np\n"
        "from fraudops.models.portable import load_model_dir\n"
        f"m = load_model_dir({str(tmp_path / 'model')!r})\n"
        f"p = m.predict_proba(np.load({str(tmp_path / 'X.npy')!r}))\n"
        "print(sorted({'xgboost', 'sklearn', 'mlflow'} & set(sys.modules)))\n"
        "print(repr(p.tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported, probabilities = done.stdout.splitlines()
    assert imported == "[]"
    assert eval(probabilities) == model.predict_proba(X).tolist()
