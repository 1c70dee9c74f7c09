"""The Lookup page's transaction-id index: the one label ingestion uses (``labels.txindex``),
persisted under the home, so the dashboard's start-up loads it instead of reading the table."""

from __future__ import annotations

from fraudops.labels.txindex import TransactionIndex, index_for, indexed_rows, lake_index

__all__ = ["TransactionIndex", "index_for", "indexed_rows", "lake_index"]
