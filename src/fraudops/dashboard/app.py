"""The dashboard's web app: ``create_app(runtime)`` builds it over one composition root.

Thin: the page shells are Jinja2 templates (autoescaped), the data comes from the page modules
as ``PageData`` JSON, and the page script draws it with the plotly.js of the installed ``plotly``
wheel. Nothing is fetched from another host: the dashboard works on an air-gapped laptop.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from fraudops.dashboard.auth import Auth, loopback_host
from fraudops.dashboard.filters import FilterError
from fraudops.dashboard.routes import actions, api, views
from fraudops.errors import ConfigError, FraudopsError
from fraudops.runtime import Runtime
from fraudops.serving.limits import BodyLimit

HERE = Path(__file__).parent
# Sign-in forms and actions are a few hundred bytes; nothing the dashboard takes is larger.
MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0
# The page script and styles are ours; style-src allows the inline styles plotly.js sets.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


# npm's partial bundle (scatter, bar, pie: all the pages draw), installed by `make` beside the
# source: a quarter of the full bundle, which alone took 1.3-1.6 s to compile in Chromium here.
BASIC_BUNDLE = HERE.parents[2] / "node_modules" / "plotly.js-basic-dist-min" / "plotly-basic.min.js"


def plotly_js(configured: Path | None = None) -> Path:
    """The plotly.js file to serve: ``dashboard.plotly_js``, else the basic bundle, else the
    plotly wheel's full one."""
    if configured is not None:
        path = configured.expanduser()
        if not path.is_file():
            raise ConfigError(f"dashboard.plotly_js {path}: no such file")
        return path
    if BASIC_BUNDLE.is_file():
        return BASIC_BUNDLE
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(runtime: Runtime, *, warm_up: bool = True) -> FastAPI:
    """The dashboard over ``runtime``: its settings decide auth (see ``auth``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:  # MLflow's import (~2 s) off the first Features page's path
            threading.Thread(target=_warm, args=(runtime,), daemon=True).start()
        yield

    app = FastAPI(
        title="fraudops dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.auth = Auth(runtime.settings)
    # Autoescape on for every template, said here rather than left to a library default.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True
    )
    app.state.templates = Jinja2Templates(env=env)
    app.state.plotly_js = plotly_js(runtime.settings.dashboard.plotly_js)

    auth: Auth = app.state.auth

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Open (no sign-in) only for this machine: a page of another site whose name was
        # re-pointed at 127.0.0.1 (DNS rebinding) sends its own Host, and is refused; the
        # Host is parsed (127.attacker.com is a name, not an address).
        if auth.open and not loopback_host(request.headers.get("host", "")):
            return JSONResponse(
                status_code=400,
                content={"detail": "open dashboard: only a loopback Host (127.0.0.1, localhost)"},
            )
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(FilterError)
    async def bad_filter(request: Request, exc: FilterError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": [{"loc": ["query", exc.parameter], "msg": str(exc)}]},
        )

    @app.exception_handler(FraudopsError)
    async def unavailable(request: Request, exc: FraudopsError) -> JSONResponse:
        # The lake or registry is not there (yet): the server's state, not the client's input.
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(actions.router)
    app.include_router(views.router)  # last: its /{page} matches any single segment
    # Outermost: no route parses a body past the cap or waits forever for one.
    app.add_middleware(
        BodyLimit, cap=MAX_BODY_BYTES, timeout_s=BODY_TIMEOUT_S, setting="the dashboard's limit"
    )
    return app


def _warm(runtime: Runtime) -> None:
    # The Lookup page's transaction-id index, built before anyone searches (seconds at 10M).
    from fraudops.dashboard.lookup_index import lake_index
    from fraudops.lake.schemas import PREDICTIONS

    try:
        lake = runtime.lake()
        if lake.exists(PREDICTIONS):
            table = lake.table(PREDICTIONS)
            lake_index(lake.settings.home_dir, lake.spec.name, table).build_in_background(table)
    except FraudopsError:  # no lake yet: the pages say so; a lookup builds it later
        pass
    # The import only: building the client would create a SQLite store that is not there.
    import mlflow  # noqa: F401
