"""Where an alert goes: the log, e-mail over SMTP, a Slack-compatible webhook.

A channel's ``send`` raises on failure; ``deliver`` wraps it with retries and exponential
backoff and never raises, so an unreachable mail server cannot fail a monitoring run: the result
(delivered, attempts, last error) is what gets recorded in ``alerts``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx

from fraudops.alerting.message import AlertMessage
from fraudops.config import AlertSettings

logger = logging.getLogger("fraudops.alerts")


class PermanentDeliveryError(Exception):
    """The receiver refused the alert for good (bad credentials, 4xx): retrying will not help."""


class AlertChannel(Protocol):
    name: str

    def send(self, message: AlertMessage) -> None:
        """Deliver ``message`` once; raise on failure."""
        ...


@dataclass
class Delivery:
    channel: str
    delivered: bool
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LogChannel:
    name = "log"

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log

    def send(self, message: AlertMessage) -> None:
        level = logging.ERROR if message.severity == "critical" else logging.WARNING
        self._log.log(level, "%s\n%s", message.subject, message.body)


class EmailChannel:
    name = "email"

    def __init__(self, config: AlertSettings) -> None:
        self.config = config

    def build(self, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.config.email_from
        mail["To"] = ", ".join(self.config.email_to)
        mail["Date"] = formatdate(message.created_at.timestamp(), usegmt=True)
        mail["Message-ID"] = make_msgid(domain="fraudops")
        mail["X-Fraudops-Severity"] = message.severity
        mail["X-Fraudops-Incident"] = message.incident_key
        # Quoted-printable: the body's emoji reach servers without 8BITMIME intact.
        mail.set_content(message.body, cte="quoted-printable")
        return mail

    def send(self, message: AlertMessage) -> None:
        c = self.config
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout_s) as smtp:
                if c.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.smtp_user:
                    password = c.smtp_password.get_secret_value() if c.smtp_password else ""
                    smtp.login(c.smtp_user, password)
                refused = smtp.send_message(self.build(message))
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(f"SMTP login refused: {_smtp_reason(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"SMTP server: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code}: {_smtp_reason(exc)}"
            if exc.smtp_code >= 500:  # 5xx: permanent by RFC 5321
                raise PermanentDeliveryError(reason) from None
            raise OSError(reason) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"all recipients refused: {exc.recipients}") from None
        if refused:  # some recipients got it: report the rest, do not resend to all
            logger.warning("alert e-mail refused for %s", ", ".join(refused))


def _smtp_reason(exc: smtplib.SMTPResponseException) -> str:
    raw = exc.smtp_error
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


class WebhookChannel:
    name = "webhook"

    def __init__(self, config: AlertSettings) -> None:
        if config.webhook_url is None:
            raise ValueError("WebhookChannel needs alerts.webhook_url")
        self.url = config.webhook_url.get_secret_value()
        # A Slack webhook URL is a credential: errors (recorded in `alerts`) name the host only.
        self.where = httpx.URL(self.url).host or "the webhook"
        self.timeout = config.webhook_timeout_s

    def send(self, message: AlertMessage) -> None:
        try:
            response = httpx.post(self.url, json=message.slack, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__} posting to {self.where}: {exc}") from None
        if response.is_success:
            return
        reason = f"HTTP {response.status_code} from {self.where}: {response.text[:200].strip()}"
        # 408/429 and 5xx are the receiver's momentary trouble; other 4xx will not get better.
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise PermanentDeliveryError(reason)
        raise OSError(reason)


def build_channels(config: AlertSettings) -> list[AlertChannel]:
    """The configured channels, in configuration order, each once."""
    factories: dict[str, Callable[[], AlertChannel]] = {
        "log": LogChannel,
        "email": lambda: EmailChannel(config),
        "webhook": lambda: WebhookChannel(config),
    }
    return [factories[name]() for name in dict.fromkeys(config.channels)]


def deliver(
    channel: AlertChannel,
    message: AlertMessage,
    *,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send through ``channel``, retrying ``retries`` times with doubling waits; never raises."""
    attempts = 0
    error: str | None = None
    while attempts <= retries:
        if attempts:
            sleep(backoff_s * 2 ** (attempts - 1))
        attempts += 1
        try:
            channel.send(message)
        except PermanentDeliveryError as exc:
            error = str(exc)
            break
        except Exception as exc:  # any failure of a channel is recorded, never raised
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            logger.warning(
                "alert via %s failed (attempt %d of %d): %s",
                channel.name,
                attempts,
                retries + 1,
                error,
            )
        else:
            return Delivery(channel.name, True, attempts)
    logger.error(
        "alert via %s not delivered after %d attempt(s): %s", channel.name, attempts, error
    )
    return Delivery(channel.name, False, attempts, error)
