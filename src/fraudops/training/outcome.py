"""What training's modelling steps produce (training/pipeline.py's ``fit_and_evaluate``): the
model and its figures, before the gate.

The local backend trains over in-memory frames, the Dask backend over partitions; the result is
one ``Trained``. Nothing here holds the training rows themselves: the split is described by its
per-slice counts and time ranges (``SplitStats``), and the drift reference by something that
builds the reference profile (``Reference``) — a matrix locally, merged partition summaries on
Dask. Only the validation and holdout (score, label) pairs are arrays, which every engine gathers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from fraudops.models.portable import ScoringModel
    from fraudops.models.profile import ReferenceProfile
    from fraudops.spec import FeatureSpec
    from fraudops.training.evaluation import Evaluation
    from fraudops.training.retrain_data import RetrainSummary
    from fraudops.training.threshold import ThresholdChoice

SLICES = ("train", "validation", "holdout")


@dataclass(frozen=True)
class SliceStats:
    rows: int
    positives: int
    start: Any  # the first and last timestamp of the slice, as the column holds them
    end: Any


@dataclass(frozen=True)
class SplitStats:
    """Rows, frauds and time range of each slice: what the run records of the split."""

    slices: dict[str, SliceStats]

    def summary(self) -> dict[str, Any]:
        """Rows and time range per slice, flat, for MLflow params and the result."""
        out: dict[str, Any] = {}
        for name in SLICES:
            s = self.slices[name]
            out[f"{name}_rows"] = s.rows
            out[f"{name}_start"] = str(s.start)
            out[f"{name}_end"] = str(s.end)
        return out

    def class_counts(self) -> dict[str, tuple[int, int]]:
        """(legitimate, fraud) rows per slice, for the charts."""
        return {
            n: (self.slices[n].rows - self.slices[n].positives, self.slices[n].positives)
            for n in SLICES
        }


class Reference(Protocol):
    """The rows the drift reference profile describes, in whatever form the engine has them
    (training.local.MatrixReference, training.dask_profile.SummaryReference)."""

    @property
    def rows(self) -> int: ...

    def profile(
        self,
        spec: FeatureSpec,
        *,
        scores: np.ndarray,
        baseline_metrics: dict[str, float],
        threshold: float,
        bins: int,
    ) -> ReferenceProfile: ...


@dataclass
class Trained:
    """Everything the modelling steps produce, before the gate and before anything is recorded."""

    model: ScoringModel
    split: SplitStats
    reference: Reference  # the rows the drift reference profile describes
    holdout_labels: np.ndarray
    holdout_scores: np.ndarray
    validation_scores: np.ndarray
    choice: ThresholdChoice
    holdout: Evaluation
    validation: Evaluation
    champion_before: str | None
    champion_holdout: Evaluation | None  # the champion on the same holdout
    retrain: RetrainSummary | None
