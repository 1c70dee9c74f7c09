"""The lake's small tables as the pages read them: once per Iceberg snapshot, then from memory.

``monitoring_runs``, ``feature_drift``, ``alerts``, ``model_events`` and ``labels`` grow by a
few rows per monitoring run or label batch. A page load asks each table for its current
snapshot id (one catalog lookup, no data file opened) and reads the rows only when that id is
new: a page reloaded a hundred times between two monitoring runs reads them once. ``predictions``
is never read here: the pages that need it use the aggregates, or a bounded, filtered scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudops.aggregates import read
from fraudops.lake.schemas import (
    ALERTS,
    FEATURE_DRIFT,
    LABELS,
    MODEL_EVENTS,
    MONITORING_RUNS,
    PREDICTIONS,
)

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake
    from fraudops.runtime import Runtime

SMALL_TABLES = (MONITORING_RUNS, FEATURE_DRIFT, ALERTS, MODEL_EVENTS, LABELS)
# The tables whose snapshot ids /api/state reports: a change in any of them redraws the page.
WATCHED_TABLES = (*SMALL_TABLES, PREDICTIONS)


def snapshot_id(lake: Lake, name: str) -> int | None:
    """The current snapshot id of table ``name`` (None: created, never written)."""
    snapshot = lake.table(name).current_snapshot()
    return None if snapshot is None else int(snapshot.snapshot_id)


def small_table(runtime: Runtime, name: str, spec: str | None = None) -> pd.DataFrame:
    """Table ``name`` of ``spec``'s lake as a frame, read once per snapshot id.

    The frame is shared between requests: callers filter or copy it, never change it in place.
    The cache is the aggregates' (``aggregates.read.snapshot_frame``): one per process.
    """
    if name not in SMALL_TABLES:
        raise ValueError(f"{name} is not one of the small tables {SMALL_TABLES}")
    return read.snapshot_frame(runtime.lake(spec), name)


@dataclass(frozen=True)
class LakeState:
    """What a page polls: when any of it changes, the page redraws."""

    spec: str
    snapshots: dict[str, int | None]
    champion: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "snapshots": {k: None if v is None else str(v) for k, v in self.snapshots.items()},
            "champion": self.champion,
            # One string to compare: the page redraws when it differs from the last one.
            "token": "|".join(
                [str(self.champion), *(f"{k}:{v}" for k, v in sorted(self.snapshots.items()))]
            ),
        }


def lake_state(runtime: Runtime, spec: str | None = None) -> LakeState:
    """The watched tables' snapshot ids and the champion version: no data file is read."""
    lake = runtime.lake(spec)
    snapshots = {name: snapshot_id(lake, name) for name in WATCHED_TABLES if lake.exists(name)}
    return LakeState(spec=lake.namespace, snapshots=snapshots, champion=champion_of(runtime, spec))


def champion_of(runtime: Runtime, spec: str | None = None) -> str | None:
    """The version the champion alias points at (SQLite store read directly: milliseconds)."""
    from fraudops.registry.store import find_version

    settings = runtime.settings
    name = settings.registered_model_name(spec or runtime.spec_name)
    found = find_version(settings.tracking_uri, name, settings.mlflow.champion_alias)
    if found is not None:
        return found.version
    if settings.tracking_uri.startswith("sqlite:///"):
        return None  # the store answered: no champion (yet)
    from fraudops.registry.versions import champion_version

    return champion_version(runtime.mlflow, settings, name)


def registry_has(runtime: Runtime, spec: str | None, version: str) -> bool:
    """Whether ``version`` is registered, without creating a SQLite store that is not there."""
    from fraudops.registry.store import find_version, sqlite_path

    settings = runtime.settings
    path = sqlite_path(settings.tracking_uri)
    if path is None:
        return True  # another store: MLflow's client answers (and words the error)
    name = settings.registered_model_name(spec or runtime.spec_name)
    return path.is_file() and find_version(settings.tracking_uri, name, version) is not None
