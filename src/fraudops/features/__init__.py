"""Derived features computed from the transactions' history: the offline, point-in-time engine
(offline.py over windows.py's kernels) and its lake reader (lake_source.py)."""

from fraudops.features.offline import derive, needed_columns

__all__ = ["derive", "needed_columns"]
