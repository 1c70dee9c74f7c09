"""Derived features computed from raw transactions: offline (point in time over the lake's
history: offline.py over windows.py's kernels, lake_source.py reading the lake) and online
(incremental state per key, online*.py), equal to the last bit."""

from fraudops.features.lake_source import (
    derive_from_lake,
    export_columns,
    history_seconds,
    with_derived,
)
from fraudops.features.offline import Derived, derive, derive_all, needed_columns

__all__ = [
    "Derived",
    "derive",
    "derive_all",
    "derive_from_lake",
    "export_columns",
    "history_seconds",
    "needed_columns",
    "with_derived",
]
