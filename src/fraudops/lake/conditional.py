"""Conditional appends: optimistic concurrency for writers whose rows depend on what they read.

``Lake.append`` lets pyiceberg retry a commit that lost a race on top of the newer snapshot,
unchecked: right for the log (its rows do not depend on the table), wrong for a writer that
decided what to write from the table's content (label ingestion skips what is already stored).
``append_if_current`` commits only as the child of the snapshot the writer read; otherwise
nothing is written and the writer checks again against what landed.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.table import Table, TableProperties

from fraudops.errors import LakeError
from fraudops.lake.catalog import Lake, TableData, _catalog_errors, conform, to_arrow


class ConcurrentCommitError(LakeError):
    """Another writer committed to the table after the snapshot an append was based on: nothing
    was written; check again against what landed, then retry."""


def append_if_current(
    lake: Lake,
    table: Table,
    data: TableData,
    *,
    snapshot_properties: Mapping[str, str] | None = None,
) -> int:
    """Append ``data`` to ``table`` (as loaded: its snapshot) only if that snapshot is still the
    table's current one, in one atomic commit (the catalog checks it); else
    ConcurrentCommitError and nothing is written. Returns the rows written."""
    name = f"{lake.namespace}.{table.name()[-1]}"
    arrow = conform(to_arrow(data), table.schema(), name)
    if arrow.num_rows == 0:
        return 0
    # The append asserts the branch still points at this snapshot; no retry on top of another.
    properties = {**table.metadata.properties, TableProperties.COMMIT_NUM_RETRIES: "0"}
    pinned = Table(
        table.name(),
        table.metadata.model_copy(update={"properties": properties}),
        table.metadata_location,
        table.io,
        table.catalog,
    )
    try:
        with _catalog_errors(lake.settings):
            pinned.append(arrow, snapshot_properties=dict(snapshot_properties or {}))
    except CommitFailedException as exc:
        raise ConcurrentCommitError(f"{name} changed since it was read: {exc}") from None
    except CommitValidationError as exc:
        raise LakeError(f"could not append to {name}: {exc}") from None
    return arrow.num_rows
