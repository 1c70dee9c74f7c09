"""The lake: Iceberg tables per feature spec, validated loads, DuckDB queries."""

from fraudops.lake.catalog import Lake
from fraudops.lake.loader import LoadReport, load_file
from fraudops.lake.schemas import TABLES

__all__ = ["TABLES", "Lake", "LoadReport", "load_file"]
