"""config.storage_sections: a bare postgresql:// URI gets the installed driver."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fraudops.config import load_settings
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
