"""Sign-in sessions, CSRF tokens, the exposure rule, where a sign-in may send the browser."""

from __future__ import annotations

import uuid

import pytest

from fraudops.config import load_settings
from fraudops.dashboard.auth import Auth, check_exposure, clean_user, loopback_host, safe_next
from fraudops.dashboard.pages.lookup import id_day
from fraudops.dashboard.sessions import MAX_CLIENTS, SessionStore, SignInLimiter
from fraudops.errors import ConfigError


def test_open_on_loopback_without_a_secret() -> None:
    auth = Auth(load_settings())
    assert auth.open
    session = auth.session(None)
    assert session is not None and session.user
    assert Auth.csrf_ok(session, session.csrf)
    assert not Auth.csrf_ok(session, None) and not Auth.csrf_ok(session, "x")


def test_a_secret_makes_sessions_signed_and_checked() -> None:
    auth = Auth(load_settings(dashboard={"secret": "s3cret-s3cret"}))
    assert not auth.open and auth.session(None) is None
    assert auth.check_secret("s3cret-s3cret") and not auth.check_secret("s3cret")
    cookie = auth.new_cookie("ana")
    session = auth.session(cookie)
    assert session is not None and session.user == "ana"
    assert auth.session(cookie[:-3] + "abc") is None
    other = Auth(load_settings(dashboard={"secret": "another-secret"}))
    assert other.session(cookie) is None  # signed with another key
    # serving.tokens are accepted too, as for `serve`.
    assert Auth(load_settings(serving={"tokens": ["tok-1"]})).check_secret("tok-1")


def test_off_loopback_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="refusing"):
        check_exposure(load_settings(), "192.168.1.5")
    check_exposure(load_settings(), "localhost")
    check_exposure(load_settings(dashboard={"secret": "x" * 16}), "0.0.0.0")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/models?version=3", "/models?version=3"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil", "/"),
        (None, "/"),
    ],
)
def test_after_sign_in_only_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_user_names_fit_the_audit_trail() -> None:
    assert clean_user("  Ana   Lima ") == "Ana Lima"
    assert clean_user("") is None and clean_user("a" * 65) is None
    assert clean_user("bad\x00name") is None


def test_uuid7_ids_give_their_day_others_none() -> None:
    # 2027-01-02T03:04:05Z in the first 48 bits, version 7.
    millis = 1_798_858_245_000
    value = uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | 12345)
    assert str(id_day(str(value))) == "2027-01-02"
    assert id_day(str(uuid.uuid4())) is None and id_day("sim-m03-000019074") is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST:8090", True),
        ("127.0.0.1", True),
        ("127.0.0.1:8090", True),
        ("127.1.2.3:1", True),
        ("[::1]", True),
        ("[::1]:8090", True),
        # DNS rebinding: a name that merely starts like a loopback address.
        ("127.attacker.com:8090", False),
        ("127.0.0.1.attacker.com", False),
        ("localhost.attacker.com", False),
        ("127.0.0.1:8090@evil", False),
        ("127.0.0.1:99999", False),
        ("127.0.0.1:", False),
        ("127.1", False),
        ("[::2]:8090", False),
        ("[::1", False),
        ("::1", False),
        ("10.0.0.1:8090", False),
        ("", False),
    ],
)
def test_only_a_host_header_that_is_exactly_loopback(host: str, loopback: bool) -> None:
    assert loopback_host(host) is loopback


def test_signing_out_ends_the_session_on_the_server() -> None:
    auth = Auth(load_settings(dashboard={"secret": "s3cret-s3cret"}))
    cookie = auth.new_cookie("ana")
    assert auth.session(cookie) is not None
    assert auth.revoke(cookie) is True
    assert auth.session(cookie) is None  # the same, validly signed cookie: no session now
    assert auth.revoke(cookie) is False and auth.revoke("forged") is False
    # A cookie signed with the key but naming no session of this process (a restart, a forger
    # with the key's old cookies) is refused too.
    other = Auth(load_settings(dashboard={"secret": "s3cret-s3cret"}))
    assert other.session(auth.new_cookie("ana")) is None


def test_the_session_store_is_bounded() -> None:
    now = [0.0]
    store = SessionStore(max_age_s=10, max_sessions=3, clock=lambda: now[0])
    first = store.open()
    ids = [store.open(), store.open()]
    assert len(store) == 3 and store.live(first)
    newest = store.open()  # over the bound: the oldest is signed out
    assert len(store) == 3 and not store.live(first) and store.live(newest)
    now[0] = 11.0
    assert not store.live(ids[0])  # expired
    store.open()
    assert len(store) == 1  # the expired ones were dropped


def test_wrong_secrets_back_off_per_client() -> None:
    now = [0.0]
    limiter = SignInLimiter(free_attempts=3, backoff_s=2, backoff_max_s=5, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.wait_s("a") == 0
        limiter.failed("a")
    assert limiter.wait_s("a") == 0  # three free attempts
    limiter.failed("a")
    assert limiter.wait_s("a") == 2 and limiter.wait_s("b") == 0  # per client
    now[0] = 2.0
    limiter.failed("a")
    assert limiter.wait_s("a") == 4  # doubled
    now[0] = 6.0
    limiter.failed("a")
    assert limiter.wait_s("a") == 5  # capped
    limiter.succeeded("a")
    assert limiter.wait_s("a") == 0 and len(limiter) == 0
    for i in range(MAX_CLIENTS + 10):
        limiter.failed(f"c{i}")
    assert len(limiter) == MAX_CLIENTS  # bounded: the least recently seen are forgotten
