"""How an MLflow client is built from the settings (``build_client``): called by
``fraudops.runtime`` only, which every process gets its client from.

No global MLflow state is touched: every caller gets an explicit ``MlflowClient`` bound to
``settings.tracking_uri`` (tracking and registry alike). Building one also quiets MLflow's chatter
(database migration logs, run links printed on stdout, which would corrupt ``--json`` output).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fraudops.config import Settings, without_password
from fraudops.errors import ConfigError

# MLflow is imported inside the functions that use it: ~1.7 s that a process which only
# loads a version from a SQLite store (``fraudops score``) never pays.
if TYPE_CHECKING:
    from mlflow import MlflowClient

_NOISY_LOGGERS = (
    "mlflow.store.db.utils",
    "alembic",
    "alembic.runtime.migration",
    "mlflow.tracking._tracking_service.client",
    "mlflow.store.model_registry",
)


def quiet_mlflow() -> None:
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Read by MLflow at each run end: no "🏃 View run ..." lines on stdout.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def build_client(settings: Settings) -> MlflowClient:
    """A new client for ``settings.tracking_uri``; creates the SQLite store's folder when needed.
    Only ``fraudops.runtime`` calls this (``Runtime.mlflow``, ``mlflow_client``)."""
    quiet_mlflow()
    from mlflow import MlflowClient

    uri = settings.tracking_uri
    _ensure_sqlite_folder(uri)
    _s3_artifacts_environment(settings)
    try:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except Exception as exc:  # a malformed URI or an unreachable database
        raise ConfigError(
            f"cannot open the MLflow tracking store {without_password(uri)!r} "
            f"(mlflow.tracking_uri): {exc}"
        ) from None


def experiment_id(client: MlflowClient, settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created under the configured artifact root if missing.

    Each experiment gets its own folder below ``settings.artifact_location``.
    """
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{settings.artifact_location.rstrip('/')}/{name}"
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        found = client.get_experiment_by_name(name)  # a concurrent run created it first
        if found is None:
            raise
        return str(found.experiment_id)


def find_experiment_id(client: MlflowClient, name: str) -> str | None:
    found = client.get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


def _ensure_sqlite_folder(uri: str) -> None:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.endswith(":memory:"):
        Path(uri[len(prefix) :]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _s3_artifacts_environment(settings: Settings) -> None:
    """Point MLflow's S3 artifact store (boto3) at the ``s3`` settings.

    MLflow reads its S3 endpoint and boto3 its credentials from the environment only, so the
    settings given explicitly are exported; unset ones leave the AWS variables as they are.
    """
    if not settings.artifact_location.startswith("s3://"):
        return
    try:
        import boto3  # noqa: F401  (MLflow's S3 artifact store needs it)
    except ImportError:
        raise ConfigError(
            f"mlflow.artifact_location {settings.artifact_location!r} is on S3, which needs "
            "boto3: pip install 'fraudops[s3]'"
        ) from None
    s3 = settings.s3
    if s3.endpoint:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = s3.endpoint
    if s3.access_key_id:
        os.environ["AWS_ACCESS_KEY_ID"] = s3.access_key_id
    if (secret := s3.secret) is not None:
        os.environ["AWS_SECRET_ACCESS_KEY"] = secret
    os.environ.setdefault("AWS_DEFAULT_REGION", s3.effective_region)
    from fraudops.lake.storage import missing_bucket

    # Checked before any run is created: MLflow itself would fail only at the first upload.
    if problem := missing_bucket(settings, settings.artifact_location, "mlflow.artifact_location"):
        raise ConfigError(problem)
