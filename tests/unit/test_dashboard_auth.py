"""Sign-in sessions, CSRF tokens, the exposure rule, where a sign-in may send the browser."""

from __future__ import annotations

import uuid

import pytest

from fraudops.config import load_settings
from fraudops.dashboard.auth import Auth, check_exposure, clean_user, safe_next
from fraudops.dashboard.pages.lookup import id_day
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
