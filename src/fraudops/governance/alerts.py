"""Acknowledging an alert: who saw it, when, and what they make of it.

Recorded as columns of the alert's own rows (``acknowledged_at``, ``acknowledged_by``,
``ack_note``), set by one pyiceberg overwrite of exactly those rows (``lake.rewrite``), rather
than as an append-only record in another table: the feed reads one table, and the overwrite's
commit-time validation makes the acknowledgement happen once: of two people acknowledging the
same alert at the same moment, the second commit finds the rows rewritten and is refused, where
two appends would both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
from pyiceberg.expressions import EqualTo

from fraudops.alerting import ACK_COLUMNS
from fraudops.governance.errors import (
    MAX_ACTOR,
    ActionConflict,
    ActionTargetNotFound,
    required_text,
)
from fraudops.lake.rewrite import ConcurrentChangeError, rewrite_rows
from fraudops.lake.schemas import ALERTS

if TYPE_CHECKING:
    from fraudops.runtime import Runtime


@dataclass(frozen=True)
class AlertAck:
    """An alert as acknowledged: every row of it (one per channel) carries these."""

    alert_id: str
    acknowledged_at: datetime
    acknowledged_by: str
    note: str
    subject: str | None
    severity: str | None
    channels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "acknowledged_at": self.acknowledged_at.isoformat(),
            "acknowledged_by": self.acknowledged_by,
            "note": self.note,
            "subject": self.subject,
            "severity": self.severity,
            "channels": list(self.channels),
        }


def acknowledge_alert(runtime: Runtime, alert_id: str, *, actor: str, note: str) -> AlertAck:
    """Mark alert ``alert_id`` acknowledged by ``actor`` now, with ``note``.

    ActionInputError: empty alert id, actor or note; ActionTargetNotFound: no such alert;
    ActionConflict: already acknowledged (by whom, when); SchemaOutdatedError: the alerts table
    predates the acknowledgement columns (``fraudops lake init``). Nothing is written when it
    raises.
    """
    alert_id = required_text("alert_id", alert_id, MAX_ACTOR)
    actor = required_text("actor", actor, MAX_ACTOR)
    note = required_text("note", note)
    lake = runtime.lake()
    lake.require_columns(ALERTS, ACK_COLUMNS)
    now = datetime.now(UTC)
    where = EqualTo(term="alert_id", value=alert_id)

    def acknowledged(rows: pa.Table) -> pa.Table:
        _check_open(rows, alert_id, f"{lake.namespace}.{ALERTS}")
        records = rows.to_pylist()
        for record in records:
            record.update(acknowledged_at=now, acknowledged_by=actor, ack_note=note)
        return pa.Table.from_pylist(records, schema=rows.schema)

    try:
        written = rewrite_rows(
            lake, ALERTS, where, acknowledged, snapshot_properties={"fraudops.operation": "ack"}
        )
    except ConcurrentChangeError:
        # Someone else changed these rows first: most likely the same acknowledgement.
        _check_open(lake.table(ALERTS).scan(row_filter=where).to_arrow(), alert_id, "")
        raise
    first = written.slice(0, 1).to_pylist()[0]
    return AlertAck(
        alert_id=alert_id,
        acknowledged_at=now,
        acknowledged_by=actor,
        note=note,
        subject=first["subject"],
        severity=first["severity"],
        channels=tuple(str(c) for c in written.column("channel").to_pylist()),
    )


def _check_open(rows: pa.Table, alert_id: str, table: str) -> None:
    """ActionTargetNotFound when there are no rows, ActionConflict when they are acknowledged."""
    if rows.num_rows == 0:
        raise ActionTargetNotFound(
            f"no alert {alert_id!r} in {table or 'the alerts table'} "
            "(`fraudops alerts list` shows the alert ids)"
        )
    done = rows.filter(rows.column("acknowledged_at").is_valid())
    if done.num_rows:
        first = done.slice(0, 1).to_pylist()[0]
        when = pd.Timestamp(first["acknowledged_at"]).tz_convert("UTC")
        raise ActionConflict(
            f"alert {alert_id} was already acknowledged by {first['acknowledged_by']} at "
            f"{when:%Y-%m-%d %H:%M:%S} UTC ({first['ack_note']})"
        )
