"""Iceberg tables as Dask dataframes, and Dask dataframes appended to Iceberg tables.

Reading: pyiceberg plans the scan on the client (the row filter prunes partitions and files by
their manifests' statistics, the projection picks the columns), and each Dask partition reads one
group of the planned data files on a worker with pyiceberg's own ``ArrowScan`` — residual filter,
delete files and schema evolution handled as in a local read. No process holds the whole table.

Writing: each partition is conformed to the table's schema and written by a worker as one Parquet
file under the table's data folder (through the table's FileIO: local or S3); the client then adds
all of them to the table in one commit. A failure before the commit leaves no rows in the table
(the written files are removed).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from fraudops.lake.catalog import Lake, LakeError, conform

if TYPE_CHECKING:
    import dask.dataframe as dd
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.io import FileIO
    from pyiceberg.schema import Schema
    from pyiceberg.table import FileScanTask
    from pyiceberg.table.metadata import TableMetadata


@dataclass(frozen=True)
class _ScanPart:
    """What one worker needs to read its files: shipped to it by pickle."""

    metadata: TableMetadata
    io: FileIO
    schema: Schema
    row_filter: BooleanExpression
    tasks: tuple[FileScanTask, ...]


def read_dask(
    lake: Lake,
    name: str,
    columns: Sequence[str] | None = None,
    row_filter: str | None = None,
    *,
    partition_rows: int | None = None,
) -> dd.DataFrame:
    """Table ``name`` as a Dask dataframe: one partition per group of planned data files
    (files are grouped up to ``partition_rows`` rows, default ``compute.partition_rows``)."""
    import dask.dataframe as dd
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    scan = lake.scan(name, columns, row_filter)
    try:
        tasks = list(scan.plan_files())
    except (ValueError, TypeError) as exc:
        raise lake.scan_error(name, row_filter, exc) from None
    projected = scan.projection()
    meta = schema_to_pyarrow(projected, include_field_ids=False).empty_table().to_pandas()
    limit = partition_rows or lake.settings.compute.partition_rows
    parts = [
        _ScanPart(scan.table_metadata, scan.io, projected, scan.row_filter, group)
        for group in _group_tasks(tasks, limit)
    ]
    if not parts:  # an empty table (or a filter that prunes every file): no partition to map
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(_read_part, parts, meta=meta, enforce_metadata=False)


def _group_tasks(tasks: Sequence[FileScanTask], limit: int) -> list[tuple[FileScanTask, ...]]:
    """Consecutive tasks in groups of at most ``limit`` rows (a bigger file is a group alone)."""
    groups: list[tuple[FileScanTask, ...]] = []
    current: list[FileScanTask] = []
    rows = 0
    for task in tasks:
        count = int(task.file.record_count)
        if current and rows + count > limit:
            groups.append(tuple(current))
            current, rows = [], 0
        current.append(task)
        rows += count
    if current:
        groups.append(tuple(current))
    return groups


def _read_part(part: _ScanPart) -> pd.DataFrame:
    from pyiceberg.io.pyarrow import ArrowScan

    arrow = ArrowScan(part.metadata, part.io, part.schema, part.row_filter).to_table(part.tasks)
    return arrow.to_pandas()


# ---- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WritePart:
    io: FileIO
    schema: Schema
    table_name: str
    location: str  # the table's data folder


def append_dask(lake: Lake, name: str, frame: dd.DataFrame) -> int:
    """Append every partition of ``frame`` to table ``name`` in one commit; returns the rows.

    A partition that cannot be stored (an unknown column, a null required column) is a
    LakeError naming it, raised once every partition has finished, after the files the others
    wrote are removed: the table and its data folder are left as they were."""
    import dask

    table = lake.table(name)
    target = _WritePart(
        table.io,
        table.schema(),
        f"{lake.namespace}.{name}",
        f"{table.location().rstrip('/')}/data",
    )
    batch = uuid.uuid4().hex[:12]
    written: tuple[_Written, ...] = dask.compute(
        *[
            dask.delayed(_write_part, pure=False)(target, part, i, f"dask-{batch}-{i:05d}.parquet")
            for i, part in enumerate(frame.to_delayed())
        ]
    )
    files = [w.path for w in written if w.rows]
    if failed := [w for w in written if w.error is not None]:
        _remove(target.io, files)
        error = failed[0].error
        assert error is not None
        raise error
    total = sum(w.rows for w in written)
    if not files:
        return 0
    try:
        table.add_files(files, check_duplicate_files=False)
    except Exception as exc:
        _remove(target.io, files)  # nothing partial: the files never joined the table
        raise LakeError(f"could not append to {lake.namespace}.{name}: {exc}") from None
    return total


@dataclass(frozen=True)
class _Written:
    path: str
    rows: int
    error: LakeError | None = None


def _remove(io: FileIO, paths: Sequence[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError, FileNotFoundError):
            io.delete(path)


def _write_part(target: _WritePart, frame: pd.DataFrame, index: int, file_name: str) -> _Written:
    """One partition as one Parquet file; a partition that does not conform is returned as
    its error (not raised), so the client waits for every partition before cleaning up."""
    import pyarrow.parquet as pq

    # Written without field ids: add_files maps columns to the table's fields by name.
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        arrow = conform(arrow, target.schema, target.table_name)
    except (LakeError, pa.ArrowException) as exc:
        return _Written("", 0, LakeError(f"partition {index}: {exc} (nothing was appended)"))
    if arrow.num_rows == 0:
        return _Written("", 0)
    arrow = arrow.replace_schema_metadata(None)
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow.schema])
    path = f"{target.location}/{file_name}"
    with target.io.new_output(path).create(overwrite=False) as stream:
        pq.write_table(arrow.cast(plain), stream)
    return _Written(path, arrow.num_rows)
