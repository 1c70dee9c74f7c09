"""The Dask engine: a job on a Dask cluster — the scheduler at ``compute.scheduler_address``, or
a ``LocalCluster`` of ``compute.workers`` processes started on first use and stopped on close."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

from fraudops.compute.base import Engine
from fraudops.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

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
