"""The LocalCluster the Dask tests run on: 2 worker processes of 1 thread, 2 GiB each (the
issue's "LocalCluster of 2 workers"), no Bokeh dashboard port.

One per test process (``dask_cluster``, session-scoped in tests/conftest.py): starting one costs
two worker processes importing pandas, pyarrow and xgboost, so every Dask module an xdist worker
runs shares it. Each module connects its own ``Client`` and closes it; nothing is left on the
workers between modules but their imports.
"""

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
