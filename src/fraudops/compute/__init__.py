"""The compute engine: where training, batch scoring and monitoring run.

``open_engine(settings)`` (the runtime's ``engine``) builds the one the settings name
(``compute.engine``, or ``--engine`` on a command): ``LocalEngine`` runs a job in this process
over pandas/NumPy, as fraudops always has; ``DaskEngine`` runs it on a Dask cluster (a
``LocalCluster`` it starts, or the scheduler at ``compute.scheduler_address``), reading the lake
partition by partition so no process holds the whole table. Both return the same typed results.
"""

from __future__ import annotations

from fraudops.compute.base import Engine
from fraudops.compute.factory import open_engine

__all__ = ["Engine", "open_engine"]
