"""config.storage_sections: a bare postgresql:// URI gets the installed driver."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fraudops.config import describe_settings, load_settings, without_password
from fraudops.config.storage_sections import postgres_driver

HAS_PSYCOPG3 = importlib.util.find_spec("psycopg") is not None


@pytest.mark.skipif(HAS_PSYCOPG3, reason="psycopg 3 installed: a bare URI is SQLAlchemy's own")
def test_bare_postgres_uris_use_psycopg2(home: Path) -> None:
    uri = "postgresql://u:p@db:5432/mlflow"
    assert postgres_driver(uri) == "postgresql+psycopg2://u:p@db:5432/mlflow"
    settings = load_settings(
        home=home, mlflow={"tracking_uri": uri}, lake={"catalog_uri": "postgres://db/cat"}
    )
    assert settings.tracking_uri == "postgresql+psycopg2://u:p@db:5432/mlflow"
    assert settings.catalog_uri == "postgresql+psycopg2://db/cat"


@pytest.mark.parametrize(
    "uri", ["postgresql+psycopg2://db/x", "postgresql+psycopg://db/x", "sqlite:///a.db", "x"]
)
def test_other_uris_are_kept(uri: str) -> None:
    assert postgres_driver(uri) == uri


def test_passwords_in_uris_are_not_shown(home: Path) -> None:
    uri = "postgresql://fraud:s3cret@db:5432/lake"
    assert without_password(uri) == "postgresql://fraud:***@db:5432/lake"
    assert without_password("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    settings = load_settings(home=home, lake={"catalog_uri": uri}, mlflow={"tracking_uri": uri})
    shown = {row["key"]: row["value"] for row in describe_settings(settings)}
    assert shown["lake.catalog_uri"] == shown["mlflow.tracking_uri"] == without_password(uri)
