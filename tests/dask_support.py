"""The LocalCluster the Dask tests run on: 2 worker processes of 1 thread, 2 GiB each (the
issue's "LocalCluster of 2 workers"), no Bokeh dashboard port."""

from __future__ import annotations

from distributed import LocalCluster


def local_cluster() -> LocalCluster:
    """A new cluster; use it as a context manager (closed, workers stopped, on exit)."""
    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        memory_limit="2GiB",
        processes=True,
        dashboard_address=None,
    )
