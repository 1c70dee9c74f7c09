"""Alerts on drift and degradation: one message, several channels, a cooldown, a record."""

from fraudops.alerting.channels import (
    AlertChannel,
    Delivery,
    EmailChannel,
    LogChannel,
    WebhookChannel,
    build_channels,
    deliver,
)
from fraudops.alerting.dispatch import AlertOutcome, list_alerts, send_alert
from fraudops.alerting.message import AlertMessage, AlertSummary, make_summary, parse_summary

__all__ = [
    "AlertChannel",
    "AlertMessage",
    "AlertOutcome",
    "AlertSummary",
    "Delivery",
    "EmailChannel",
    "LogChannel",
    "WebhookChannel",
    "build_channels",
    "deliver",
    "list_alerts",
    "make_summary",
    "parse_summary",
    "send_alert",
]
