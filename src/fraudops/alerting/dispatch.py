"""Decide whether a monitoring run alerts, apply the cooldown, deliver, record in ``alerts``.

Cooldown: an incident (same model version, same set of drifted features, same degradation flag;
see ``AlertSummary.incident_key``) alerted within ``alerts.cooldown_minutes`` is not alerted
again; the skip is recorded as a row with channel ``suppressed``. Only a delivered alert starts a
cooldown (through e-mail or webhook when one is configured; the log counts only when it is the
sole channel), so an incident whose deliveries all failed is alerted again on the next run.

Nothing here fails the run: deliveries never raise, and a lake that cannot be read or written is
logged and reported in the outcome (better a duplicate alert than a missed one).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from fraudops.alerting.channels import AlertChannel, Delivery, deliver
from fraudops.alerting.message import AlertMessage, AlertSummary, build_message
from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import ALERTS
from fraudops.timeutil import as_utc

logger = logging.getLogger("fraudops.alerts")

SUPPRESSED = "suppressed"
EXTERNAL_CHANNELS = ("email", "webhook")
INCIDENT_KEY = "incident_key"  # the alerts column the cooldown looks the incident up by
INCIDENT_PREFIX = "Incident: "  # the body's last line: the key of rows older than the column

Status = Literal["sent", "partial", "failed", "suppressed", "not_needed"]


@dataclass
class AlertOutcome:
    status: Status
    reason: str
    alert_id: str | None = None
    incident_key: str | None = None
    severity: str | None = None
    subject: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    suppressed_by: str | None = None  # alert_id of the earlier alert of this incident
    recorded: bool = False
    record_error: str | None = None

    @property
    def delivered(self) -> bool:
        return any(d.delivered for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["delivered"] = self.delivered
        return out


def send_alert(
    settings: Settings,
    lake: Lake,
    summary: AlertSummary,
    *,
    channels: Sequence[AlertChannel],
    now: datetime | None = None,
    test: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertOutcome:
    """Alert on a monitoring run's summary if it found drift or degradation.

    ``channels``: where it goes (``Runtime.alert_channels`` for the configured ones; a
    simulation passes its own). ``lake``: the spec's lake, for the cooldown and the record.
    ``test`` sends even without drift and skips the cooldown (``fraudops alerts test``).
    """
    if not summary.needs_alert and not test:
        return AlertOutcome("not_needed", "no data drift and no performance degradation")
    message = build_message(summary, now=as_utc(now), test=test)
    return send_message(settings, lake, message, channels=channels, test=test, sleep=sleep)


def send_message(
    settings: Settings,
    lake: Lake,
    message: AlertMessage,
    *,
    channels: Sequence[AlertChannel],
    test: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertOutcome:
    """Deliver a built alert (drift, degradation, or the skew alert of skew.py) unless its
    incident is in its cooldown, and record it; ``test`` skips the cooldown."""
    now = message.created_at
    if not test:
        previous = _last_alert(lake, settings, message, now)
        if previous is not None:
            return _suppress(lake, settings, message, previous, now)

    config = settings.alerts
    deliveries = [
        deliver(c, message, retries=config.retries, backoff_s=config.retry_backoff_s, sleep=sleep)
        for c in channels
    ]
    alert_id = uuid.uuid4().hex
    outcome = AlertOutcome(
        status=_status(deliveries),
        reason=_reason(deliveries),
        alert_id=alert_id,
        incident_key=message.incident_key,
        severity=message.severity,
        subject=message.subject,
        deliveries=deliveries,
    )
    rows = [_row(alert_id, message, now, d) for d in deliveries]
    outcome.recorded, outcome.record_error = _record(lake, rows)
    return outcome


def _status(deliveries: list[Delivery]) -> Status:
    ok = sum(d.delivered for d in deliveries)
    if deliveries and ok == len(deliveries):
        return "sent"
    return "partial" if ok else "failed"


def _reason(deliveries: list[Delivery]) -> str:
    if not deliveries:
        return "no alert channel configured"
    return "; ".join(
        f"{d.channel}: delivered" if d.delivered else f"{d.channel}: failed ({d.error})"
        for d in deliveries
    )


def _row(alert_id: str, message: AlertMessage, now: datetime, d: Delivery) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "run_id": message.run_id,
        "created_at": now,
        "channel": d.channel,
        "severity": message.severity,
        "subject": message.subject,
        "body": message.body,
        "delivered": d.delivered,
        "attempts": d.attempts,
        "error": d.error,
        INCIDENT_KEY: message.incident_key,
    }


def _record(lake: Lake, rows: list[dict[str, Any]]) -> tuple[bool, str | None]:
    if not rows:
        return False, None
    try:
        if INCIDENT_KEY not in lake.column_names(ALERTS):  # a home before the column: as before
            logger.warning(
                "%s.%s has no %s column: the cooldown reads the alert bodies (run `fraudops "
                "lake init --spec %s` to add it)",
                lake.namespace,
                ALERTS,
                INCIDENT_KEY,
                lake.spec.name,
            )
            rows = [{k: v for k, v in row.items() if k != INCIDENT_KEY} for row in rows]
        lake.append(ALERTS, rows, snapshot_properties={"fraudops.operation": "alert"})
    except LakeError as exc:
        logger.error("alert not recorded in the lake: %s", exc)
        return False, str(exc)
    return True, None


def _counting_channels(settings: Settings) -> set[str]:
    configured: set[str] = set(settings.alerts.channels)
    external = configured & set(EXTERNAL_CHANNELS)
    return external or configured


@dataclass(frozen=True)
class _Previous:
    """The earlier alert of an incident that holds the cooldown."""

    alert_id: str
    created_at: datetime


def _last_alert(
    lake: Lake, settings: Settings, message: AlertMessage, now: datetime
) -> _Previous | None:
    """The latest delivered alert of this incident within the cooldown, if any."""
    cooldown = timedelta(minutes=settings.alerts.cooldown_minutes)
    if cooldown <= timedelta(0):
        return None
    try:
        keyed = INCIDENT_KEY in lake.column_names(ALERTS)
        columns = ["alert_id", "created_at", "channel", "delivered", "body"]
        frame = lake.read_frame(ALERTS, [*columns, INCIDENT_KEY] if keyed else columns)
    except LakeError as exc:
        logger.warning("cooldown not checked (alerts unreadable), alerting anyway: %s", exc)
        return None
    if frame.empty:
        return None
    created = pd.to_datetime(frame["created_at"], utc=True)
    hits = frame[
        (created > now - cooldown)
        & (created <= now)
        & frame["delivered"].eq(True)
        & frame["channel"].isin(_counting_channels(settings))
    ]
    hits = hits[_of_incident(hits, message.incident_key)]
    if hits.empty:
        return None
    latest = hits.assign(created_at=created[hits.index]).sort_values("created_at").iloc[-1]
    return _Previous(str(latest["alert_id"]), latest["created_at"].to_pydatetime())


def _of_incident(frame: pd.DataFrame, key: str) -> pd.Series:
    """The rows of incident ``key``: by the ``incident_key`` column; a row written before the
    column (null there) by the body's last line, ``Incident: <key>``."""
    keys = frame[INCIDENT_KEY] if INCIDENT_KEY in frame else pd.Series(None, index=frame.index)
    unkeyed = keys.isna()
    marker = f"\n{INCIDENT_PREFIX}{key}\n"
    old = unkeyed & frame["body"].fillna("").str.contains(marker, regex=False)
    return (~unkeyed & keys.eq(key)) | old


def _suppress(
    lake: Lake,
    settings: Settings,
    message: AlertMessage,
    previous: _Previous,
    now: datetime,
) -> AlertOutcome:
    when = previous.created_at
    until = when + timedelta(minutes=settings.alerts.cooldown_minutes)
    reason = (
        f"same incident alerted at {when:%Y-%m-%d %H:%M:%S} UTC (alert {previous.alert_id}); "
        f"cooldown until {until:%Y-%m-%d %H:%M:%S} UTC"
    )
    logger.info("alert suppressed: %s", reason)
    outcome = AlertOutcome(
        status="suppressed",
        reason=reason,
        alert_id=uuid.uuid4().hex,
        incident_key=message.incident_key,
        severity=message.severity,
        subject=message.subject,
        suppressed_by=previous.alert_id,
    )
    row = _row(outcome.alert_id or "", message, now, Delivery(SUPPRESSED, False, 0, reason))
    outcome.recorded, outcome.record_error = _record(lake, [row])
    return outcome
