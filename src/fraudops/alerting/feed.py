"""The alert feed: the latest rows of ``alerts``, with who acknowledged each alert and when.

An alert is one ``alert_id`` with one row per channel; an acknowledgement is set on all its rows
(``fraudops.governance.acknowledge_alert``). A table created before the acknowledgement columns
reads with them null.
"""

from __future__ import annotations

from typing import Any

from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import ALERTS

ACK_COLUMNS = ("acknowledged_at", "acknowledged_by", "ack_note")
FEED_COLUMNS = (
    "created_at",
    "alert_id",
    "run_id",
    "channel",
    "severity",
    "delivered",
    "attempts",
    "subject",
    "error",
    *ACK_COLUMNS,
)


def list_alerts(lake: Lake, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` rows of ``alerts``, newest first (body left out): JSON-ready rows,
    each with ``acknowledged_at`` / ``acknowledged_by`` / ``ack_note`` (None: not acknowledged)."""
    have = set(lake.column_names(ALERTS))
    frame = lake.read_frame(ALERTS, [c for c in FEED_COLUMNS if c in have])
    for column in FEED_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = frame.sort_values("created_at", ascending=False, kind="stable").head(limit)
    clean = frame[list(FEED_COLUMNS)].astype(object).where(frame.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in clean.to_dict("records")]
