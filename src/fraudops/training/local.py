"""Training's primitives on the local engine: the lake's rows in this process, as pandas
frames and NumPy matrices — load, validate, split by time, build features, fit, predict.

The sequence that calls them (threshold, evaluation, champion comparison, gate, MLflow run,
registry, model_events) is training/pipeline.py, the same for the Dask backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.errors import ValidationError
from fraudops.lake.catalog import Lake
from fraudops.models.portable import ScoringModel
from fraudops.models.profile import ReferenceProfile, build_profile
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.training.derived_rows import training_columns, with_derived_features
from fraudops.training.evaluation import SliceContext, context_of
from fraudops.training.features import feature_matrix, label_vector, validate_training_frame
from fraudops.training.outcome import SplitStats
from fraudops.training.retrain_data import RetrainSummary, build_retrain_data
from fraudops.training.split import TimeSplit, time_split
from fraudops.training.trainers import train_model


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


class LocalTraining:
    """The local backend (training/backend.py's ``TrainingBackend``)."""

    def __init__(self, settings: Settings, spec: FeatureSpec, lake: Lake) -> None:
        self.settings, self.spec, self.lake = settings, spec, lake

    def check_trainer(self, trainer: str) -> None:
        return None  # every trainer runs here

    def split(self, retrain_as_of: datetime | None, progress: Reporter) -> LocalSplit:
        settings, spec, cfg = self.settings, self.spec, self.settings.training
        if retrain_as_of is not None:
            with progress.step("Loading lake rows and labelled predictions"):
                data = build_retrain_data(settings, spec, self.lake, as_of=retrain_as_of)
            return LocalSplit(settings, spec, data.split, data.train_weight, data.summary)
        frame = load_training_frame(spec, self.lake, progress)
        if spec.derived:
            with progress.step("Deriving features"):
                frame = with_derived_features(frame, spec)
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
        return LocalSplit(settings, spec, split, None, None)


@dataclass(frozen=True)
class LocalSplit:
    settings: Settings
    spec: FeatureSpec
    split: TimeSplit
    weight: np.ndarray | None  # a retrain's training-row weights
    retrain: RetrainSummary | None

    @property
    def stats(self) -> SplitStats:
        return self.split.stats(self.spec.label_column)

    def features(self) -> LocalMatrices:
        slices = self.split.slices()
        names = self.spec.feature_names
        return LocalMatrices(
            self,
            {name: feature_matrix(part, names) for name, part in slices.items()},
            {name: label_vector(part, self.spec) for name, part in slices.items()},
        )


@dataclass(frozen=True)
class LocalMatrices:
    source: LocalSplit
    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]

    def fit(self, trainer: str) -> ScoringModel:
        s, X, y = self.source, self.X, self.y
        return train_model(
            trainer,
            s.settings.training,
            s.spec,
            X["train"],
            y["train"],
            X["validation"],
            y["validation"],
            sample_weight=s.weight,
        )

    def predict(self, model: ScoringModel, name: str) -> tuple[np.ndarray, np.ndarray]:
        return model.predict_proba(self.X[name]), self.y[name]

    def context(self, name: str) -> SliceContext:
        return context_of(self.source.split.slices()[name], self.source.spec)

    def champion_scores(self, model: ScoringModel, features: Sequence[str]) -> np.ndarray:
        return model.predict_proba(feature_matrix(self.source.split.holdout, features))

    def reference(self, name: str) -> MatrixReference:
        return MatrixReference(self.X[name])


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
