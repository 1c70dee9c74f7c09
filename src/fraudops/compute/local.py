"""The local engine: a job in this process, over pandas and NumPy (fraudops' default)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fraudops.compute.base import Engine

if TYPE_CHECKING:
    from fraudops.batch.score import ScoreReport
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime
    from fraudops.spec import FeatureSpec
    from fraudops.training.outcome import Trained


class LocalEngine(Engine):
    name = "local"

    def close(self) -> None:
        pass

    # ---- batch scoring
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
        """One CSV or Parquet file, in chunks, in this process (``fraudops.batch.score``)."""
        from fraudops.batch.score import score_file
        from fraudops.compute.score_sources import check_local_source

        check_local_source(source, target)
        return score_file(
            self.settings,
            source,
            target,
            spec_name=spec.name,
            version=version,
            explain=explain,
            progress=progress,
        )

    # ---- training
    def train(
        self,
        runtime: Runtime,
        trainer: str,
        progress: Reporter,
        retrain_as_of: datetime | None = None,
    ) -> Trained:
        from fraudops.compute.local_training import train_local

        return train_local(runtime, trainer, progress, retrain_as_of)
