"""The two trainers: XGBoost (default, class weight ``scale_pos_weight``) and seed 003's logistic
regression (standard scaling, one-hot quantile bins of the amount, SMOTE oversampling).

Each takes the train and validation matrices and returns a ScoringModel with threshold 0.5;
the pipeline picks the real threshold on the validation slice afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, get_args

import numpy as np

from fraudops.config import LogRegParams, TrainerName, TrainingSettings, XGBoostParams
from fraudops.errors import ConfigError
from fraudops.models.portable import (
    BinnedFeature,
    LogRegModel,
    LogRegParameters,
    ModelManifest,
    ScoringModel,
    XGBoostModel,
)
from fraudops.spec import FeatureSpec

TRAINERS: tuple[str, ...] = get_args(TrainerName)


def train_model(
    trainer: str,
    training: TrainingSettings,
    spec: FeatureSpec,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
) -> ScoringModel:
    """``sample_weight`` (one per training row) weighs rows, e.g. recent labelled predictions
    over older lake rows in a retrain; None: every row counts once."""
    if trainer == "xgboost":
        return train_xgboost(
            X_train,
            y_train,
            X_val,
            y_val,
            params=training.xgboost,
            seed=training.seed,
            feature_names=spec.feature_names,
            spec_name=spec.name,
            sample_weight=sample_weight,
        )
    if trainer == "logreg":
        return train_logreg(
            X_train,
            y_train,
            params=training.logreg,
            seed=training.seed,
            feature_names=spec.feature_names,
            spec_name=spec.name,
            default_binned=[spec.amount_column] if spec.amount_column else [],
            sample_weight=sample_weight,
        )
    raise ConfigError(f"unknown trainer {trainer!r}: use one of {', '.join(TRAINERS)}")


def trainer_params(trainer: str, training: TrainingSettings) -> dict[str, Any]:
    """The configured hyper-parameters of ``trainer`` (MLflow params, the manifest)."""
    section = training.xgboost if trainer == "xgboost" else training.logreg
    return section.model_dump()


# ---- XGBoost ---------------------------------------------------------------------------------


def train_xgboost(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    params: XGBoostParams,
    seed: int,
    feature_names: Sequence[str],
    spec_name: str,
    sample_weight: np.ndarray | None = None,
) -> XGBoostModel:
    import xgboost as xgb

    if sample_weight is None:
        positives, total = float(np.sum(y_train)), float(len(y_train))
    else:  # the class balance as the weighted rows see it
        positives = float(np.sum(sample_weight[np.asarray(y_train) == 1]))
        total = float(np.sum(sample_weight))
    booster_params = xgboost_params(params, seed, positives=positives, total=total)
    # QuantileDMatrix bins once up front: less memory and faster than a DMatrix for `hist`.
    dtrain = xgb.QuantileDMatrix(X_train, label=y_train, weight=sample_weight)
    dval = xgb.QuantileDMatrix(X_val, label=y_val, ref=dtrain)
    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=params.n_estimators,
        evals=[(dval, "validation")],
        verbose_eval=False,
        early_stopping_rounds=params.early_stopping_rounds or None,
    )
    return xgboost_model(booster, booster_params, params, seed, feature_names, spec_name)


def xgboost_params(
    params: XGBoostParams, seed: int, *, positives: float, total: float
) -> dict[str, Any]:
    """The booster parameters of a training whose (weighted) rows hold ``positives`` frauds of
    ``total``: shared by the local and the Dask trainer."""
    scale_pos_weight = params.scale_pos_weight or (total - positives) / max(positives, 1.0)
    return {
        "objective": "binary:logistic",
        # Early stopping watches log loss, not PR-AUC: with a few dozen fraud rows in the
        # validation slice a rank metric is noisy and can stop after 5 trees (measured on 20K
        # synthetic rows); log loss is smooth and matched or beat PR-AUC on the 284K sets.
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "scale_pos_weight": scale_pos_weight,
        "nthread": params.n_jobs or os.cpu_count() or 1,
        "seed": seed,
    }


def xgboost_model(
    booster: Any,
    booster_params: dict[str, Any],
    params: XGBoostParams,
    seed: int,
    feature_names: Sequence[str],
    spec_name: str,
) -> XGBoostModel:
    """The trained booster (cut to its best iteration under early stopping) as the portable
    model with its manifest."""
    rounds = booster.num_boosted_rounds()
    if params.early_stopping_rounds:
        rounds = booster.best_iteration + 1
        booster = booster[:rounds]  # keep only the best trees: the saved model is what we scored
    manifest = ModelManifest(
        kind=XGBoostModel.kind,
        feature_names=list(feature_names),
        threshold=0.5,
        spec=spec_name,
        params={
            **params.model_dump(),
            "scale_pos_weight": booster_params["scale_pos_weight"],
            "boosted_rounds": rounds,
            "seed": seed,
        },
    )
    return XGBoostModel(booster, manifest)


# ---- logistic regression (seed 003) ------------------------------------------------------------


def train_logreg(
    X_train: np.ndarray,
    y_train: np.ndarray,
    *,
    params: LogRegParams,
    seed: int,
    feature_names: Sequence[str],
    spec_name: str,
    default_binned: Sequence[str] = (),
    sample_weight: np.ndarray | None = None,
) -> LogRegModel:
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X_train, dtype=np.float64)
    y = np.asarray(y_train).astype(np.int8)
    binned_names = (
        params.binned_features if params.binned_features is not None else list(default_binned)
    )
    bin_index = _binned_indices(binned_names, feature_names)
    edges = [_quantile_edges(X[:, i], params.bins) for i in bin_index]

    means = X.mean(axis=0)
    scales = X.std(axis=0)
    scales[scales == 0] = 1.0  # a constant column contributes nothing instead of dividing by 0
    scaled = (X - means) / scales
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if params.smote:
        scaled, y = _smote(scaled, y, ratio=params.smote_ratio, seed=seed)
        if weight is not None:  # SMOTE appends its synthetic rows after the originals
            weight = np.concatenate([weight, np.ones(len(y) - len(weight))])

    raw = scaled * scales + means  # bins are read on the original scale, synthetic rows too
    design = np.hstack(
        [scaled]
        + [
            _one_hot(np.searchsorted(e, raw[:, i], side="right"), len(e) + 1)
            for i, e in zip(bin_index, edges, strict=True)
        ]
    )
    fitted = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
    fitted.fit(design, y, sample_weight=weight)

    coef = fitted.coef_[0]
    n = len(feature_names)
    binned, offset = [], n
    for i, e in zip(bin_index, edges, strict=True):
        binned.append(
            BinnedFeature(index=i, edges=e, coef=coef[offset : offset + len(e) + 1].copy())
        )
        offset += len(e) + 1
    parameters = LogRegParameters(
        means=means,
        scales=scales,
        coef=coef[:n].copy(),
        intercept=float(fitted.intercept_[0]),
        binned=binned,
    )
    manifest = ModelManifest(
        kind=LogRegModel.kind,
        feature_names=list(feature_names),
        threshold=0.5,
        spec=spec_name,
        params={
            **params.model_dump(),
            "binned_features": binned_names,
            "seed": seed,
            "train_rows_after_smote": len(y),
        },
    )
    return LogRegModel(parameters, manifest)


def _binned_indices(names: Sequence[str], feature_names: Sequence[str]) -> list[int]:
    unknown = [n for n in names if n not in feature_names]
    if unknown:
        raise ConfigError(f"training.logreg.binned_features {unknown} are not features of the spec")
    return [list(feature_names).index(n) for n in names]


def _quantile_edges(column: np.ndarray, bins: int) -> np.ndarray:
    inner = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner)


def _one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _smote(
    X: np.ndarray, y: np.ndarray, *, ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import SMOTE

    positives = int(y.sum())
    negatives = len(y) - positives
    if positives < 2 or positives / negatives >= ratio:
        return X, y  # nothing to interpolate between, or already balanced enough
    sampler = SMOTE(sampling_strategy=ratio, k_neighbors=min(5, positives - 1), random_state=seed)
    X_res, y_res = sampler.fit_resample(X, y)
    return np.asarray(X_res), np.asarray(y_res)
