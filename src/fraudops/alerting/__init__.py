"""Alerts on drift, degradation and training-serving skew: one message, several channels, a
cooldown, a record, the feed with each alert's acknowledgement (written by
``fraudops.governance``)."""

from fraudops.alerting.channels import (
    AlertChannel,
    Delivery,
    EmailChannel,
    LogChannel,
    WebhookChannel,
    build_channels,
    deliver,
)
from fraudops.alerting.dispatch import AlertOutcome, send_alert
from fraudops.alerting.feed import ACK_COLUMNS, list_alerts
from fraudops.alerting.message import AlertMessage, AlertSummary, make_summary, parse_summary
from fraudops.alerting.skew import SkewSummary, send_skew_alert

__all__ = [
    "ACK_COLUMNS",
    "AlertChannel",
    "AlertMessage",
    "AlertOutcome",
    "AlertSummary",
    "Delivery",
    "EmailChannel",
    "LogChannel",
    "SkewSummary",
    "WebhookChannel",
    "build_channels",
    "deliver",
    "list_alerts",
    "make_summary",
    "parse_summary",
    "send_alert",
    "send_skew_alert",
]
