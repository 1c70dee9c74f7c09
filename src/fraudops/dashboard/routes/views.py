"""Page shells (server-rendered, autoescaped), sign-in and sign-out, plotly.js."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from fraudops.dashboard.auth import SESSION_COOKIE, clean_user, safe_next
from fraudops.dashboard.filters import FILTER_KEYS, MAX_VALUE_CHARS
from fraudops.dashboard.pages import DEFAULT_PAGE, PAGES
from fraudops.dashboard.routes.deps import auth_of, runtime_of, session_of

router = APIRouter()
MAX_FORM_BYTES = 4096


@router.get("/vendor/plotly.min.js")
def plotly_js(request: Request) -> FileResponse:
    # The installed plotly wheel's copy: no CDN. Cached: it changes only with the wheel.
    return FileResponse(
        request.app.state.plotly_js,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/{DEFAULT_PAGE}", status_code=303)


def _login_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "login.html",
        {"error": error, "next": safe_next(request.query_params.get("next"))},
        status_code=status,
    )


@router.get("/login")
def login_form(request: Request) -> Response:
    if auth_of(request).open:
        return RedirectResponse("/", status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    auth = auth_of(request)
    if auth.open:
        return RedirectResponse("/", status_code=303)
    client = request.client.host if request.client else "unknown"
    wait = auth.limiter.wait_s(client)
    if wait:  # before the secret is even looked at: guessing faster gains nothing
        response = _login_page(
            request, error=f"too many wrong secrets: try again in {wait} s", status=429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _login_page(request, error="the form is too large", status=413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
    user = clean_user(form.get("user", ""))
    if user is None:
        return _login_page(request, error="give your name (it goes in the audit trail)", status=422)
    if not auth.check_secret(form.get("secret", "")):
        auth.limiter.failed(client)
        return _login_page(request, error="wrong secret", status=401)
    auth.limiter.succeeded(client)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.new_cookie(user),
        max_age=auth.max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    # Ended on the server too: the cookie, if kept or copied, is no session any more.
    auth_of(request).revoke(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/{page}")
def page_shell(page: str, request: Request) -> Response:
    if page not in PAGES:
        raise HTTPException(status_code=404, detail=f"no page {page!r}")
    session = session_of(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    runtime = runtime_of(request)
    query = {k: request.query_params.get(k, "")[:MAX_VALUE_CHARS] for k in (*FILTER_KEYS, "id")}
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "page.html",
        {
            "page": PAGES[page],
            "pages": list(PAGES.values()),
            "query": query,
            "specs": sorted(runtime.settings.specs),
            "default_spec": runtime.spec_name,
            "user": session.user,
            "csrf": session.csrf,
            "signed_in": not auth_of(request).open,
            "refresh_ms": int(runtime.settings.dashboard.refresh_seconds * 1000),
        },
    )
