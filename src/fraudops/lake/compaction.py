"""Small data files rewritten into big ones: one commit that replaces exactly those files.

Planned per partition from a snapshot's live data files: a partition holding more than
``compact_min_files`` files smaller than 75% of the target is rewritten, its small files
bin-packed (oldest first) into groups of about ``target_file_bytes``. Each group is read, written
again with pyiceberg's own writer, and all groups are committed together as one overwrite that
deletes exactly the files read and adds exactly the files written: the rows are the same, and
the snapshot says so (``fraudops.maintenance: compact``, added-records = deleted-records), so
the aggregates' watermark walks past it (aggregates/watermark.py).

A writer that appends meanwhile is not a conflict: the commit is built again on the new
current snapshot (its appended files are kept as they are) as long as every file being replaced
is still live; if one is gone (another compaction took it) nothing is committed and the files
written are deleted. A process killed half-way leaves only files no snapshot references: the
next maintenance run removes them as orphans.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.snapshots import Operation, Snapshot

from fraudops.errors import LakeError
from fraudops.lake.maintenance_files import ManifestCache, live_data_files

log = logging.getLogger(__name__)

COMPACTION_PROPERTY = "fraudops.maintenance"
COMPACTION_VALUE = "compact"
# Aggregate tables carry their watermark in their current snapshot's summary: kept across.
CARRIED_PREFIX = "fraudops.aggregates."
SMALL_FRACTION = 0.75
COMMIT_ATTEMPTS = 6


def is_compaction(snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` only rewrote files (same rows): a reader of changes skips it."""
    summary = snapshot.summary
    if summary is None or summary.operation != Operation.OVERWRITE:
        return False
    props = summary.additional_properties
    return props.get(COMPACTION_PROPERTY) == COMPACTION_VALUE and props.get(
        "added-records"
    ) == props.get("deleted-records")


@dataclass(frozen=True)
class CompactionGroup:
    """Data files of one partition to be rewritten together into files of the target size."""

    partition: str
    files: tuple[str, ...]
    bytes: int
    records: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files": len(self.files)}


def plan_compaction(
    table: Table,
    snapshot: Snapshot | None,
    cache: ManifestCache,
    *,
    min_files: int,
    target_bytes: int,
) -> list[CompactionGroup]:
    if snapshot is None:
        return []
    small = int(target_bytes * SMALL_FRACTION)
    by_partition: dict[str, list[DataFile]] = defaultdict(list)
    specs, schema = table.specs(), table.schema()
    for f in live_data_files(table, snapshot, cache):
        if f.content != DataFileContent.DATA or f.file_size_in_bytes >= small:
            continue
        by_partition[specs[f.spec_id].partition_to_path(f.partition, schema)].append(f)
    groups: list[CompactionGroup] = []
    for partition, files in sorted(by_partition.items()):
        if len(files) <= min_files:
            continue
        groups.extend(
            CompactionGroup(
                partition=partition,
                files=tuple(f.file_path for f in bin_),
                bytes=sum(f.file_size_in_bytes for f in bin_),
                records=sum(f.record_count for f in bin_),
            )
            for bin_ in _bins(files, target_bytes)
            if len(bin_) > 1
        )
    return groups


def _bins(files: Sequence[DataFile], target_bytes: int) -> list[list[DataFile]]:
    """``files`` in order, cut into runs of at most ``target_bytes`` (a file alone may be more)."""
    bins: list[list[DataFile]] = [[]]
    size = 0
    for f in files:
        if bins[-1] and size + f.file_size_in_bytes > target_bytes:
            bins.append([])
            size = 0
        bins[-1].append(f)
        size += f.file_size_in_bytes
    return bins


@dataclass(frozen=True)
class CompactionResult:
    files_rewritten: int = 0
    files_written: int = 0
    rows: int = 0
    skipped: str | None = None  # why nothing was committed


def compact(
    load: Callable[[], Table],
    groups: Sequence[CompactionGroup],
    cache: ManifestCache,
    *,
    target_bytes: int,
) -> CompactionResult:
    """Rewrite ``groups`` and commit them in one snapshot (see the module docstring)."""
    if not groups:
        return CompactionResult()
    table = load()
    current = table.current_snapshot()
    wanted = {p for g in groups for p in g.files}
    live = {f.file_path: f for f in live_data_files(table, current, cache)} if current else {}
    if missing := sorted(wanted - live.keys()):
        return CompactionResult(skipped=f"{len(missing)} planned file(s) no longer live")
    old = [live[p] for p in sorted(wanted)]
    new = _rewrite(table, groups, live, target_bytes)
    rows = sum(f.record_count for f in old)
    if sum(f.record_count for f in new) != rows:  # never commit a rewrite that lost a row
        _remove(table, new)
        raise LakeError(f"{table.name()}: compaction wrote another row count; nothing committed")
    try:
        _commit(load, old, new)
    except (CommitFailedException, CommitValidationError) as exc:
        _remove(table, new)
        return CompactionResult(skipped=f"not committed: {exc}")
    # Any other failure: the outcome is unknown, the files stay (orphans if unreferenced).
    return CompactionResult(files_rewritten=len(old), files_written=len(new), rows=rows)


def _rewrite(
    table: Table,
    groups: Sequence[CompactionGroup],
    live: dict[str, DataFile],
    target_bytes: int,
) -> list[DataFile]:
    # pyiceberg's writer (as an append's): field ids, partition values, column statistics.
    props = {
        **table.metadata.properties,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(target_bytes),
    }
    metadata = table.metadata.model_copy(update={"properties": props})
    schema = table.schema()
    write_uuid, counter = uuid.uuid4(), itertools.count(0)
    written: list[DataFile] = []
    try:
        for group in groups:
            scan = ArrowScan(metadata, table.io, projected_schema=schema, row_filter=AlwaysTrue())
            rows: pa.Table = scan.to_table([FileScanTask(live[p]) for p in group.files])
            written.extend(
                _dataframe_to_data_files(
                    table_metadata=metadata,
                    df=rows,
                    io=table.io,
                    write_uuid=write_uuid,
                    counter=counter,
                )
            )
    except BaseException:
        _remove(table, written)
        raise
    return written


def _commit(load: Callable[[], Table], old: list[DataFile], new: list[DataFile]) -> None:
    """One overwrite: exactly ``old`` out, ``new`` in, on the freshest current snapshot."""
    for attempt in range(COMMIT_ATTEMPTS):
        table = load()
        parent = table.current_snapshot()
        carried = {
            k: v
            for k, v in (
                parent.summary.additional_properties if parent and parent.summary else {}
            ).items()
            if k.startswith(CARRIED_PREFIX)
        }
        try:
            with table.transaction() as tx:
                update = tx.update_snapshot(
                    snapshot_properties={**carried, COMPACTION_PROPERTY: COMPACTION_VALUE}
                )
                with update.overwrite() as overwrite:
                    for f in old:
                        overwrite.delete_data_file(f)
                    for f in new:
                        overwrite.append_data_file(f)
            return
        except (CommitFailedException, CommitValidationError) as exc:
            # A writer committed meanwhile (try again on its snapshot), or a file to replace is
            # gone (the next attempt's validation says so again: then give up).
            if attempt == COMMIT_ATTEMPTS - 1 or "Missing required files" in str(exc):
                raise
            log.info("maintenance: compaction of %s lost a race, retrying", table.name())


def _remove(table: Table, files: Sequence[DataFile]) -> None:
    for f in files:
        try:
            table.io.delete(f.file_path)
        except OSError:
            log.debug("could not remove %s", f.file_path, exc_info=True)
