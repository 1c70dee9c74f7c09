"""Where an aggregate table stands: the source snapshots it has folded in.

The watermark lives in the summary properties of the aggregate table's own snapshots, so it is
committed atomically with the rows it describes. ``new_appends`` walks the source table's
snapshot lineage (pyiceberg's snapshot API) from its current snapshot back to the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot, ancestors_of

from fraudops.errors import LakeError
from fraudops.lake.compaction import is_compaction

PREFIX = "fraudops.aggregates."
KIND = PREFIX + "kind"  # refresh | rebuild | compact | days
FOLDED_ROWS = PREFIX + "folded-rows"


def snapshot_key(source: str) -> str:
    return f"{PREFIX}{source}-snapshot"


def uuid_key(source: str) -> str:
    return f"{PREFIX}{source}-uuid"


class AggregatesStaleError(LakeError):
    """The aggregates cannot be brought up to date incrementally: rebuild them."""


@dataclass(frozen=True)
class Watermark:
    """The last ``source`` snapshot folded into an aggregate table (None: never refreshed)."""

    snapshot_id: int | None
    table_uuid: str | None
    folded_rows: int = 0

    @classmethod
    def of(cls, table: Table, source: str) -> Watermark:
        current = table.current_snapshot()
        if current is None or current.summary is None:
            return cls(None, None, 0)
        props = current.summary.additional_properties
        snapshot = props.get(snapshot_key(source))
        return cls(
            int(snapshot) if snapshot else None,
            props.get(uuid_key(source)),
            int(props.get(FOLDED_ROWS, "0")),
        )


def rebuild_hint(table: str) -> str:
    return f"run `fraudops lake aggregates --rebuild` to recompute {table} from scratch"


def new_appends(source: Table, mark: Watermark, aggregate: str) -> list[Snapshot]:
    """The source's snapshots after ``mark`` up to its current one, oldest first.

    Raises AggregatesStaleError when the watermark is not an ancestor of the current snapshot
    (the table was rewritten, its history expired, or it is another table) or when a snapshot
    since deleted or overwrote rows (counts already folded in would be wrong).
    """
    name = source.name()[-1]
    uuid = str(source.metadata.table_uuid)
    if mark.table_uuid is not None and mark.table_uuid != uuid:
        raise AggregatesStaleError(
            f"{aggregate} was built from another {name} table ({mark.table_uuid}, now {uuid}): "
            + rebuild_hint(aggregate)
        )
    current = source.current_snapshot()
    if current is None or current.snapshot_id == mark.snapshot_id:
        return []
    chain: list[Snapshot] = []
    for snapshot in ancestors_of(current, source.metadata):
        if snapshot.snapshot_id == mark.snapshot_id:
            break
        chain.append(snapshot)
    else:
        # An expired watermark is fine while its child is still there (nothing was lost).
        reached = bool(chain) and chain[-1].parent_snapshot_id == mark.snapshot_id
        if mark.snapshot_id is not None and not reached:
            raise AggregatesStaleError(
                f"{aggregate} folded in {name} snapshot {mark.snapshot_id}, which is no longer in "
                f"{name}'s history (the table was rewritten or its snapshots expired): "
                + rebuild_hint(aggregate)
            )
    for snapshot in chain:
        operation = snapshot.summary.operation if snapshot.summary else None
        # A compaction (lake maintenance) rewrote files, not rows: nothing to fold, nothing lost.
        if operation in (Operation.DELETE, Operation.OVERWRITE) and not is_compaction(snapshot):
            raise AggregatesStaleError(
                f"{name} snapshot {snapshot.snapshot_id} ({operation.value}) removed or rewrote "
                f"rows after {aggregate} folded them in: " + rebuild_hint(aggregate)
            )
    chain.reverse()
    return chain
