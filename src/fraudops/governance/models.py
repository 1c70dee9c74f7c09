"""Moving the champion by hand: promote a registered version (no gate), roll back to the
previous champion. Each move is one ``model_events`` row naming who did it and why; if that row
cannot be written the alias is put back (``registry.move_champion``).

Each action holds the model's champion lock (``registry.champion_lock``: a file lock under
home, or a PostgreSQL advisory lock when the registry is on PostgreSQL) from reading the current
champion to writing its event: of two simultaneous actions the second sees the first's result,
so ``champion_before`` is the real previous champion and the newest event names the alias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudops.errors import FraudopsError
from fraudops.governance.errors import (
    MAX_ACTOR,
    ActionConflict,
    ActionTargetNotFound,
    required_text,
)
from fraudops.lake.schemas import MODEL_EVENTS
from fraudops.registry import (
    KEY_METRICS,
    champion_lock,
    champion_version,
    move_champion,
    resolve_version,
)
from fraudops.registry.events import (
    ACTOR_COLUMN,
    EventType,
    ModelEvent,
    Trigger,
    champion_history,
    load_events,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from fraudops.runtime import Runtime


def promote(runtime: Runtime, version: str, *, actor: str, reason: str) -> ModelEvent:
    """Point ``champion`` at ``version`` (a number, ``v3``, or an alias such as ``challenger``),
    recorded as ``manual_promote`` by ``actor`` for ``reason``.

    ActionInputError: empty actor, reason or version; ActionTargetNotFound: no such version;
    ActionConflict: it is already the champion; SchemaOutdatedError: model_events predates
    the actor column (``fraudops lake init``). Nothing is changed when it raises.
    """
    actor = required_text("actor", actor, MAX_ACTOR)
    reason = required_text("reason", reason)
    ref = required_text("version", version, MAX_ACTOR)
    runtime.lake().require_columns(MODEL_EVENTS, [ACTOR_COLUMN])
    client, name = runtime.mlflow, runtime.model_name
    mv = _resolve(client, name, ref)
    with champion_lock(runtime.settings, name):
        before = champion_version(client, runtime.settings, name)
        if before == str(mv.version):
            raise ActionConflict(f"version {mv.version} of {name!r} is already the champion")
        event = _event(runtime, "manual_promote", "manual", actor, reason, mv, before)
        move_champion(
            runtime.settings,
            client,
            runtime.spec_name,
            str(mv.version),
            event=event,
            lake=runtime.lake(),
        )
    return event


def rollback(runtime: Runtime, *, actor: str, reason: str) -> ModelEvent:
    """Point ``champion`` back at the previous champion by ``model_events``' history, recorded as
    ``rollback`` by ``actor`` for ``reason``.

    ActionInputError: empty actor or reason; ActionConflict: no earlier champion recorded;
    SchemaOutdatedError as for ``promote``. Nothing is changed when it raises.
    """
    actor = required_text("actor", actor, MAX_ACTOR)
    reason = required_text("reason", reason)
    runtime.lake().require_columns(MODEL_EVENTS, [ACTOR_COLUMN])
    client, name = runtime.mlflow, runtime.model_name
    with champion_lock(runtime.settings, name):
        current = champion_version(client, runtime.settings, name)
        history = champion_history(load_events(runtime.lake()), name)
        while history and history[-1] == current:
            history.pop()
        if not history:
            raise ActionConflict(
                f"no previous champion of {name!r} to roll back to (current: "
                f"{current or 'none'}; model_events records no earlier promotion)"
            )
        mv = _resolve(client, name, history[-1])
        event = _event(runtime, "rollback", "rollback", actor, reason, mv, current)
        move_champion(
            runtime.settings,
            client,
            runtime.spec_name,
            str(mv.version),
            event=event,
            lake=runtime.lake(),
        )
    return event


def _resolve(client: MlflowClient, model_name: str, ref: str) -> ModelVersion:
    try:
        return resolve_version(client, model_name, ref)
    except FraudopsError as exc:  # resolve_version's only refusal: no such version or alias
        raise ActionTargetNotFound(str(exc)) from None


def _event(
    runtime: Runtime,
    event_type: EventType,
    trigger: Trigger,
    actor: str,
    reason: str,
    mv: ModelVersion,
    before: str | None,
) -> ModelEvent:
    metrics = {k: float(mv.tags[k]) for k in KEY_METRICS if k in mv.tags}
    return ModelEvent(
        spec=runtime.spec_name,
        model_name=runtime.model_name,
        event_type=event_type,
        trigger=trigger,
        reason=reason,
        version=str(mv.version),
        run_id=mv.run_id,
        champion_before=before,
        champion_after=str(mv.version),
        metrics=metrics,
        actor=actor,
    )
