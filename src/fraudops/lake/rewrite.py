"""Change some rows of a table in place: read them, change them, overwrite them in one commit.

The read and the overwrite start from the same snapshot, and pyiceberg validates at commit that
the files holding those rows were not rewritten or removed meanwhile (a concurrent change to the
same rows): then nothing is committed and ``ConcurrentChangeError`` says so. Appends by other
writers meanwhile (new rows elsewhere) do not conflict and are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.expressions import BooleanExpression

from fraudops.errors import LakeError
from fraudops.lake.catalog import Lake, _catalog_errors, conform


class ConcurrentChangeError(LakeError):
    """Another writer changed the same rows first; nothing was written."""


def rewrite_rows(
    lake: Lake,
    name: str,
    where: BooleanExpression,
    change: Callable[[pa.Table], pa.Table],
    *,
    snapshot_properties: Mapping[str, str] | None = None,
) -> pa.Table:
    """Replace the rows of table ``name`` matching ``where`` with ``change(rows)``, atomically.

    ``change`` gets the matching rows (every column) and returns their replacement; an
    exception it raises aborts with nothing written. Returns the rows written.
    """
    table = lake.table(name)  # one metadata version for the read and the overwrite's base
    label = f"{lake.namespace}.{name}"
    with _catalog_errors(lake.settings):
        current = table.scan(row_filter=where).to_arrow()
    replacement = conform(change(current), table.schema(), label)
    try:
        with _catalog_errors(lake.settings):
            table.overwrite(
                replacement,
                overwrite_filter=where,
                snapshot_properties=dict(snapshot_properties or {}),
            )
    except (CommitFailedException, CommitValidationError) as exc:
        raise ConcurrentChangeError(
            f"{label}: the rows were changed by another writer meanwhile; nothing was "
            f"written ({exc})"
        ) from None
    return replacement
