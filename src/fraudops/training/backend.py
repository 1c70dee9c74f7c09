"""What training's sequence (training/pipeline.py) asks of an engine: the primitives over the
rows, wherever they are held.

The local backend (training/local.py) holds the slices as in-memory frames and matrices; the
Dask backend (training/dask.py) as Dask dataframes, scanned partition by partition. The
pipeline calls, in order: ``split`` (load or scan, validate, cut by time), ``features`` (the
model inputs of each slice), then on those ``fit``, ``predict`` (gathered (score, label)
pairs), ``champion_scores`` and ``reference``. The threshold, the evaluation, the champion
comparison, the gate and everything recorded stay in the pipeline, once for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from fraudops.errors import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.compute import Engine
    from fraudops.compute.dask_engine import DaskEngine
    from fraudops.config import Settings
    from fraudops.lake.catalog import Lake
    from fraudops.models.portable import ScoringModel
    from fraudops.progress import Reporter
    from fraudops.spec import FeatureSpec
    from fraudops.training.evaluation import SliceContext
    from fraudops.training.outcome import Reference, SplitStats
    from fraudops.training.retrain_data import RetrainSummary


@dataclass(frozen=True)
class TrainingContext:
    """The collaborators a training run uses (``Runtime.training_context()`` builds one)."""

    settings: Settings
    spec: FeatureSpec
    lake: Lake
    mlflow: MlflowClient
    engine: Engine
    actor: str


class Matrices(Protocol):
    """The model inputs of the three slices (train, validation, holdout)."""

    def fit(self, trainer: str) -> ScoringModel:
        """``trainer`` fitted on train, early-stopped on validation."""

    def predict(self, model: ScoringModel, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``name``'s scores by ``model`` and its labels, gathered (float64, int8)."""

    def context(self, name: str) -> SliceContext:
        """The slice's amounts, days and cards, in the order of ``predict``'s rows."""
        ...

    def champion_scores(self, model: ScoringModel, features: Sequence[str]) -> np.ndarray:
        """The holdout's raw rows scored by another model (its own feature list)."""

    def reference(self, name: str) -> Reference:
        """What builds the drift reference profile of slice ``name``."""


class Split(Protocol):
    """The three time-ordered slices of raw rows, before any feature is built."""

    @property
    def stats(self) -> SplitStats: ...

    @property
    def retrain(self) -> RetrainSummary | None: ...

    def features(self) -> Matrices: ...


class TrainingBackend(Protocol):
    """One engine's training primitives."""

    def check_trainer(self, trainer: str) -> None:
        """Refuse, with a ConfigError, a trainer this engine cannot run (before any run opens)."""

    def split(self, retrain_as_of: datetime | None, progress: Reporter) -> Split:
        """The lake's rows cut by time; with ``retrain_as_of`` a retrain's data
        (training/retrain_data.py)."""


def open_backend(ctx: TrainingContext) -> TrainingBackend:
    """The backend of the context's engine."""
    if ctx.engine.name == "local":
        from fraudops.training.local import LocalTraining

        return LocalTraining(ctx.settings, ctx.spec, ctx.lake)
    if ctx.engine.name == "dask":
        from fraudops.training.dask import DaskTraining

        # open_engine builds a DaskEngine for "dask" (typed only: no import of the engine here)
        return DaskTraining(cast("DaskEngine", ctx.engine), ctx.settings, ctx.spec, ctx.lake)
    raise ConfigError(f"no training backend for compute engine {ctx.engine.name!r}")
