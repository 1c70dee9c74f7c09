"""Settings of the lake's maintenance (``fraudops lake maintain``, lake/maintenance.py)."""

from __future__ import annotations

from pydantic import Field

from fraudops.config.base import Section


class MaintenanceSettings(Section):
    """What is kept of every table fraudops writes, and how often the writers tidy up."""

    enabled: bool = Field(
        True,
        description="Run maintenance on its own in the processes that write the tables (the "
        "log writer, label ingestion, the scheduler); `lake maintain` works either way.",
    )
    interval_s: float = Field(300, gt=0, description="Seconds between two automatic runs.")
    snapshot_max_age_s: float = Field(
        86_400,
        gt=0,
        description="Snapshots older than this are expired (time travel reaches back this far "
        "at most).",
    )
    keep_snapshots: int = Field(
        500, ge=1, description="At most this many newest snapshots are kept per table."
    )
    keep_metadata_files: int = Field(
        100, ge=1, description="Previous metadata files kept per table (older ones deleted)."
    )
    grace_s: float = Field(
        900,
        ge=0,
        description="Nothing younger is removed: a snapshot replaced less than this long ago "
        "(a running scan may read it), a file written less than this long ago (a commit may "
        "be writing it).",
    )
    compact_min_files: int = Field(
        32,
        ge=2,
        description="A partition with more small data files than this is compacted.",
    )
    target_file_mb: float = Field(
        128,
        gt=0,
        description="Size of the data files compaction writes (files this size or "
        "75% of it are left alone).",
    )
    keep_reports_days: float = Field(
        90,
        gt=0,
        description="Monitoring reports and run summaries under <home>/reports older than this "
        "are deleted (the lake's rows about them are kept).",
    )
