"""Who may look and who may act: the same rule as ``serve``, plus a browser session.

- On a loopback address with no secret configured the dashboard is open, and an action is
  recorded under the OS user that runs it.
- With a secret (``dashboard.secret`` or any ``serving.tokens`` entry) a browser signs in once at
  ``/login`` with it and a user name; the answer is a signed session cookie (HttpOnly,
  SameSite=Strict, ``dashboard.session_hours``) naming a session the server keeps (``sessions``):
  signing out ends it for good. Wrong secrets are limited per client with a back-off. Off
  loopback a secret is required: the process refuses to start without one.
- Every action (POST) also needs the CSRF token the page carries, in the ``X-CSRF-Token``
  header: a page of another site can make a browser send the cookie, not read the token.
"""

from __future__ import annotations

import getpass
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from fraudops.config import Settings
from fraudops.dashboard.sessions import SessionStore, SignInLimiter
from fraudops.errors import ConfigError
from fraudops.serving.server import is_loopback

SESSION_COOKIE = "fraudops_dashboard"
CSRF_HEADER = "X-CSRF-Token"
MAX_USER_CHARS = 64


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str


def configured_secrets(settings: Settings) -> list[str]:
    found = [t.get_secret_value() for t in settings.serving.tokens]
    if settings.dashboard.secret is not None:
        found.insert(0, settings.dashboard.secret.get_secret_value())
    return [s for s in found if s]


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address without a secret, as ``serve`` does."""
    if not configured_secrets(settings) and not is_loopback(host):
        raise ConfigError(
            f"refusing to run the dashboard on {host} with no secret: set dashboard.secret "
            "(e.g. FRAUDOPS_DASHBOARD__SECRET=a-long-secret) or serving.tokens, or bind to "
            "127.0.0.1"
        )


def loopback_host(header: str) -> bool:
    """Whether a ``Host`` header names this machine exactly: ``localhost``, an address of
    127.0.0.0/8 or ``[::1]``, with an optional port. Parsed, never prefix-matched: a DNS
    rebinding page sends its own name (``127.attacker.com``), which is refused."""
    if header.startswith("["):  # an IPv6 literal, bracketed
        name, bracket, rest = header[1:].partition("]")
        if not bracket:
            return False
        try:
            loopback = ipaddress.IPv6Address(name).is_loopback
        except ValueError:
            return False
    else:
        name, colon, port = header.partition(":")
        rest = colon + port
        if name.lower() == "localhost":
            loopback = True
        else:
            try:
                loopback = ipaddress.IPv4Address(name).is_loopback
            except ValueError:
                return False
    if rest:  # only ":<port>" may follow
        port = rest[1:]
        if not rest.startswith(":") or not port.isascii() or not port.isdigit():
            return False
        if len(port) > 5 or not 0 < int(port) <= 65535:
            return False
    return loopback


class Auth:
    """Sign-in, sessions and CSRF tokens of one dashboard process."""

    def __init__(self, settings: Settings) -> None:
        self.secrets = configured_secrets(settings)
        self.open = not self.secrets
        cfg = settings.dashboard
        self.max_age = int(cfg.session_hours * 3600)
        self.sessions = SessionStore(self.max_age, cfg.max_sessions)
        self.limiter = SignInLimiter(
            cfg.sign_in_free_attempts, cfg.sign_in_backoff_s, cfg.sign_in_backoff_max_s
        )
        # Open, there is no sign-in: one token per process, handed to the pages it serves.
        key = self.secrets[0] if self.secrets else secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(key, salt="fraudops-dashboard-session")
        self._open_session = Session(user=_os_user(), csrf=secrets.token_urlsafe(24))

    def check_secret(self, candidate: str) -> bool:
        given = candidate.encode()
        return any(hmac.compare_digest(given, s.encode()) for s in self.secrets)

    def new_cookie(self, user: str) -> str:
        """A signed cookie for a new server-side session of ``user``."""
        sid = self.sessions.open()
        return self._signer.dumps({"user": user, "csrf": secrets.token_urlsafe(24), "sid": sid})

    def revoke(self, cookie: str | None) -> bool:
        """End the cookie's session (signing out); False when it named no live session."""
        data = self._payload(cookie)
        return data is not None and self.sessions.close(data["sid"])

    def session(self, cookie: str | None) -> Session | None:
        """The request's session: the open one, the cookie's, or None (not signed in)."""
        if self.open:
            return self._open_session
        data = self._payload(cookie)
        if data is None or not self.sessions.live(data["sid"]):
            return None  # forged, expired, signed out, or from before a restart
        return Session(user=data["user"], csrf=data["csrf"])

    def _payload(self, cookie: str | None) -> dict[str, str] | None:
        if not cookie or self.open:
            return None
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        fields = {k: data.get(k) for k in ("user", "csrf", "sid")}
        if not all(isinstance(v, str) for v in fields.values()):
            return None
        return fields  # type: ignore[return-value]

    @staticmethod
    def csrf_ok(session: Session, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(str(header).encode(), session.csrf.encode())


def clean_user(name: str) -> str | None:
    """A sign-in name fit for the audit trail: printable, short; None when empty."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_USER_CHARS or not name.isprintable():
        return None
    return name


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
