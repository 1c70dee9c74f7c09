"""Training on the local engine: the lake's rows in this process — load, validate, split by time,
build features, train, choose the threshold, evaluate, score the champion on the same holdout.

This is the modelling half of the training pipeline as it always ran; the gate, the MLflow run,
the registry and model_events stay in ``fraudops.orchestration.training_pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudops import registry
from fraudops.errors import ValidationError
from fraudops.lake.catalog import Lake
from fraudops.monitoring.profile import ReferenceProfile, build_profile
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.training.evaluation import Evaluation, evaluate
from fraudops.training.features import feature_matrix, label_vector, validate_training_frame
from fraudops.training.outcome import Trained
from fraudops.training.retrain_data import RetrainSummary, build_retrain_data
from fraudops.training.split import time_split
from fraudops.training.threshold import choose_threshold
from fraudops.training.trainers import train_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.config import Settings
    from fraudops.runtime import Runtime


@dataclass(frozen=True)
class MatrixReference:
    """An in-memory feature matrix: ``build_profile`` over it, as always."""

    X: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    def profile(
        self,
        spec: FeatureSpec,
        *,
        scores: np.ndarray,
        baseline_metrics: dict[str, float],
        threshold: float,
        bins: int,
    ) -> ReferenceProfile:
        return build_profile(
            self.X,
            spec,
            scores=scores,
            baseline_metrics=baseline_metrics,
            threshold=threshold,
            bins=bins,
        )


def train_local(
    runtime: Runtime, trainer: str, progress: Reporter, retrain_as_of: datetime | None = None
) -> Trained:
    settings, spec, lake = runtime.settings, runtime.spec, runtime.lake()
    cfg = settings.training
    weight: np.ndarray | None = None
    retrain: RetrainSummary | None = None
    if retrain_as_of is not None:
        with progress.step("Loading lake rows and labelled predictions"):
            data = build_retrain_data(settings, spec, lake, as_of=retrain_as_of)
        split, weight, retrain = data.split, data.train_weight, data.summary
    else:
        frame = load_training_frame(spec, lake, progress)
        with progress.step("Validating"):
            validate_training_frame(frame, spec)
        with progress.step("Splitting by time"):
            split = time_split(
                frame,
                spec,
                validation_fraction=cfg.validation_fraction,
                holdout_fraction=cfg.holdout_fraction,
            )
            del frame
    with progress.step("Building features"):
        slices = split.slices()
        X = {name: feature_matrix(part, spec.feature_names) for name, part in slices.items()}
        y = {name: label_vector(part, spec) for name, part in slices.items()}
    with progress.step(f"Training {trainer}"):
        model = train_model(
            trainer,
            cfg,
            spec,
            X["train"],
            y["train"],
            X["validation"],
            y["validation"],
            sample_weight=weight,
        )
    with progress.step("Evaluating"):
        val_scores = model.predict_proba(X["validation"])
        choice = choose_threshold(
            y["validation"],
            val_scores,
            cfg.threshold_policy,
            target_recall=cfg.target_recall,
            cost_fn=cfg.cost_fn,
            cost_fp=cfg.cost_fp,
        )
        model = model.with_threshold(choice.threshold)
        hold_scores = model.predict_proba(X["holdout"])
        costs = {"cost_fn": cfg.cost_fn, "cost_fp": cfg.cost_fp}
        holdout = evaluate(y["holdout"], hold_scores, choice.threshold, **costs)
        validation = evaluate(y["validation"], val_scores, choice.threshold, **costs)
    with progress.step("Comparing with the champion"):
        before, champion_metrics = _champion_on(
            settings, spec, runtime.mlflow, split.holdout, y["holdout"]
        )
    return Trained(
        model,
        split.stats(spec.label_column),
        # A retrain's reference is the recent traffic it was judged on: once a retrain has
        # seen a drift, the drifted world is the new normal (a mix with the old lake rows would
        # keep every later run alarmed). A first training's reference is its training rows.
        MatrixReference(X["holdout"] if retrain is not None else X["train"]),
        y["holdout"],
        hold_scores,
        val_scores,
        choice,
        holdout,
        validation,
        before,
        champion_metrics,
        retrain,
    )


def training_columns(spec: FeatureSpec) -> list[str]:
    """The transactions columns a training reads (the spec's, less the customer, plus the id)."""
    columns = list(dict.fromkeys([c for c in spec.required_columns if c != spec.customer_column]))
    id_column = spec.id_column or "transaction_id"
    if id_column not in columns:
        columns.append(id_column)
    return columns


def empty_lake(spec: FeatureSpec) -> ValidationError:
    return ValidationError(
        f"lake table {spec.name}.transactions is empty: load data first "
        f"(`fraudops lake load FILE --spec {spec.name}`)"
    )


def load_training_frame(spec: FeatureSpec, lake: Lake, progress: Reporter) -> pd.DataFrame:
    with progress.step("Loading transactions"):
        frame = lake.read_frame("transactions", columns=training_columns(spec))
    if frame.empty:
        raise empty_lake(spec)
    return frame


def _champion_on(
    settings: Settings,
    spec: FeatureSpec,
    client: MlflowClient,
    holdout: pd.DataFrame,
    labels: np.ndarray,
) -> tuple[str | None, Evaluation | None]:
    """The champion's version and its metrics on the challenger's holdout, at its own threshold."""
    name = settings.registered_model_name(spec.name)
    version = registry.champion_version(client, settings, name)
    if version is None:
        return None, None
    champion = registry.load_model(settings, spec, version, client=client)
    X = feature_matrix(holdout, champion.manifest.feature_names)
    scores = champion.model.predict_proba(X)
    metrics = evaluate(
        labels,
        scores,
        champion.manifest.threshold,
        cost_fn=settings.training.cost_fn,
        cost_fp=settings.training.cost_fp,
    )
    return version, metrics
