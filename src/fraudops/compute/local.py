"""The local engine: a job in this process, over pandas and NumPy (fraudops' default)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fraudops.compute.base import Engine

if TYPE_CHECKING:
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime
    from fraudops.training.outcome import Trained


class LocalEngine(Engine):
    name = "local"

    def close(self) -> None:
        pass

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
