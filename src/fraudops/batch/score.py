"""Batch scoring, `fraudops score`: the one entry, for both engines.

``score`` checks what the engine can read and write, then runs the engine's path: the local
engine scores one CSV or Parquet file in chunks in this process (batch/local.py); the Dask
engine scores a Parquet folder, a glob or ``lake:<table>`` partition by partition on its
cluster (batch/dask.py). Both validate every row first and write nothing for a bad input, and
both return the same ``ScoreReport``.

Nothing here opens a client: the registry's comes from ``registry`` (called only when the
direct read of a SQLite store does not answer), the lake (only a Dask job reading or writing a
table needs one) from the caller's ``lake_factory``, called only then — a local score never
imports pyiceberg.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from fraudops.batch.local import ScoreReport, score_file
from fraudops.batch.sources import check_local_source
from fraudops.config import Settings
from fraudops.errors import ConfigError
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.compute import Engine
    from fraudops.compute.dask_engine import DaskEngine
    from fraudops.lake import Lake


def score(
    engine: Engine,
    settings: Settings,
    spec: FeatureSpec,
    source: str,
    target: str,
    *,
    lake_factory: Callable[[], Lake],
    registry: Callable[[], MlflowClient],
    version: str | None = None,
    explain: bool = False,
    progress: Reporter | None = None,
) -> ScoreReport:
    """Score every row of ``source`` with a registered version (default: the champion) and
    write ids + probability, prediction, risk tier, model name and version to ``target``
    (with a spec's derived features after the ids: batch/raw.py); a bad row or column is a
    ValidationError naming it, and nothing is written."""
    if engine.name == "local":
        check_local_source(source, target)
        return score_file(
            settings,
            source,
            target,
            registry=registry,
            spec_name=spec.name,
            version=version,
            explain=explain,
            progress=progress,
            lake_factory=lake_factory,
        )
    if engine.name == "dask":
        if spec.derived:
            # A row's windows reach over its key's earlier rows in any partition and the lake's
            # history: scored on this process, where the whole file is derived at once.
            raise ConfigError(
                f"spec {spec.name!r} derives features from history: score its raw file with "
                "--engine local (the Dask engine scores specs of ready features)"
            )
        from fraudops.batch.dask import score_dask  # imports Dask: only a Dask job pays it

        # open_engine builds a DaskEngine for "dask" (typed only: no import of the engine here)
        return score_dask(
            cast("DaskEngine", engine).client,
            settings,
            spec,
            source,
            target,
            lake_factory=lake_factory,
            registry=registry,
            version=version,
            explain=explain,
            progress=progress,
        )
    raise ConfigError(f"no batch scoring for compute engine {engine.name!r}")
