"""Derived features computed from raw transactions: offline (point in time over the lake's
history, offline.py) and online (incremental state per key, online*.py), equal to the last bit."""
