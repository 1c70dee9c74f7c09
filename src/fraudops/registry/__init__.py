"""The model registry (MLflow): versions per spec, the champion and other aliases, loading.

``client`` builds the one MLflow client from the settings; ``versions`` registers and resolves
versions and moves aliases; ``loading`` loads a version's model and reference profile (``store``
reads a SQLite store directly, without MLflow); ``listing`` is what `fraudops models` shows.
Moving the champion by hand (promote, rollback) is ``fraudops.governance``.
"""

from fraudops.registry.client import experiment_id, find_experiment_id, mlflow_client
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
from fraudops.registry.versions import (
    MODEL_ARTIFACT_PATH,
    REFERENCE_ARTIFACT_PATH,
    alias_version,
    champion_version,
    move_champion,
    register_version,
    remove_alias,
    resolve_version,
    set_alias,
)

__all__ = [
    "KEY_METRICS",
    "MODEL_ARTIFACT_PATH",
    "REFERENCE_ARTIFACT_PATH",
    "RUN_METRICS",
    "LoadedModel",
    "alias_version",
    "champion",
    "champion_version",
    "experiment_id",
    "find_experiment_id",
    "list_versions",
    "load_model",
    "load_reference_profile",
    "mlflow_client",
    "move_champion",
    "pipeline_runs",
    "register_version",
    "remove_alias",
    "resolve_version",
    "set_alias",
    "show_version",
    "version_threshold",
]
