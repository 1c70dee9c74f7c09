"""Registered versions per spec, the ``champion`` alias and the other aliases.

Versions are MLflow Models (``model/`` artifacts of the training run, see
``fraudops.models.mlflow_model``); older ones hold our bare portable layout, and both load.
Promotion moves the alias (not the deprecated stages) and records a ``model_events`` row; if
recording fails the alias is put back, so the alias and its history never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.registry.events import ModelEvent, append_events, write_events
from fraudops.registry.locks import champion_lock
from fraudops.registry.lookup import MODEL_ARTIFACT_PATH, _not_found, _spec, resolve_version

# MLflow is imported inside the functions that use it: ~1.7 s that a process which only
# loads a version from a SQLite store (``fraudops score``) never pays.
if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from fraudops.lake import Lake

# ---- lookups (the ones loading needs are in ``lookup``) ------------------------------------------


def champion_version(client: MlflowClient, settings: Settings, model_name: str) -> str | None:
    """The version the champion alias points at, or None (no model or no alias yet)."""
    return alias_version(client, model_name, settings.mlflow.champion_alias)


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
    lake: Lake | None = None,
) -> None:
    """Point the champion alias at ``version`` and record the events in ``lake`` (the spec's);
    undo the alias on failure.

    Under the model's champion lock (``locks``): no other move lands between the alias and its
    event. A caller that read ``champion_before`` holds the lock around the read too.
    """
    name = settings.registered_model_name(spec_name)
    alias = settings.mlflow.champion_alias
    with champion_lock(settings, name):
        client.set_registered_model_alias(name, alias, version)
        try:
            if lake is None:  # transitional: the callers in orchestration/ pass no lake yet
                append_events(settings, spec_name, [*extra_events, event])
            else:
                write_events(lake, [*extra_events, event])
        except BaseException:
            before = event.champion_before
            if before:
                client.set_registered_model_alias(name, alias, before)
            else:
                client.delete_registered_model_alias(name, alias)
            raise


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


def set_alias(
    client: MlflowClient,
    settings: Settings,
    alias: str,
    version: str,
    *,
    spec_name: str | None = None,
) -> str:
    """Point ``alias`` (e.g. ``challenger``) at a version; the champion alias is refused (it
    moves only through promote/rollback, which record model_events). Returns the version."""
    spec = _spec(settings, spec_name)
    if alias == settings.mlflow.champion_alias:
        raise FraudopsError(
            f"alias {alias!r} is the champion: move it with `fraudops models promote`"
        )
    name = settings.registered_model_name(spec.name)
    mv = resolve_version(client, name, version)
    client.set_registered_model_alias(name, alias, str(mv.version))
    return str(mv.version)


def remove_alias(
    client: MlflowClient, settings: Settings, alias: str, *, spec_name: str | None = None
) -> bool:
    """Delete ``alias`` (not the champion's); False when it did not exist."""
    spec = _spec(settings, spec_name)
    if alias == settings.mlflow.champion_alias:
        raise FraudopsError(f"alias {alias!r} is the champion: it cannot be removed")
    name = settings.registered_model_name(spec.name)
    if alias_version(client, name, alias) is None:
        return False
    client.delete_registered_model_alias(name, alias)
    return True
