"""The lake: Iceberg tables per feature spec, validated loads, DuckDB queries."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake
    from fraudops.lake.loader import LoadReport, load_file
    from fraudops.lake.schemas import TABLES

__all__ = ["TABLES", "Lake", "LoadReport", "load_file"]

# Resolved on first use (PEP 562), so that importing one module of the package — batch scoring
# imports ``fraudops.lake.validation`` — does not import pyiceberg's catalog and SQLAlchemy (~1 s).
_HOMES = {
    "Lake": "fraudops.lake.catalog",
    "LoadReport": "fraudops.lake.loader",
    "load_file": "fraudops.lake.loader",
    "TABLES": "fraudops.lake.schemas",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
