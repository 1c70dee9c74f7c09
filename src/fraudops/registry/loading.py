"""Loading a registered version (its model, its reference profile) to score with.

A version is looked up in MLflow's SQLite store directly when that is the store
(``fraudops.registry.store``: milliseconds, no MLflow import), else through MLflow's client; its
artifacts are read in place when local, downloaded otherwise. Nothing is cached: every load
answers the version the alias points at now.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.models.portable import ModelManifest, ScoringModel, load_model_dir
from fraudops.models.profile import ReferenceProfile, load_profile
from fraudops.registry.lookup import (
    MODEL_ARTIFACT_PATH,
    REFERENCE_ARTIFACT_PATH,
    _spec,
    resolve_version,
)
from fraudops.registry.store import VersionRecord, find_version
from fraudops.spec import FeatureSpec

# MLflow is imported inside the functions that use it: ~1.7 s that a process which only
# loads a version from a SQLite store (``fraudops score``) never pays.
if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class LoadedModel:
    """A registered version, ready to score."""

    model: ScoringModel
    manifest: ModelManifest
    name: str
    version: str
    run_id: str | None
    source: str


# ---- loading -----------------------------------------------------------------------------------


def load_model(
    settings: Settings,
    spec: FeatureSpec | str | None = None,
    version_or_alias: str | None = None,
    *,
    client: MlflowClient | Callable[[], MlflowClient] | None = None,
) -> LoadedModel:
    """Load a registered version (default: the champion) straight from its artifacts, no cache.

    ``client``: the registry client, or what builds one (``Runtime.mlflow_factory()``). Given a
    builder, a SQLite store is read directly first (no MLflow import: what makes a `fraudops
    score` start in a fraction of a second), and the builder is called only for any other store
    or anything the direct read does not find: MLflow's client also words the errors.
    """
    spec = _spec(settings, spec)
    name = settings.registered_model_name(spec.name)
    ref = version_or_alias or settings.mlflow.champion_alias
    direct = client is None or callable(client)
    found = find_version(settings.tracking_uri, name, ref) if direct else None
    if found is None:
        mv = resolve_version(_registry_client(settings, client), name, ref)
        found = VersionRecord(str(mv.version), mv.run_id, mv.source or "", mv.source or "")
    with _local_artifacts(found.location, settings) as directory:
        model = load_model_dir(directory)
    return LoadedModel(
        model=model,
        manifest=model.manifest,
        name=name,
        version=found.version,
        run_id=found.run_id,
        source=found.source,
    )


def load_reference_profile(
    settings: Settings,
    spec: FeatureSpec | str | None = None,
    version_or_alias: str | None = None,
    *,
    client: MlflowClient,
) -> tuple[ReferenceProfile, ModelVersion]:
    """The reference profile stored beside a registered version's model (default: champion)."""
    spec = _spec(settings, spec)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version_or_alias or settings.mlflow.champion_alias)
    source = (mv.source or "").rstrip("/")
    if not source.endswith("/" + MODEL_ARTIFACT_PATH):
        raise FraudopsError(f"{name} version {mv.version}: unexpected model source {source!r}")
    reference = source[: -len(MODEL_ARTIFACT_PATH)] + REFERENCE_ARTIFACT_PATH
    with _local_artifacts(reference, settings) as directory:
        return load_profile(directory), mv


def _registry_client(
    settings: Settings, client: MlflowClient | Callable[[], MlflowClient] | None
) -> MlflowClient:
    if client is None:
        # Transitional, for the callers that pass no client yet (compute/local.py through
        # batch/score.py, compute/dask_scoring.py): they pass ``Runtime.mlflow_factory()`` once
        # moved, and ``client`` becomes required.
        from fraudops.registry.client import build_client

        return build_client(settings)
    return client() if callable(client) else client


@contextmanager
def _local_artifacts(source: str, settings: Settings) -> Iterator[Path]:
    parsed = urlparse(source)
    if parsed.scheme in ("", "file"):  # the embedded default: read in place, nothing copied
        path = Path(url2pathname(parsed.path))
        if not path.is_dir():
            raise FraudopsError(f"model artifacts {source} are missing")
        yield path
        return
    import mlflow.artifacts

    staging = Path(tempfile.mkdtemp(prefix="fraudops-model-"))
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(staging), tracking_uri=settings.tracking_uri
        )
        yield Path(local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def version_threshold(
    settings: Settings,
    spec: FeatureSpec | str | None,
    version: str,
    *,
    client: MlflowClient,
) -> float:
    """The decision threshold of a version: its ``threshold`` tag (written at registration),
    else its manifest (loads the model). A FraudopsError when there is no such version."""
    spec = _spec(settings, spec)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version)
    tag = dict(mv.tags).get("threshold")
    if tag is not None:
        try:
            return float(tag)
        except ValueError:
            pass  # a hand-edited tag: the manifest knows
    return float(load_model(settings, spec, str(mv.version), client=client).manifest.threshold)
