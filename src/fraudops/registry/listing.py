"""The read services behind `fraudops models` and `fraudops pipeline runs`: list, show.

Moving the champion by hand (promote, rollback) is ``fraudops.governance``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fraudops.config import Settings
from fraudops.registry.client import find_experiment_id
from fraudops.registry.lookup import _not_found, _spec, _versions, resolve_version
from fraudops.registry.versions import champion_version

# MLflow is imported inside the functions that use it: ~1.7 s that a process which only
# loads a version from a SQLite store (``fraudops score``) never pays.
if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# Version tags written at registration (see training_pipeline) and shown by `models list`.
KEY_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold")

# ---- services behind `fraudops models` ---------------------------------------------------------


def list_versions(
    client: MlflowClient, settings: Settings, spec_name: str | None = None
) -> list[dict[str, Any]]:
    """Every version of the spec's model, newest first, with aliases, key metrics and gate tags."""
    spec = _spec(settings, spec_name)
    name = settings.registered_model_name(spec.name)
    by_version = _aliases_by_version(client, name)
    return [_version_row(mv, by_version.get(str(mv.version), [])) for mv in _versions(client, name)]


def show_version(
    client: MlflowClient, settings: Settings, version_or_alias: str, spec_name: str | None = None
) -> dict[str, Any]:
    """One version in full: registry facts, the run's metrics and params, the gate's tags."""
    spec = _spec(settings, spec_name)
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


def champion(
    client: MlflowClient, settings: Settings, spec_name: str | None = None
) -> dict[str, Any] | None:
    """The champion version's summary row, or None when there is none."""
    spec = _spec(settings, spec_name)
    name = settings.registered_model_name(spec.name)
    version = champion_version(client, settings, name)
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    return _version_row(mv, _aliases_by_version(client, name).get(version, []))


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
    client: MlflowClient, settings: Settings, spec_name: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Training executions, newest first: status, start, duration, trainer, metrics, decision."""
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
