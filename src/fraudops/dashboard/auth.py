"""Who may look and who may act: the same rule as ``serve``, plus a browser session.

- On a loopback address with no secret configured the dashboard is open, and an action is
  recorded under the OS user that runs it.
- With a secret (``dashboard.secret`` or any ``serving.tokens`` entry) a browser signs in once at
  ``/login`` with it and a user name; the answer is a signed session cookie (HttpOnly,
  SameSite=Strict, ``dashboard.session_hours``). Off loopback a secret is required: the process
  refuses to start without one.
- Every action (POST) also needs the CSRF token the page carries, in the ``X-CSRF-Token``
  header: a page of another site can make a browser send the cookie, not read the token.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from fraudops.config import Settings
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


class Auth:
    """Sign-in, sessions and CSRF tokens of one dashboard process."""

    def __init__(self, settings: Settings) -> None:
        self.secrets = configured_secrets(settings)
        self.open = not self.secrets
        self.max_age = int(settings.dashboard.session_hours * 3600)
        # Open, there is no sign-in: one token per process, handed to the pages it serves.
        key = self.secrets[0] if self.secrets else secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(key, salt="fraudops-dashboard-session")
        self._open_session = Session(user=_os_user(), csrf=secrets.token_urlsafe(24))

    def check_secret(self, candidate: str) -> bool:
        given = candidate.encode()
        return any(hmac.compare_digest(given, s.encode()) for s in self.secrets)

    def new_cookie(self, user: str) -> str:
        return self._signer.dumps({"user": user, "csrf": secrets.token_urlsafe(24)})

    def session(self, cookie: str | None) -> Session | None:
        """The request's session: the open one, the cookie's, or None (not signed in)."""
        if self.open:
            return self._open_session
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        user, csrf = data.get("user"), data.get("csrf")
        if not isinstance(user, str) or not isinstance(csrf, str):
            return None
        return Session(user=user, csrf=csrf)

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
