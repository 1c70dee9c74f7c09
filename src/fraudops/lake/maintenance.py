"""Maintenance of the lake's tables: what is kept, and one planner for every run.

Per table, one run (``fraudops lake maintain``, or on its own every ``maintenance.interval_s`` in
the process that writes the table — see ``maintenance_auto.py``):

1. the maintenance table properties are set where missing (``maintenance_policy.py``): from
   then on pyiceberg deletes old metadata files after each commit and merges manifests;
2. small data files are compacted (``compaction.py``);
3. snapshots are expired: those older than ``snapshot_max_age_s`` or beyond the newest
   ``keep_snapshots`` (whichever keeps fewer), never the current one, nor one replaced less than
   ``grace_s`` ago (a running scan may still read it), nor the aggregates' watermark snapshot of
   ``predictions`` / ``labels`` and those after it (the next refresh reads them);
4. orphan files are deleted: under the table's folders, referenced by no kept snapshot nor kept
   metadata file, and older than ``grace_s`` (so never one a concurrent commit is writing).

``plan_table`` decides all of it from the table as it is; ``--dry-run`` shows that plan and the
automatic run carries out that same plan (``apply_plan``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import ancestors_of

from fraudops.errors import LakeError
from fraudops.lake.catalog import Lake
from fraudops.lake.compaction import CompactionGroup, compact, plan_compaction
from fraudops.lake.maintenance_files import (
    ManifestCache,
    StoredFile,
    current_metadata_bytes,
    delete_files,
    referenced_paths,
    stored_files,
)
from fraudops.lake.maintenance_policy import MaintenancePolicy, properties_to_set, set_properties
from fraudops.lake.schemas import (
    LABEL_INGESTS,
    LABEL_STATS,
    LABELS,
    PREDICTION_STATS,
    PREDICTIONS,
    TABLES,
)

log = logging.getLogger(__name__)

# Who maintains what on its own: the process that writes it.
LOG_TABLES = (PREDICTIONS, PREDICTION_STATS)  # the log writer / Redis consumer
LABEL_TABLES = (LABELS, LABEL_STATS, LABEL_INGESTS)  # label ingestion
SCHEDULED_TABLES = tuple(t for t in TABLES if t not in LOG_TABLES + LABEL_TABLES)  # scheduler
# The aggregate tables that record (aggregates/watermark.py) the source snapshot they folded in.
WATERMARK_READERS = {PREDICTIONS: (PREDICTION_STATS, LABEL_STATS), LABELS: (LABEL_STATS,)}
EXPIRE_ATTEMPTS = 4


def watermark_key(source: str) -> str:
    """The snapshot-summary key of an aggregate's watermark on ``source`` (= watermark.py's)."""
    return f"fraudops.aggregates.{source}-snapshot"


@dataclass(frozen=True)
class TablePlan:
    """What one run will do to one table, decided from the table as it was at ``planned_at``."""

    table: str
    planned_at: float
    snapshot_id: int | None  # current when planned
    snapshots: int
    properties: dict[str, str]  # to set
    expire: tuple[int, ...]  # snapshot ids
    pinned: tuple[int, ...]  # kept for the aggregates' next refresh
    compact: tuple[CompactionGroup, ...]
    orphans: tuple[StoredFile, ...]
    files: int  # under the table's folders
    bytes: int
    metadata_file_bytes: int  # the current metadata file

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "snapshot_id": self.snapshot_id,
            "snapshots": self.snapshots,
            "properties": dict(self.properties),
            "expire": list(self.expire),
            "pinned": len(self.pinned),
            "compact": [g.to_dict() for g in self.compact],
            "orphans": sorted(f.path for f in self.orphans),
            "orphan_bytes": sum(f.size for f in self.orphans),
            "files": self.files,
            "bytes": self.bytes,
            "metadata_file_bytes": self.metadata_file_bytes,
        }


@dataclass
class TableMaintenance:
    """What one run did to one table (with ``dry_run``: what it would do, nothing done)."""

    table: str
    dry_run: bool
    plan: TablePlan | None = None
    properties_set: list[str] = field(default_factory=list)
    snapshots_expired: int = 0
    data_files_rewritten: int = 0
    data_files_written: int = 0
    metadata_files_removed: int = 0  # orphans under metadata/ (old metadata, manifests, lists)
    data_files_removed: int = 0  # orphans under data/
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def files_removed(self) -> int:
        return self.metadata_files_removed + self.data_files_removed

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "plan"}
        out["files_removed"] = self.files_removed
        out["plan"] = self.plan.to_dict() if self.plan is not None else None
        return out


# ---- the plan ------------------------------------------------------------------------------


def plan_table(
    lake: Lake,
    name: str,
    policy: MaintenancePolicy,
    *,
    now: float | None = None,
    cache: ManifestCache | None = None,
) -> TablePlan:
    """The one planner: what a run does to table ``name`` now (the dry run shows exactly it)."""
    now = time.time() if now is None else now
    cache = cache or ManifestCache()
    table = lake.table(name)
    metadata = table.metadata
    current = table.current_snapshot()
    pinned = _pinned(lake, name, table)
    expire = plan_expiry(metadata, policy, now_ms=int(now * 1000), pinned=pinned)
    kept = [s for s in metadata.snapshots if s.snapshot_id not in set(expire)]
    referenced = referenced_paths(table, kept, cache)
    stored = stored_files(table)
    cutoff = now - policy.grace_s
    orphans = tuple(f for f in stored if f.path not in referenced and f.mtime_s < cutoff)
    groups = plan_compaction(
        table,
        current,
        cache,
        min_files=policy.compact_min_files,
        target_bytes=policy.target_file_bytes,
    )
    return TablePlan(
        table=name,
        planned_at=now,
        snapshot_id=current.snapshot_id if current else None,
        snapshots=len(metadata.snapshots),
        properties=properties_to_set(table, policy.table_properties()),
        expire=tuple(expire),
        pinned=tuple(sorted(pinned)),
        compact=tuple(groups),
        orphans=orphans,
        files=len(stored),
        bytes=sum(f.size for f in stored),
        metadata_file_bytes=current_metadata_bytes(table, stored),
    )


def plan_expiry(
    metadata: TableMetadata, policy: MaintenancePolicy, *, now_ms: int, pinned: set[int]
) -> list[int]:
    """The snapshots to expire (oldest first), see the module docstring."""
    ordered = sorted(metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    protected = {ref.snapshot_id for ref in metadata.refs.values()} | pinned
    if metadata.current_snapshot_id is not None:
        protected.add(metadata.current_snapshot_id)
    newest = {s.snapshot_id for s in ordered[-policy.keep_snapshots :]}
    too_old = now_ms - int(policy.snapshot_max_age_s * 1000)
    still_read = now_ms - int(policy.grace_s * 1000)
    expire = []
    for snapshot, successor in itertools.pairwise(ordered):
        if snapshot.snapshot_id in protected or successor.timestamp_ms > still_read:
            continue  # current, a branch or tag, a watermark's, or replaced too recently
        if snapshot.timestamp_ms < too_old or snapshot.snapshot_id not in newest:
            expire.append(snapshot.snapshot_id)
    return expire


def _pinned(lake: Lake, name: str, table: Table) -> set[int]:
    """The source snapshots from each aggregate's watermark up to the current one."""
    current = table.current_snapshot()
    if current is None:
        return set()
    pinned: set[int] = set()
    for reader in WATERMARK_READERS.get(name, ()):
        if not lake.exists(reader):
            continue
        head = lake.table(reader).current_snapshot()
        value = (
            head.summary.additional_properties.get(watermark_key(name))
            if head and head.summary
            else None
        )
        if not value or table.metadata.snapshot_by_id(int(value)) is None:
            continue  # never refreshed, or stale already (a rebuild reads the current snapshot)
        for snapshot in ancestors_of(current, table.metadata):
            pinned.add(snapshot.snapshot_id)
            if snapshot.snapshot_id == int(value):
                break
    return pinned


# ---- carrying it out -----------------------------------------------------------------------


def apply_plan(
    lake: Lake, plan: TablePlan, policy: MaintenancePolicy, cache: ManifestCache | None = None
) -> TableMaintenance:
    """Carry out ``plan``: properties, compaction, expiry, then orphans (only once the expiry
    committed: a snapshot that stayed still needs its files)."""
    started = time.perf_counter()
    cache = cache or ManifestCache()
    load = partial(lake.table, plan.table)
    done = TableMaintenance(
        plan.table, False, plan, files_before=plan.files, bytes_before=plan.bytes
    )
    try:
        done.properties_set = set_properties(load, plan.properties) if plan.properties else []
    except (CommitFailedException, LakeError) as exc:
        done.errors.append(f"properties: {exc}")
    try:
        compacted = compact(load, plan.compact, cache, target_bytes=policy.target_file_bytes)
        done.data_files_rewritten = compacted.files_rewritten
        done.data_files_written = compacted.files_written
        if compacted.skipped:
            done.errors.append(f"compaction: {compacted.skipped}")
    except (LakeError, OSError) as exc:
        done.errors.append(f"compaction: {exc}")
    try:
        done.snapshots_expired = expire_snapshots(load, plan.expire)
        expired = True
    except (CommitFailedException, LakeError, ValueError) as exc:
        done.errors.append(f"snapshot expiry: {exc}")
        expired = False
    if expired and plan.orphans:
        table = load()
        in_metadata = [f for f in plan.orphans if f.folder == "metadata"]
        done.metadata_files_removed = delete_files(table, in_metadata)
        done.data_files_removed = delete_files(
            table, [f for f in plan.orphans if f.folder != "metadata"]
        )
    after = stored_files(load())
    done.files_after, done.bytes_after = len(after), sum(f.size for f in after)
    done.seconds = round(time.perf_counter() - started, 3)
    return done


def expire_snapshots(load: Any, snapshot_ids: Sequence[int]) -> int:
    """Expire ``snapshot_ids`` (those still there) with pyiceberg's expire-snapshots; how many.

    The removal is applied by the catalog to its freshest metadata, so a commit made meanwhile
    is kept; one that lost the catalog's race is tried again."""
    if not snapshot_ids:
        return 0
    for attempt in range(EXPIRE_ATTEMPTS):
        table: Table = load()
        present = [i for i in snapshot_ids if table.metadata.snapshot_by_id(i) is not None]
        if not present:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(present).commit()
        except CommitFailedException:
            if attempt == EXPIRE_ATTEMPTS - 1:
                raise
            continue
        return len(present)
    return 0


# ---- a run over several tables ----------------------------------------------------------------


def maintain(
    lake: Lake,
    tables: Sequence[str],
    policy: MaintenancePolicy,
    *,
    dry_run: bool = False,
    now: float | None = None,
    cache: ManifestCache | None = None,
) -> list[TableMaintenance]:
    """Plan (and unless ``dry_run`` carry out) maintenance of each of ``tables`` that exists.

    A table that fails is reported with its error; the others go on."""
    cache = cache or ManifestCache()
    results = []
    for name in tables:
        try:
            if not lake.exists(name):
                continue
            plan = plan_table(lake, name, policy, now=now, cache=cache)
        except (LakeError, OSError) as exc:
            results.append(TableMaintenance(name, dry_run, errors=[f"planning: {exc}"]))
            continue
        if dry_run:
            results.append(
                TableMaintenance(
                    name,
                    True,
                    plan,
                    files_before=plan.files,
                    bytes_before=plan.bytes,
                    files_after=plan.files,
                    bytes_after=plan.bytes,
                )
            )
            continue
        try:
            results.append(apply_plan(lake, plan, policy, cache))
        except (LakeError, OSError) as exc:
            results.append(TableMaintenance(name, False, plan, errors=[str(exc)]))
    cache.retain_used()  # what expired snapshots and rewritten manifests needed goes
    return results
