"""The Dask engine: a job on a Dask cluster — the scheduler at ``compute.scheduler_address``, or
a ``LocalCluster`` of ``compute.workers`` processes started on first use and stopped on close."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from fraudops.compute.base import Engine
from fraudops.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

    from fraudops.batch.score import ScoreReport
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime
    from fraudops.spec import FeatureSpec
    from fraudops.training.outcome import Trained

log = logging.getLogger(__name__)


class DaskEngine(Engine):
    name = "dask"

    _cluster: LocalCluster | None = None

    @cached_property
    def client(self) -> Client:
        """The cluster's client (connects, or starts the LocalCluster, on first use)."""
        from distributed import Client, LocalCluster

        cfg = self.settings.compute
        if cfg.scheduler_address:
            try:
                return Client(cfg.scheduler_address, timeout="10s")
            except OSError as exc:
                raise ConfigError(
                    f"compute.scheduler_address {cfg.scheduler_address}: no Dask scheduler "
                    f"answers ({exc})"
                ) from None
        self._cluster = LocalCluster(
            n_workers=cfg.workers,
            threads_per_worker=cfg.threads_per_worker,
            memory_limit=cfg.memory_limit,
            processes=True,
            dashboard_address=None,  # no Bokeh dashboard port opened behind the user's back
        )
        log.info("started a Dask LocalCluster of %d workers", cfg.workers)
        return Client(self._cluster)

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

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
        """A Parquet folder, a glob or ``lake:<table>``, partition by partition on the cluster
        (``fraudops.compute.dask_scoring``)."""
        from fraudops.compute.dask_scoring import score_dask

        return score_dask(
            self.client,
            self.settings,
            spec,
            source,
            target,
            version=version,
            explain=explain,
            progress=progress,
        )

    # ---- training
    def check_trainer(self, trainer: str) -> None:
        from fraudops.compute.dask_training import check_dask_trainer

        check_dask_trainer(trainer)

    def train(
        self,
        runtime: Runtime,
        trainer: str,
        progress: Reporter,
        retrain_as_of: datetime | None = None,
    ) -> Trained:
        from fraudops.compute.dask_training import train_dask

        return train_dask(self.client, runtime, trainer, progress, retrain_as_of)
