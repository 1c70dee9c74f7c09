"""The engine interface.

An engine runs the data-parallel part of a job; everything around it (the MLflow run, the gate,
the registry, the records in the lake, alerts) is the same code for both and lives in
``fraudops.orchestration``. Each method returns the typed result the local path returns.
The factory is ``fraudops.compute.factory.open_engine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from fraudops.config import EngineName, Settings

if TYPE_CHECKING:
    from fraudops.batch.score import ScoreReport
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime
    from fraudops.spec import FeatureSpec
    from fraudops.training.outcome import Trained


class Engine(ABC):
    """One compute engine, open for the life of a command, a server or a scheduler."""

    name: ClassVar[EngineName]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def close(self) -> None: ...

    # ---- batch scoring
    @abstractmethod
    def score(
        self,
        spec: FeatureSpec,
        source: str,
        target: str,
        *,
        version: str | None = None,
        explain: bool = False,
        progress: Reporter | None = None,
    ) -> ScoreReport:
        """Score every row of ``source`` with a registered version (default: the champion) and
        write ids + probability, prediction, risk tier, model name and version to ``target``;
        a bad row or column is a ValidationError naming it, and nothing is written."""

    # ---- training
    def check_trainer(self, trainer: str) -> None:
        """Refuse, with a ConfigError, a trainer this engine cannot run (before any run opens)."""
        return None  # by default every trainer runs

    @abstractmethod
    def train(
        self,
        runtime: Runtime,
        trainer: str,
        progress: Reporter,
        retrain_as_of: datetime | None = None,
    ) -> Trained:
        """Load, split by time, build features, train ``trainer``, choose the threshold,
        evaluate and score the champion on the same holdout (everything before the gate);
        with ``retrain_as_of`` on the retrain's data (training/retrain_data.py)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
