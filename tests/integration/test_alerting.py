"""Alerts through a real SMTP server (aiosmtpd) and a real HTTP receiver, recorded in the lake."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from typer.testing import CliRunner

from fraudops.alerting import AlertOutcome, LogChannel, list_alerts, parse_summary, send_alert
from fraudops.cli import app
from fraudops.config import Settings, load_settings
from fraudops.lake import Lake
from fraudops.lake.schemas import ALERTS
from fraudops.runtime import Runtime

NOW = datetime(2026, 2, 24, 2, 0, 15, tzinfo=UTC)
SUMMARY: dict[str, Any] = {
    "run_id": "run-1",
    "as_of": "2026-02-24T02:00:00+00:00",
    "model_name": "fraudops-transactions30",
    "model_version": "3",
    "features_analyzed": 30,
    "drifted_features": [
        ("transaction_amount", 0.4123, 0.0012, "high"),
        ("distance_from_home_km", 0.2871, 0.0089, "high"),
    ],
    "performance": {"roc_auc": 0.5713, "baseline_roc_auc": 0.92, "degradation_pct": 37.9},
    "data_drift_detected": True,
    "model_drift_detected": True,
    "reports": {"data drift": "/reports/data_drift_run-1.html"},
}


def alert(settings: Settings, summary: dict[str, Any], **options: Any) -> AlertOutcome:
    """A summary as a monitoring run records it (JSON), through the configured channels."""
    with Runtime(settings) as runtime:
        return send_alert(
            settings,
            runtime.lake(),
            parse_summary(summary),
            channels=runtime.alert_channels,
            **options,
        )


def alerts(settings: Settings) -> list[dict[str, Any]]:
    with Runtime(settings) as runtime:
        return list_alerts(runtime.lake())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ops", b"s3cret")
    # handled=False: the server itself answers 535 to a refused login.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=check_login,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Receiver:
    """A Slack-style webhook receiver: records each POSTed JSON body, answers ``status``."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.payloads.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status == 200 else b"nope")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def make_settings(home: Path, **alerts: Any) -> Settings:
    settings = load_settings(home=home, alerts={"retry_backoff_s": 0, **alerts})
    with Lake.open(settings) as lake:
        lake.init()
    return settings


def test_alert_reaches_smtp_and_webhook_then_the_cooldown_holds(
    home: Path, smtp: tuple[Inbox, int], webhook: Receiver
) -> None:
    inbox, port = smtp
    settings = make_settings(
        home,
        channels=["log", "email", "webhook"],
        smtp_port=port,
        smtp_user="ops",
        smtp_password="s3cret",
        email_from="fraudops@example.org",
        email_to=["ops@example.org", "risk@example.org"],
        webhook_url=webhook.url,
        cooldown_minutes=360,
    )

    first = alert(settings, SUMMARY, now=NOW)
    assert first.status == "sent", first.reason
    assert [(d.channel, d.delivered, d.attempts) for d in first.deliveries] == [
        ("log", True, 1),
        ("email", True, 1),
        ("webhook", True, 1),
    ]

    # The e-mail: seed 000's alert, with the figures of this run.
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert inbox.recipients[0] == ["ops@example.org", "risk@example.org"]
    assert mail["Subject"] == (
        "[fraudops] CRITICAL ML model drift alert: fraudops-transactions30 version 3: "
        "data drift in 2 features, ROC-AUC down 37.9%"
    )
    assert mail["From"] == "fraudops@example.org"
    body = mail.get_content()
    for line in (
        "ML MODEL DRIFT ALERT",
        "Time: 2026-02-24 02:00:15 UTC",
        "🔴 DATA DRIFT DETECTED (PSI / KS test against the training baseline)",
        "Drifted Features: 2 (6.7%)",
        "- transaction_amount: psi=0.4123, ks_pvalue=0.0012, severity=high",
        "- distance_from_home_km: psi=0.2871, ks_pvalue=0.0089, severity=high",
        "🔴 MODEL PERFORMANCE DRIFT DETECTED (ROC-AUC against the baseline)",
        "Baseline ROC-AUC: 0.9200",
        "Current ROC-AUC: 0.5713",
        "Degradation: 0.3487 (37.9%)",
        "RECOMMENDED ACTIONS:",
        "3. Consider retraining with recent data",
        "- data drift: /reports/data_drift_run-1.html",
    ):
        assert line in body.splitlines(), line

    # The webhook: Slack's {text, blocks} with the same content.
    assert len(webhook.payloads) == 1
    payload = webhook.payloads[0]
    assert payload["text"] == mail["Subject"]
    sections = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert "- transaction_amount: psi=0.4123, ks_pvalue=0.0012, severity=high" in sections
    assert "Degradation: 0.3487 (37.9%)" in sections
    assert "1. Review the drift and performance reports" in sections

    # One `alerts` row per channel with its delivery result.
    rows = alerts(settings)
    assert sorted((r["channel"], r["delivered"], r["attempts"]) for r in rows) == [
        ("email", True, 1),
        ("log", True, 1),
        ("webhook", True, 1),
    ]
    assert {r["alert_id"] for r in rows} == {first.alert_id}
    assert {r["severity"] for r in rows} == {"critical"}
    assert {r["run_id"] for r in rows} == {"run-1"}

    # The next run, same incident, within the cooldown: nothing sent, the skip recorded.
    again = alert(settings, {**SUMMARY, "run_id": "run-2"}, now=NOW + timedelta(hours=1))
    assert again.status == "suppressed"
    assert again.suppressed_by == first.alert_id
    assert again.deliveries == []
    assert "cooldown until 2026-02-24 08:00:15 UTC" in again.reason
    assert len(inbox.messages) == 1
    assert len(webhook.payloads) == 1
    latest = alerts(settings)[0]
    assert (latest["run_id"], latest["channel"], latest["delivered"], latest["attempts"]) == (
        "run-2",
        "suppressed",
        False,
        0,
    )

    # A different incident (performance recovered, same drifted features) alerts at once.
    changed = {**SUMMARY, "run_id": "run-3", "model_drift_detected": False}
    assert alert(settings, changed, now=NOW + timedelta(hours=2)).status == "sent"
    assert len(inbox.messages) == 2

    # After the cooldown the original incident alerts again.
    later = alert(settings, SUMMARY, now=NOW + timedelta(hours=6, minutes=1))
    assert later.status == "sent"
    assert len(inbox.messages) == 3
    assert len(webhook.payloads) == 3


def test_no_drift_sends_nothing(home: Path, webhook: Receiver) -> None:
    settings = make_settings(home, channels=["webhook"], webhook_url=webhook.url)
    calm = {
        **SUMMARY,
        "drifted_features": [],
        "data_drift_detected": False,
        "model_drift_detected": False,
    }
    outcome = alert(settings, calm, now=NOW)
    assert outcome.status == "not_needed"
    assert webhook.payloads == []
    assert alerts(settings) == []


def test_failed_channels_are_retried_recorded_and_do_not_raise(
    home: Path, webhook: Receiver
) -> None:
    closed = free_port()  # nothing listens there
    settings = make_settings(
        home,
        channels=["email", "webhook"],
        smtp_port=closed,
        smtp_timeout_s=2,
        email_to=["ops@example.org"],
        webhook_url=f"http://127.0.0.1:{closed}/hook",
        webhook_timeout_s=2,
        retries=2,
        retry_backoff_s=0.25,
    )
    waits: list[float] = []
    outcome = alert(settings, SUMMARY, now=NOW, sleep=waits.append)
    assert outcome.status == "failed"
    assert [(d.channel, d.delivered, d.attempts) for d in outcome.deliveries] == [
        ("email", False, 3),
        ("webhook", False, 3),
    ]
    assert waits == [0.25, 0.5, 0.25, 0.5]
    assert "Connection refused" in (outcome.deliveries[0].error or "")
    assert "ConnectError" in (outcome.deliveries[1].error or "")
    rows = alerts(settings)
    assert sorted((r["channel"], r["delivered"], r["attempts"]) for r in rows) == [
        ("email", False, 3),
        ("webhook", False, 3),
    ]
    assert all("refused" in r["error"].lower() or "connect" in r["error"].lower() for r in rows)

    # Nothing was delivered, so no cooldown: the next run tries again (and the receiver is up).
    fixed = settings.model_copy(
        update={
            "alerts": settings.alerts.model_copy(update={"webhook_url": SecretStr(webhook.url)})
        }
    )
    retry = alert(fixed, SUMMARY, now=NOW + timedelta(minutes=5), sleep=waits.append)
    assert [(d.channel, d.delivered) for d in retry.deliveries] == [
        ("email", False),
        ("webhook", True),
    ]
    assert retry.status == "partial"
    assert len(webhook.payloads) == 1


def test_receiver_errors_retry_only_when_temporary(home: Path, webhook: Receiver) -> None:
    settings = make_settings(home, channels=["webhook"], webhook_url=webhook.url, retries=2)
    webhook.status = 503
    busy = alert(settings, SUMMARY, now=NOW, sleep=lambda _: None)
    assert [(d.delivered, d.attempts) for d in busy.deliveries] == [(False, 3)]
    assert "HTTP 503" in (busy.deliveries[0].error or "")
    webhook.status = 404
    gone = alert(settings, SUMMARY, now=NOW, sleep=lambda _: None)
    assert [(d.delivered, d.attempts) for d in gone.deliveries] == [(False, 1)]
    assert len(webhook.payloads) == 4


def test_wrong_smtp_password_is_not_retried(home: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = make_settings(
        home,
        channels=["email"],
        smtp_port=port,
        smtp_user="ops",
        smtp_password="wrong",
        email_to=["ops@example.org"],
        retries=3,
    )
    outcome = alert(settings, SUMMARY, now=NOW)
    [delivery] = outcome.deliveries
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert "SMTP login refused" in (delivery.error or "")
    assert inbox.messages == []


def test_starttls_refused_by_the_server_is_reported(home: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = make_settings(
        home, channels=["email"], smtp_port=port, smtp_starttls=True, email_to=["ops@example.org"]
    )
    [delivery] = alert(settings, SUMMARY, now=NOW).deliveries
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert "STARTTLS extension not supported by server" in (delivery.error or "")
    assert inbox.messages == []


def test_alert_is_delivered_even_when_the_lake_cannot_record_it(
    home: Path, webhook: Receiver
) -> None:
    # No `lake init`: neither the cooldown read nor the record can happen; the alert still goes.
    settings = load_settings(
        home=home, alerts={"channels": ["webhook"], "webhook_url": webhook.url}
    )
    outcome = alert(settings, SUMMARY, now=NOW)
    assert outcome.status == "sent"
    assert not outcome.recorded
    assert "fraudops lake init" in (outcome.record_error or "")
    assert len(webhook.payloads) == 1


def test_cli_test_and_list(
    home: Path, smtp: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    make_settings(home)  # the lake
    monkeypatch.setenv("FRAUDOPS_HOME", str(home))
    monkeypatch.setenv("FRAUDOPS_ALERTS__CHANNELS", '["email"]')
    monkeypatch.setenv("FRAUDOPS_ALERTS__SMTP_PORT", str(port))
    monkeypatch.setenv("FRAUDOPS_ALERTS__SMTP_USER", "ops")
    monkeypatch.setenv("FRAUDOPS_ALERTS__SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("FRAUDOPS_ALERTS__EMAIL_TO", '["ops@example.org"]')
    runner = CliRunner()

    sent = runner.invoke(app, ["alerts", "test", "--json"])
    assert sent.exit_code == 0, sent.output
    result = json.loads(sent.stdout)
    assert result["status"] == "sent"
    assert result["deliveries"] == [
        {"channel": "email", "delivered": True, "attempts": 1, "error": None}
    ]
    assert inbox.messages[0]["Subject"].startswith("[fraudops TEST] CRITICAL")
    assert "credit_limit: psi=74.4700" in inbox.messages[0].get_content()

    listed = runner.invoke(app, ["alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["channel"], row["delivered"], row["attempts"]) == ("email", True, 1)

    monkeypatch.setenv("FRAUDOPS_ALERTS__SMTP_PASSWORD", "wrong")
    failed = runner.invoke(app, ["alerts", "test"])
    assert failed.exit_code == 1
    assert "SMTP login refused" in failed.stdout


def test_the_cooldown_finds_its_incident_by_key_and_older_rows_by_their_body(home: Path) -> None:
    settings = load_settings(home=home, alerts={"channels": ["log"], "cooldown_minutes": 60})
    summary, other = parse_summary(SUMMARY), parse_summary({**SUMMARY, "model_version": "4"})
    fresh = parse_summary({**SUMMARY, "model_version": "5"})

    def row(alert_id: str, key: str | None, body: str) -> dict[str, Any]:
        return {
            "alert_id": alert_id,
            "created_at": NOW - timedelta(minutes=5),
            "channel": "log",
            "delivered": True,
            "body": body,
            "incident_key": key,
        }

    with Lake.open(settings) as lake:
        lake.init()
        lake.append(
            ALERTS,
            [
                # Written before the column: its incident is the body's last line.
                row("old", None, f"...\nIncident: {summary.incident_key}\n"),
                # The column decides, whatever the body says.
                row("new", other.incident_key, f"...\nIncident: {fresh.incident_key}\n"),
            ],
        )
        outcomes = [
            send_alert(settings, lake, s, channels=[LogChannel()], now=NOW)
            for s in (summary, other, fresh)
        ]
        keys = lake.read_frame(ALERTS, ["alert_id", "incident_key"])
    assert [(o.status, o.suppressed_by) for o in outcomes] == [
        ("suppressed", "old"),
        ("suppressed", "new"),
        ("sent", None),
    ]
    recorded = dict(zip(keys["alert_id"], keys["incident_key"], strict=True))
    assert [recorded[o.alert_id or ""] for o in outcomes] == [
        summary.incident_key,
        other.incident_key,
        fresh.incident_key,
    ]
