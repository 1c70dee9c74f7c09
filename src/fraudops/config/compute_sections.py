"""Settings of the compute engine: where training, batch scoring and monitoring run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fraudops.config.base import Section

EngineName = Literal["local", "dask"]


class ComputeSettings(Section):
    """``local`` (default): one process over pandas/NumPy. ``dask``: a Dask cluster — a
    ``LocalCluster`` started for the job, or the scheduler at ``scheduler_address``."""

    engine: EngineName = Field("local", description="local | dask (override: --engine).")
    scheduler_address: str | None = Field(
        None,
        description="A running Dask scheduler, e.g. tcp://10.0.0.5:8786; none: start a "
        "LocalCluster with the settings below for the job and stop it after.",
    )
    workers: int = Field(2, ge=1, description="LocalCluster worker processes.")
    threads_per_worker: int = Field(1, ge=1, description="Threads in each LocalCluster worker.")
    memory_limit: str = Field(
        "4GiB",
        description="Memory limit of each LocalCluster worker (Dask spills to disk past 60% and "
        "restarts a worker past 95%), e.g. 2GiB, 8GB, auto.",
    )
    partition_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="Rows per Dask partition at most when a source's pieces are grouped: lake "
        "data files, Parquet row groups (a bigger piece is a partition alone).",
    )
