"""Settings of the S3-compatible object store (the lake's warehouse, MLflow's artifacts)."""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr

from fraudops.config.base import Section

DEFAULT_S3_REGION = "us-east-1"


def postgres_driver(uri: str) -> str:
    """``uri`` with the PostgreSQL driver that is installed when it names none.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; fraudops installs psycopg2
    (with pyiceberg's PostgreSQL extra), so a bare URI means psycopg2 unless psycopg is there.
    """
    scheme, sep, rest = uri.partition("://")
    if sep and scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None:
        return f"postgresql+psycopg2://{rest}"
    return uri


def without_password(uri: str) -> str:
    """``uri`` with the password of its user part (``user:secret@host``) shown as ``***``."""
    try:
        parts = urlsplit(uri)
        if parts.password is None:
            return uri
    except ValueError:  # not a URL at all: nothing to hide that urlsplit can find
        return uri
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


class S3Settings(Section):
    """Used when ``lake.warehouse`` or ``mlflow.artifact_location`` is an ``s3://`` URI.

    Credentials left unset come from the usual AWS sources (``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws``); they are never shown.
    """

    endpoint: str | None = Field(
        None,
        description="Endpoint URL of an S3-compatible store (MinIO, Ceph, moto), e.g. "
        "http://127.0.0.1:9000; default: AWS S3.",
    )
    region: str | None = Field(
        None, description="Region; default $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1."
    )
    access_key_id: str | None = Field(None, description="Default: the AWS credential chain.")
    secret_access_key: SecretStr | None = Field(
        None, description="Default: the AWS credential chain."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout of each request.")

    @property
    def effective_region(self) -> str:
        # Always a region: without one pyiceberg asks AWS where the bucket lives (not an
        # S3-compatible store, and a network call at every open).
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_S3_REGION
        )

    @property
    def secret(self) -> str | None:
        return None if self.secret_access_key is None else self.secret_access_key.get_secret_value()
