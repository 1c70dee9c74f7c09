"""The compute engines: where a job's data-parallel work runs.

``open_engine(settings)`` (the runtime's ``engine``) builds the one the settings name
(``compute.engine``, or ``--engine`` on a command): ``LocalEngine`` is this process, over
pandas/NumPy, as fraudops always has; ``DaskEngine`` is a Dask cluster (a ``LocalCluster`` it
starts, or the scheduler at ``compute.scheduler_address``) and its ``client``. An engine is
infrastructure only: each job's sequence is written once in the package named after it
(training/pipeline.py, batch/score.py), and each engine's primitives for that job live beside
it (training/local.py and training/dask.py, batch/dask.py).
"""

from __future__ import annotations

from fraudops.compute.base import Engine
from fraudops.compute.factory import open_engine

__all__ = ["Engine", "open_engine"]
