"""The model registry (MLflow): versions per spec, the champion and other aliases, loading.

``client`` builds an MLflow client from the settings (for ``fraudops.runtime``, the one place
clients are built: every function here takes the client it uses); ``lookup`` resolves a version
or an alias; ``versions`` registers versions and moves aliases; ``loading`` loads a version's model
and reference profile (``store`` reads a SQLite store directly, without MLflow); ``listing`` is
what `fraudops models` shows.
Moving the champion by hand (promote, rollback) is ``fraudops.governance``.

The names below are imported on first use: loading a version (``fraudops score``) then imports
``loading`` and ``lookup`` only, not ``versions``/``listing`` (the lake's event table, pyiceberg).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudops.registry.client import experiment_id, find_experiment_id
    from fraudops.registry.listing import (
        KEY_METRICS,
        RUN_METRICS,
        champion,
        list_versions,
        pipeline_runs,
        show_version,
    )
    from fraudops.registry.loading import (
        LoadedModel,
        load_model,
        load_reference_profile,
        version_threshold,
    )
    from fraudops.registry.locks import ChampionLockTimeout, champion_lock, lock_kind
    from fraudops.registry.lookup import (
        MODEL_ARTIFACT_PATH,
        REFERENCE_ARTIFACT_PATH,
        resolve_version,
    )
    from fraudops.registry.versions import (
        alias_version,
        champion_version,
        move_champion,
        register_version,
        remove_alias,
        set_alias,
    )

# Each public name -> the module that defines it.
_MODULES: dict[str, str] = {
    "ChampionLockTimeout": "locks",
    "KEY_METRICS": "listing",
    "LoadedModel": "loading",
    "MODEL_ARTIFACT_PATH": "lookup",
    "REFERENCE_ARTIFACT_PATH": "lookup",
    "RUN_METRICS": "listing",
    "alias_version": "versions",
    "champion": "listing",
    "champion_lock": "locks",
    "champion_version": "versions",
    "experiment_id": "client",
    "find_experiment_id": "client",
    "list_versions": "listing",
    "lock_kind": "locks",
    "load_model": "loading",
    "load_reference_profile": "loading",
    "move_champion": "versions",
    "pipeline_runs": "listing",
    "register_version": "versions",
    "remove_alias": "versions",
    "resolve_version": "lookup",
    "set_alias": "versions",
    "show_version": "listing",
    "version_threshold": "loading",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "KEY_METRICS",
    "MODEL_ARTIFACT_PATH",
    "REFERENCE_ARTIFACT_PATH",
    "RUN_METRICS",
    "ChampionLockTimeout",
    "LoadedModel",
    "alias_version",
    "champion",
    "champion_lock",
    "champion_version",
    "experiment_id",
    "find_experiment_id",
    "list_versions",
    "load_model",
    "load_reference_profile",
    "lock_kind",
    "move_champion",
    "pipeline_runs",
    "register_version",
    "remove_alias",
    "resolve_version",
    "set_alias",
    "show_version",
    "version_threshold",
]
