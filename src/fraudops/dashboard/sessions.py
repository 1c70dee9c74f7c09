"""The server's side of signing in: which sessions are live, and who may try again when.

- ``SessionStore``: the ids of the live sessions (the signed cookie carries one). Signing out
  removes it, so a copied cookie is dead from then on, signature or not. Bounded: expired
  sessions are dropped on every sign-in, and past ``max_sessions`` the oldest is signed out.
  In memory: restarting the dashboard signs everyone out (it never brings one back).
- ``SignInLimiter``: wrong secrets per client. After ``free_attempts`` failures a client waits
  ``backoff_s``, doubled at each further failure up to ``backoff_max_s``; any attempt while it
  waits is refused (429 with Retry-After) without looking at the secret, the right one too.
  A sign-in resets the client; a client unseen for a while is forgotten; at most
  ``MAX_CLIENTS`` are tracked (the least recently seen forgotten first).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000
FORGET_AFTER_S = 3600.0  # a client whose back-off ended this long ago starts afresh


class SessionStore:
    """Live session ids with their expiry. Thread-safe."""

    def __init__(
        self, max_age_s: float, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._expires: OrderedDict[str, float] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def open(self) -> str:
        """A new session's id."""
        sid = secrets.token_urlsafe(18)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            while len(self._expires) >= self.max_sessions:
                self._expires.popitem(last=False)
            self._expires[sid] = now + self.max_age_s
        return sid

    def live(self, sid: str) -> bool:
        with self._lock:
            expires = self._expires.get(sid)
            if expires is None:
                return False
            if expires <= self._clock():
                del self._expires[sid]
                return False
            return True

    def close(self, sid: str) -> bool:
        """End a session for good; False when it was not live."""
        with self._lock:
            return self._expires.pop(sid, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._expires)

    def _drop_expired(self, now: float) -> None:
        # Same max age for all: creation order is expiry order, so the expired are first.
        while self._expires:
            sid, expires = next(iter(self._expires.items()))
            if expires > now:
                return
            del self._expires[sid]


@dataclass
class _Client:
    failures: int = 0
    blocked_until: float = 0.0
    seen: float = 0.0


class SignInLimiter:
    """Wrong-secret back-off per client address. Thread-safe."""

    def __init__(
        self,
        free_attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_attempts = free_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> int:
        """Whole seconds ``client`` must still wait before trying (0: it may try now)."""
        now = self._clock()
        with self._lock:
            state = self._clients.get(client)
            if state is None or state.blocked_until <= now:
                return 0
            return max(1, math.ceil(state.blocked_until - now))

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            state = self._clients.pop(client, None)
            if state is None or now - max(state.seen, state.blocked_until) > FORGET_AFTER_S:
                state = _Client()
            state.failures += 1
            state.seen = now
            over = state.failures - self.free_attempts
            if over > 0:
                delay = self.backoff_s * 2 ** min(over - 1, 30)
                state.blocked_until = now + min(delay, self.backoff_max_s)
            self._clients[client] = state  # most recently seen last
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)
