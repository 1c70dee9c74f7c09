"""What every route needs from the request: the runtime, the session, the filters."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import HTTPException, Request

from fraudops.dashboard.auth import CSRF_HEADER, SESSION_COOKIE, Auth, Session
from fraudops.dashboard.contracts import Filters
from fraudops.dashboard.filters import parse_filters
from fraudops.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def auth_of(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


def session_of(request: Request) -> Session | None:
    return auth_of(request).session(request.cookies.get(SESSION_COOKIE))


def api_session(request: Request) -> Session:
    """The session of a data request; 401 without one."""
    session = session_of(request)
    if session is None:
        raise HTTPException(
            status_code=401,
            detail="sign in at /login first",
            headers={"WWW-Authenticate": "Cookie"},
        )
    return session


def action_session(request: Request) -> Session:
    """The session of an action: signed in (401) and carrying the page's CSRF token (403)."""
    session = api_session(request)
    if not Auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(status_code=403, detail=f"missing or wrong {CSRF_HEADER} header")
    return session


def filters_of(request: Request) -> Filters:
    return parse_filters(request.query_params, runtime_of(request).settings)


# OWASP's CSV-injection rule: a text cell starting with one of these is a formula to a
# spreadsheet ("-2+3+cmd|' /C calc'!A0" runs). Numbers are written as numbers, so a negative
# figure stays a number; only text is prefixed.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    """The JSON table's rows as CSV; text that a spreadsheet would run as a formula is quoted
    with a leading apostrophe (OWASP's CSV-injection rule), header names included."""
    out = io.StringIO()
    # RFC 4180's CRLF: a cell holding a bare CR is then quoted too (with "\n" it was not, and
    # a spreadsheet broke the row there).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell(c) for c in columns])
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
