"""The model registry: MLflow registered models per spec, the ``champion`` alias, model_events.

Versions hold our portable model directory (``model/`` artifacts of the training run). Promotion
moves the alias (not the deprecated stages) and records a ``model_events`` row; if recording fails
the alias is put back, so the alias and its history never disagree.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.monitoring.profile import ReferenceProfile, load_profile
from fraudops.spec import FeatureSpec
from fraudops.training.events import (
    EventType,
    ModelEvent,
    Trigger,
    append_events,
    champion_history,
    read_events,
)
from fraudops.training.models import ModelManifest, ScoringModel, load_model_dir
from fraudops.training.tracking import find_experiment_id, mlflow_client

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MODEL_ARTIFACT_PATH = "model"
REFERENCE_ARTIFACT_PATH = "reference"  # the training profile drift checks compare against
# Version tags written at registration (see training_pipeline) and shown by `models list`.
KEY_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold")


@dataclass(frozen=True)
class LoadedModel:
    """A registered version, ready to score."""

    model: ScoringModel
    manifest: ModelManifest
    name: str
    version: str
    run_id: str | None
    source: str


# ---- names and lookups ---------------------------------------------------------------------------


def _spec(settings: Settings, spec: FeatureSpec | str | None) -> FeatureSpec:
    return spec if isinstance(spec, FeatureSpec) else settings.feature_spec(spec)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def champion_version(client: MlflowClient, settings: Settings, model_name: str) -> str | None:
    """The version the champion alias points at, or None (no model or no alias yet)."""
    return alias_version(client, model_name, settings.mlflow.champion_alias)


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


# ---- loading -----------------------------------------------------------------------------------


def load_model(
    settings: Settings,
    spec: FeatureSpec | str | None = None,
    version_or_alias: str | None = None,
    *,
    client: MlflowClient | None = None,
) -> LoadedModel:
    """Load a registered version (default: the champion) straight from its artifacts, no cache."""
    spec = _spec(settings, spec)
    client = client or mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version_or_alias or settings.mlflow.champion_alias)
    source = mv.source or ""
    with _local_artifacts(source, settings) as directory:
        model = load_model_dir(directory)
    return LoadedModel(
        model=model,
        manifest=model.manifest,
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        source=source,
    )


def load_reference_profile(
    settings: Settings,
    spec: FeatureSpec | str | None = None,
    version_or_alias: str | None = None,
    *,
    client: MlflowClient | None = None,
) -> tuple[ReferenceProfile, ModelVersion]:
    """The reference profile stored beside a registered version's model (default: champion)."""
    spec = _spec(settings, spec)
    client = client or mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version_or_alias or settings.mlflow.champion_alias)
    source = (mv.source or "").rstrip("/")
    if not source.endswith("/" + MODEL_ARTIFACT_PATH):
        raise FraudopsError(f"{name} version {mv.version}: unexpected model source {source!r}")
    reference = source[: -len(MODEL_ARTIFACT_PATH)] + REFERENCE_ARTIFACT_PATH
    with _local_artifacts(reference, settings) as directory:
        return load_profile(directory), mv


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


# ---- registration and the alias ------------------------------------------------------------------


def register_version(
    client: MlflowClient,
    model_name: str,
    *,
    run_id: str,
    spec_name: str,
    tags: dict[str, str],
    description: str,
) -> ModelVersion:
    """A new version of ``model_name`` from the run's ``model/`` artifacts."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        try:
            client.create_registered_model(
                model_name,
                tags={"spec": spec_name},
                description=f"fraudops fraud model for feature spec {spec_name!r}",
            )
        except MlflowException as race:  # created meanwhile by a concurrent training
            if getattr(race, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}"
    return client.create_model_version(
        model_name, source=source, run_id=run_id, tags=tags, description=description
    )


def move_champion(
    settings: Settings,
    client: MlflowClient,
    spec_name: str,
    version: str,
    *,
    event: ModelEvent,
    extra_events: tuple[ModelEvent, ...] = (),
) -> None:
    """Point the champion alias at ``version`` and record the events; undo the alias on failure."""
    name = settings.registered_model_name(spec_name)
    alias = settings.mlflow.champion_alias
    client.set_registered_model_alias(name, alias, version)
    try:
        append_events(settings, spec_name, [*extra_events, event])
    except BaseException:
        before = event.champion_before
        if before:
            client.set_registered_model_alias(name, alias, before)
        else:
            client.delete_registered_model_alias(name, alias)
        raise


# ---- services behind `fraudops models` ---------------------------------------------------------


def list_versions(settings: Settings, spec_name: str | None = None) -> list[dict[str, Any]]:
    """Every version of the spec's model, newest first, with aliases, key metrics and gate tags."""
    spec = _spec(settings, spec_name)
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    by_version = _aliases_by_version(client, name)
    return [_version_row(mv, by_version.get(str(mv.version), [])) for mv in _versions(client, name)]


def show_version(
    settings: Settings, version_or_alias: str, spec_name: str | None = None
) -> dict[str, Any]:
    """One version in full: registry facts, the run's metrics and params, the gate's tags."""
    spec = _spec(settings, spec_name)
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version_or_alias)
    info = _version_row(mv, _aliases_by_version(client, name).get(str(mv.version), []))
    info["source"] = mv.source
    info["description"] = mv.description
    info["tags"] = dict(mv.tags)
    if mv.run_id:
        run = client.get_run(mv.run_id)
        info["metrics"] = dict(sorted(run.data.metrics.items()))
        info["params"] = dict(sorted(run.data.params.items()))
        info["artifacts"] = [a.path for a in client.list_artifacts(mv.run_id)]
    return info


def champion(settings: Settings, spec_name: str | None = None) -> dict[str, Any] | None:
    """The champion version's summary row, or None when there is none."""
    spec = _spec(settings, spec_name)
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    version = champion_version(client, settings, name)
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    return _version_row(mv, _aliases_by_version(client, name).get(version, []))


def promote(
    settings: Settings, version: str, *, reason: str, spec_name: str | None = None
) -> dict[str, Any]:
    """Make ``version`` the champion by hand (no gate); recorded as ``manual_promote``."""
    spec = _spec(settings, spec_name)
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version)
    before = champion_version(client, settings, name)
    if before == str(mv.version):
        raise FraudopsError(f"version {mv.version} of {name!r} is already the champion")
    event = _event(spec.name, name, "manual_promote", "manual", reason, mv, before)
    move_champion(settings, client, spec.name, str(mv.version), event=event)
    return event.to_dict()


def rollback(settings: Settings, *, reason: str, spec_name: str | None = None) -> dict[str, Any]:
    """Point the champion back at the previous champion according to ``model_events``."""
    spec = _spec(settings, spec_name)
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    current = champion_version(client, settings, name)
    history = champion_history(read_events(settings, spec.name), name)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise FraudopsError(
            f"no previous champion of {name!r} to roll back to (current: "
            f"{current or 'none'}; model_events records no earlier promotion)"
        )
    mv = resolve_version(client, name, history[-1])
    event = _event(spec.name, name, "rollback", "rollback", reason, mv, current)
    move_champion(settings, client, spec.name, str(mv.version), event=event)
    return event.to_dict()


def _event(
    spec_name: str,
    model_name: str,
    event_type: EventType,
    trigger: Trigger,
    reason: str,
    mv: ModelVersion,
    before: str | None,
) -> ModelEvent:
    metrics = {k: float(mv.tags[k]) for k in KEY_METRICS if k in mv.tags}
    return ModelEvent(
        spec=spec_name,
        model_name=model_name,
        event_type=event_type,
        trigger=trigger,
        reason=reason,
        version=str(mv.version),
        run_id=mv.run_id,
        champion_before=before,
        champion_after=str(mv.version),
        metrics=metrics,
    )


def _aliases_by_version(client: MlflowClient, model_name: str) -> dict[str, list[str]]:
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException as exc:
        if _not_found(exc):
            return {}
        raise
    out: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        out.setdefault(str(version), []).append(alias)
    return out


def _version_row(mv: ModelVersion, aliases: list[str]) -> dict[str, Any]:
    tags = dict(mv.tags)
    row: dict[str, Any] = {
        "version": str(mv.version),
        "aliases": sorted(aliases),
        "created": _iso(mv.creation_timestamp),
        "trainer": tags.get("trainer"),
        "decision": tags.get("decision"),
    }
    for key in KEY_METRICS:
        row[key] = float(tags[key]) if key in tags else None
    row["run_id"] = mv.run_id
    return row


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


# ---- services behind `fraudops pipeline runs` --------------------------------------------------

RUN_METRICS = ("roc_auc", "pr_auc", "recall", "f1")


def pipeline_runs(
    settings: Settings, spec_name: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Training executions, newest first: status, start, duration, trainer, metrics, decision."""
    client = mlflow_client(settings)
    experiment = find_experiment_id(client, settings.mlflow.training_experiment)
    if experiment is None:
        return []
    where = f"tags.spec = '{settings.feature_spec(spec_name).name}'" if spec_name else ""
    runs = client.search_runs(
        [experiment],
        filter_string=where,
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    rows = []
    for run in runs:
        info, tags, metrics = run.info, run.data.tags, run.data.metrics
        end = info.end_time
        rows.append(
            {
                "run_id": info.run_id,
                "status": info.status,
                "start": _iso(info.start_time),
                "duration_s": round((end - info.start_time) / 1000, 1) if end else None,
                "spec": tags.get("spec"),
                "trainer": tags.get("trainer"),
                "trigger": tags.get("trigger"),
                **{k: metrics.get(k) for k in RUN_METRICS},
                "decision": tags.get("decision"),
                "version": tags.get("version"),
            }
        )
    return rows


# ---- other aliases: the challenger a server shadow-scores with -----------------------------------


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (no such model or no such alias)."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise
    version = aliases.get(alias)
    return None if version is None else str(version)


def set_alias(settings: Settings, alias: str, version: str, *, spec_name: str | None = None) -> str:
    """Point ``alias`` (e.g. ``challenger``) at a version; the champion alias is refused (it
    moves only through promote/rollback, which record model_events). Returns the version."""
    spec = _spec(settings, spec_name)
    if alias == settings.mlflow.champion_alias:
        raise FraudopsError(
            f"alias {alias!r} is the champion: move it with `fraudops models promote`"
        )
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version)
    client.set_registered_model_alias(name, alias, str(mv.version))
    return str(mv.version)


def remove_alias(settings: Settings, alias: str, *, spec_name: str | None = None) -> bool:
    """Delete ``alias`` (not the champion's); False when it did not exist."""
    spec = _spec(settings, spec_name)
    if alias == settings.mlflow.champion_alias:
        raise FraudopsError(f"alias {alias!r} is the champion: it cannot be removed")
    client = mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    if alias_version(client, name, alias) is None:
        return False
    client.delete_registered_model_alias(name, alias)
    return True


def version_threshold(
    settings: Settings,
    spec: FeatureSpec | str | None,
    version: str,
    *,
    client: MlflowClient | None = None,
) -> float:
    """The decision threshold of a version: its ``threshold`` tag (written at registration),
    else its manifest (loads the model). A FraudopsError when there is no such version."""
    spec = _spec(settings, spec)
    client = client or mlflow_client(settings)
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version)
    tag = dict(mv.tags).get("threshold")
    if tag is not None:
        try:
            return float(tag)
        except ValueError:
            pass  # a hand-edited tag: the manifest knows
    return float(load_model(settings, spec, str(mv.version), client=client).manifest.threshold)
