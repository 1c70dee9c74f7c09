from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from fraudops.config import LogRegParams, XGBoostParams
from fraudops.errors import FraudopsError
from fraudops.models.portable import LogRegModel, XGBoostModel, load_model_dir
from fraudops.training.features import feature_matrix, label_vector
from fraudops.training.split import time_split
from fraudops.training.trainers import train_logreg, train_xgboost
from tests.unit.training_fixtures import SMALL_SPEC, make_frame

NAMES = SMALL_SPEC.feature_names


@pytest.fixture(scope="module")
def slices() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    split = time_split(
        make_frame(4000, seed=11), SMALL_SPEC, validation_fraction=0.15, holdout_fraction=0.25
    )
    return {
        name: (feature_matrix(part, NAMES), label_vector(part, SMALL_SPEC))
        for name, part in split.slices().items()
    }


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to unpickle during a test fails it: models must load without pickle."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _xgb(slices: dict, **overrides: object) -> XGBoostModel:
    (X, y), (Xv, yv) = slices["train"], slices["validation"]
    params = XGBoostParams(
        n_estimators=60, max_depth=3, early_stopping_rounds=10, n_jobs=1, **overrides
    )
    return train_xgboost(
        X, y, Xv, yv, params=params, seed=1, feature_names=NAMES, spec_name="small"
    )


def _logreg(slices: dict, **overrides: object) -> LogRegModel:
    X, y = slices["train"]
    params = LogRegParams(**overrides)
    return train_logreg(
        X,
        y,
        params=params,
        seed=3,
        feature_names=NAMES,
        spec_name="small",
        default_binned=["amount"],
    )


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_xgboost_round_trip_is_identical(slices: dict, tmp_path: Path, fmt: str) -> None:
    model = _xgb(slices, model_format=fmt).with_threshold(0.37)
    X_hold = slices["holdout"][0]
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [f"booster.{fmt}", "model.json"]
    loaded = load_model_dir(tmp_path / "m")
    assert isinstance(loaded, XGBoostModel)
    np.testing.assert_array_equal(loaded.predict_proba(X_hold), model.predict_proba(X_hold))
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["kind"] == "xgboost" and manifest["threshold"] == 0.37
    assert manifest["feature_names"] == NAMES and manifest["spec"] == "small"
    assert manifest["params"]["scale_pos_weight"] > 5  # negatives / positives by default


def test_xgboost_learns_and_keeps_only_the_best_trees(slices: dict) -> None:
    from sklearn.metrics import roc_auc_score

    model = _xgb(slices)
    X_hold, y_hold = slices["holdout"]
    scores = model.predict_proba(X_hold)
    assert scores.dtype == np.float64 and ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(y_hold, scores) > 0.85
    assert model.booster.num_boosted_rounds() == model.manifest.params["boosted_rounds"] <= 60


def test_xgboost_contributions_sum_to_the_log_odds(slices: dict) -> None:
    model = _xgb(slices)
    X = slices["holdout"][0][:200]
    contribs = model.contributions(X)
    assert contribs.shape == (200, len(NAMES) + 1)
    np.testing.assert_allclose(contribs.sum(axis=1), _logit(model.predict_proba(X)), atol=1e-4)
    importance = model.feature_importance()
    assert list(importance) == NAMES
    assert max(importance, key=importance.__getitem__) in {"velocity", "amount"}


def test_logreg_round_trip_is_identical_and_plain_json(slices: dict, tmp_path: Path) -> None:
    model = _logreg(slices).with_threshold(0.8)
    X_hold = slices["holdout"][0]
    model.save(tmp_path / "lr")
    assert sorted(p.name for p in (tmp_path / "lr").iterdir()) == ["logreg.json", "model.json"]
    raw = json.loads((tmp_path / "lr" / "logreg.json").read_text())
    assert len(raw["coef"]) == len(NAMES) and raw["binned"][0]["index"] == 0
    loaded = load_model_dir(tmp_path / "lr")
    assert isinstance(loaded, LogRegModel) and loaded.manifest.threshold == 0.8
    np.testing.assert_array_equal(loaded.predict_proba(X_hold), model.predict_proba(X_hold))


def test_logreg_scores_like_its_design_and_learns(slices: dict) -> None:
    from sklearn.metrics import roc_auc_score

    model = _logreg(slices, bins=5)
    X_hold, y_hold = slices["holdout"]
    scores = model.predict_proba(X_hold)
    assert roc_auc_score(y_hold, scores) > 0.85
    contribs = model.contributions(X_hold)
    np.testing.assert_allclose(contribs.sum(axis=1), _logit(scores), rtol=1e-9)
    assert len(model.parameters.binned[0].coef) == len(model.parameters.binned[0].edges) + 1 <= 5
    # SMOTE raised the minority share of the fitted rows to the configured ratio.
    n_train = len(slices["train"][1])
    assert model.manifest.params["train_rows_after_smote"] > n_train


def test_logreg_without_smote_fits_the_rows_as_given(slices: dict) -> None:
    model = _logreg(slices, smote=False, binned_features=[])
    assert model.manifest.params["train_rows_after_smote"] == len(slices["train"][1])
    assert model.parameters.binned == []


def test_width_mismatch_and_broken_manifest_are_clear(slices: dict, tmp_path: Path) -> None:
    model = _logreg(slices)
    with pytest.raises(ValueError, match=r"expected a \(rows, 5\) matrix"):
        model.predict_proba(np.zeros((3, 4)))
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**manifest, "kind": "forest"}))
    with pytest.raises(FraudopsError, match="unknown kind 'forest'"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(FraudopsError, match="no model manifest"):
        load_model_dir(tmp_path / "nothing")
