"""Names and lookups of registered versions: what loading a version needs, and no more.

Kept apart from ``versions`` (registration, aliases, the ``model_events`` they record), which
imports the lake's event table and with it pyiceberg: a process that only loads a version
(``fraudops score``) imports this module, not that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.spec import FeatureSpec

# MLflow is imported inside the functions that use it: ~1.7 s that a process which only
# loads a version from a SQLite store (``fraudops score``) never pays.
if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MODEL_ARTIFACT_PATH = "model"
REFERENCE_ARTIFACT_PATH = "reference"  # the training profile drift checks compare against


def _spec(settings: Settings, spec: FeatureSpec | str | None) -> FeatureSpec:
    return spec if isinstance(spec, FeatureSpec) else settings.feature_spec(spec)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def resolve_version(client: MlflowClient, model_name: str, version_or_alias: str) -> ModelVersion:
    """``"3"``/``"v3"`` or an alias such as ``champion``; a FraudopsError if there is none."""
    from mlflow.exceptions import MlflowException

    ref = str(version_or_alias).strip()
    number = ref[1:] if ref[:1] in "vV" and ref[1:].isdigit() else ref
    try:
        if number.isdigit():
            return client.get_model_version(model_name, number)
        return client.get_model_version_by_alias(model_name, ref)
    except MlflowException as exc:
        if not (_not_found(exc) or getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE"):
            raise
        raise FraudopsError(
            f"model {model_name!r} has no version or alias {ref!r}"
            f"{_known_versions(client, model_name)}"
        ) from None


def _known_versions(client: MlflowClient, model_name: str) -> str:
    versions = _versions(client, model_name)
    if not versions:
        return " (no versions registered yet: run `fraudops train`)"
    return f" (versions: {', '.join(str(v.version) for v in versions)})"


def _versions(client: MlflowClient, model_name: str) -> list[ModelVersion]:
    found = client.search_model_versions(f"name = '{model_name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)
