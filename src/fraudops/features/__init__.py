"""Derived features computed from the transactions' history: the offline, point-in-time engine
(offline.py over windows.py's kernels) and its lake reader (lake_source.py)."""

from fraudops.features.lake_source import (
    derive_from_lake,
    export_columns,
    history_seconds,
    with_derived,
)
from fraudops.features.offline import derive, needed_columns

__all__ = [
    "derive",
    "derive_from_lake",
    "export_columns",
    "history_seconds",
    "needed_columns",
    "with_derived",
]
