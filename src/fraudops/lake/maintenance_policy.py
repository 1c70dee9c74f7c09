"""What maintenance keeps (from ``maintenance.*`` settings) and the table properties that make
pyiceberg itself keep the metadata small on every commit.

pyiceberg 0.12 honours, at commit: ``write.metadata.delete-after-commit.enabled`` with
``write.metadata.previous-versions-max`` (the older metadata files are deleted by the writer
that commits), and ``commit.manifest-merge.enabled`` with ``commit.manifest.min-count-to-merge``
(an append merges the small manifests into one once that many pile up). They are set when
``fraudops lake init`` creates a table, and added to tables an older release created (by
``lake init`` and by every maintenance run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from fraudops.config import Settings

# An append merges the manifests once this many small ones pile up (pyiceberg's default: 100,
# so every query would plan over up to 100 manifests).
MANIFEST_MIN_MERGE = 16
PROPERTY_ATTEMPTS = 4


@dataclass(frozen=True)
class MaintenancePolicy:
    """The knobs of one maintenance run (see ``config/maintenance_sections.py``)."""

    snapshot_max_age_s: float = 86_400
    keep_snapshots: int = 500
    keep_metadata_files: int = 100
    grace_s: float = 900
    compact_min_files: int = 32
    target_file_bytes: int = 128 << 20

    @classmethod
    def from_settings(cls, settings: Settings) -> MaintenancePolicy:
        m = settings.maintenance
        return cls(
            snapshot_max_age_s=m.snapshot_max_age_s,
            keep_snapshots=m.keep_snapshots,
            keep_metadata_files=m.keep_metadata_files,
            grace_s=m.grace_s,
            compact_min_files=m.compact_min_files,
            target_file_bytes=int(m.target_file_mb * (1 << 20)),
        )

    def table_properties(self) -> dict[str, str]:
        return {
            "write.metadata.delete-after-commit.enabled": "true",
            "write.metadata.previous-versions-max": str(self.keep_metadata_files),
            "commit.manifest-merge.enabled": "true",
            "commit.manifest.min-count-to-merge": str(MANIFEST_MIN_MERGE),
        }


def maintenance_properties(settings: Settings) -> dict[str, str]:
    """The table properties every fraudops table gets (at creation, and added later)."""
    return MaintenancePolicy.from_settings(settings).table_properties()


def properties_to_set(table: Table, wanted: Mapping[str, str]) -> dict[str, str]:
    """The properties of ``wanted`` that ``table`` lacks or holds with another value."""
    have = table.metadata.properties
    return {k: v for k, v in wanted.items() if have.get(k) != v}


def set_properties(load: Callable[[], Table], wanted: Mapping[str, str]) -> list[str]:
    """Set on the table ``load`` returns the properties of ``wanted`` it lacks; their names.

    Metadata only (no data file touched). A commit that lost a race with a writer is tried
    again on the fresh table: setting properties never conflicts with appended rows."""
    for attempt in range(PROPERTY_ATTEMPTS):
        table = load()
        missing = properties_to_set(table, wanted)
        if not missing:
            return []
        try:
            with table.transaction() as tx:
                tx.set_properties(missing)
        except CommitFailedException:
            if attempt == PROPERTY_ATTEMPTS - 1:
                raise
            continue
        return sorted(missing)
    return []


def add_missing_properties(
    loads: Mapping[str, Callable[[], Table]], wanted: Mapping[str, str]
) -> dict[str, list[str]]:
    """``set_properties`` on each table of ``loads``; the names set, per table that lacked some."""
    return {name: keys for name, load in loads.items() if (keys := set_properties(load, wanted))}
