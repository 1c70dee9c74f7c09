"""The HTTP server: FastAPI for the API surface, a direct ASGI path for the hot route.

``POST /v1/predict`` is the route that has to answer in milliseconds: the outer ASGI callable
handles it itself (auth, body, the prediction service, metrics) and hands every other request
— health, readiness, metrics, admin, the OpenAPI docs — to the FastAPI app. The FastAPI app also
declares /v1/predict, backed by the same service, so the OpenAPI document describes it (with the
request schema derived from the feature spec) and the route works when the app is mounted
without the fast path.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from fraudops import __version__
from fraudops.features.online import OnlineHeld, OnlineStore
from fraudops.inference_log.base import Producer, ProducerStats
from fraudops.serving.lake_holder import LakeHolder
from fraudops.serving.lake_watch import LakeWatch
from fraudops.serving.limits import (
    BodyDeadlines,
    BodyLimit,
    BodyRefused,
    body_headers,
    json_content,
    read_body,
    too_large,
    unsupported_type,
)
from fraudops.serving.metrics import ServerMetrics
from fraudops.serving.model_holder import ModelHolder
from fraudops.serving.online_state import start_online_store
from fraudops.serving.requests import RequestInvalid, openapi_model
from fraudops.serving.service import NotReady, PredictionService

if TYPE_CHECKING:
    from fraudops.runtime import Runtime

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREDICT_PATH = "/v1/predict"
_JSON_HEADERS = [(b"content-type", b"application/json")]
# A body refused part-way (too large, too slow) is never read to its end: close the connection.
_CLOSE_HEADERS = [*_JSON_HEADERS, (b"connection", b"close")]
_BYTES_PER_TRANSACTION = 4096  # a generous upper bound on one transaction's JSON


class ServerState:
    """What one server process holds: the model, the log, the service, the metrics."""

    def __init__(self, runtime: Runtime, clock: Callable[[], datetime] | None = None) -> None:
        self.runtime = runtime  # the process's clients: the inference log, the label listeners
        settings = self.settings = runtime.settings
        spec = self.spec = runtime.spec
        self.clock = clock  # the request time of a prediction (None: the wall clock)
        self.commits = runtime.commits  # told of each label ingestion
        self.tokens = [t.get_secret_value().encode() for t in settings.serving.tokens]
        cfg = settings.serving
        self.max_body = cfg.max_body_bytes or cfg.max_batch * _BYTES_PER_TRANSACTION + 1024
        self.body_deadlines = BodyDeadlines(cfg.body_timeout_s)
        self.lake = LakeWatch(settings, spec, runtime.lake_factory())
        self.labels_lake = LakeHolder(runtime.lake_factory())  # POST /v1/labels's
        self.metrics = ServerMetrics(self.log_stats, self.lake.health, self.online_held)
        self.holder = ModelHolder(settings, spec, lambda: runtime.mlflow, on_swap=self._swapped)
        self.log: Producer | None = None
        self.service: PredictionService | None = None
        self.online: OnlineStore | None = None  # a spec with derived features: their state

    def start(self) -> None:
        self.log = self.runtime.log_producer()
        if self.spec.derived:
            self.online = start_online_store(self.runtime)
        self.service = PredictionService(
            self.settings,
            self.spec,
            self.holder,
            self.log,
            self.metrics,
            clock=self.clock,
            online_store=self.online,
        )
        self.holder.start()

    def rotate_log(self) -> None:
        """Seal the inference log's open segment and go on with a fresh log: what was logged so
        far can be drained now, not at the segment's age or size (a simulation drains before
        each monitoring run). The fresh log takes over before the old one closes."""
        if self.log is None or self.service is None:
            raise RuntimeError("rotate_log: the server has not started")
        old, self.log = self.log, self.runtime.log_producer()
        self.service.log = self.log
        old.close()

    def stop(self) -> None:
        self.holder.stop()
        self.labels_lake.close()
        if self.log is not None:
            self.log.close()
        if self.online is not None:
            self.online.close()

    def _swapped(self, scorer: Any) -> None:
        self.metrics.model_version.set(float(scorer.version))
        if self.holder.reloads:
            self.metrics.reloads.inc()

    def authorised(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if not self.tokens:
            return True
        for key, value in headers:
            if key == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
                return any(hmac.compare_digest(given, token) for token in self.tokens)
        return False

    def online_held(self) -> OnlineHeld | None:
        """The online state's size, None for a spec without derived features (or not started)."""
        return None if self.online is None else self.online.held()

    def log_stats(self) -> ProducerStats:
        """The inference log's figures, the same fields whatever the backend."""
        if self.log is None:
            return ProducerStats(backend=self.settings.serving.log_backend)
        return self.log.stats()


def _detail(errors: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"detail": errors})


def _wants_explain(query: bytes) -> bool:
    if not query:
        return False
    values = parse_qs(query.decode("latin-1")).get("explain", [])
    return any(v.lower() in ("1", "true", "yes") for v in values)


class FraudopsASGI:
    """The outer ASGI app: /v1/predict directly, everything else through FastAPI."""

    def __init__(self, api: FastAPI, state: ServerState) -> None:
        self.api = api
        self.state = state
        # Every other route's body (labels, admin) under the same cap and deadline.
        self.guarded = BodyLimit(api, state.max_body, state.body_deadlines.timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PREDICT_PATH and scope["method"] == "POST":
            await self._predict(scope, receive, send)
        else:
            await self.guarded(scope, receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        started = time.perf_counter()
        try:
            status, body = await self._answer(scope, receive)
        except Exception:  # never drop the connection without an answer
            log.exception("prediction request failed")
            status, body = 500, _detail([{"loc": [], "msg": "internal error", "type": "internal"}])
        headers = _CLOSE_HEADERS if status in (408, 413) else _JSON_HEADERS
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        state.metrics.count(PREDICT_PATH, status)
        if status == 200:
            state.metrics.latency.observe(time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        state = self.state
        if not state.authorised(scope["headers"]):
            return 401, _detail(
                [
                    {
                        "loc": ["header", "authorization"],
                        "msg": "a valid bearer token is required",
                        "type": "auth",
                    }
                ]
            )
        try:
            is_json, length = body_headers(scope["headers"])
            if not is_json:
                raise unsupported_type()
            if length is not None and length > state.max_body:
                raise too_large(state.max_body, "serving.max_body_bytes")
            body = await read_body(receive, state.max_body, state.body_deadlines)
        except BodyRefused as refused:
            return refused.status, refused.body()
        if body is None:
            return 499, b""
        return await answer_predict(state, body, _wants_explain(scope.get("query_string", b"")))


async def answer_predict(state: ServerState, body: bytes, explain: bool) -> tuple[int, bytes]:
    """Status and body of a /v1/predict call; shared by the fast path and the FastAPI route."""
    service = state.service
    if service is None:
        return 503, _detail([{"loc": [], "msg": "server is starting", "type": "not_ready"}])
    try:
        return 200, await service.predict(body, explain=explain)
    except RequestInvalid as exc:
        return exc.status, _detail(exc.errors)
    except NotReady as exc:
        return 503, _detail([{"loc": [], "msg": f"no model to serve: {exc}", "type": "not_ready"}])
    except Exception:
        log.exception("prediction failed")
        return 500, _detail([{"loc": [], "msg": "internal error", "type": "internal"}])


def create_app(runtime: Runtime, *, clock: Callable[[], datetime] | None = None) -> FraudopsASGI:
    """The app over the clients of ``runtime`` (the caller closes it); ``clock`` gives each
    prediction's request time (default: the wall clock)."""
    spec = runtime.spec
    state = ServerState(runtime, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(state.start)
        # Everything loaded so far (model, libraries) lives as long as the process: keep it out
        # of the collector's generations, so a collection walks only request garbage.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(state.stop)

    api = FastAPI(
        title="fraudops",
        version=__version__,
        description=f"Real-time fraud scoring for spec `{spec.name}` with the registry's "
        "champion; every prediction is logged to the lake.",
        lifespan=lifespan,
    )
    api.state.fraudops = state
    _routes(api, state)
    return FraudopsASGI(api, state)


def _unauthorised() -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {
                    "loc": ["header", "authorization"],
                    "msg": "a valid bearer token is required",
                    "type": "auth",
                }
            ]
        },
        status_code=401,
    )


def _documented_event(schema: dict[str, Any]) -> dict[str, Any]:
    """The label event's JSON schema as the route takes it: a label of 0 or 1 (true/false and
    fraud/legit are accepted too), and an ``inference_id`` or a ``transaction_id``."""
    properties = schema["properties"]
    properties["label"] = {**properties["label"], "enum": [0, 1]}
    schema["anyOf"] = [
        {"required": [key], "properties": {key: {"type": "string", "pattern": r"\S"}}}
        for key in ("inference_id", "transaction_id")
    ]
    return schema


def _refused(refused: BodyRefused) -> Response:
    return Response(refused.body(), status_code=refused.status, media_type="application/json")


def _routes(api: FastAPI, state: ServerState) -> None:
    transaction = openapi_model(state.spec)
    schema = transaction.model_json_schema()
    request_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        schema,
                        {
                            "type": "array",
                            "items": schema,
                            "minItems": 1,
                            "maxItems": state.settings.serving.max_batch,
                        },
                    ]
                }
            }
        },
    }

    @api.post(
        PREDICT_PATH,
        summary="Score one transaction or a list of them",
        openapi_extra={"requestBody": request_body},
        responses={
            401: {"description": "Missing or wrong bearer token"},
            408: {"description": "The body did not arrive within serving.body_timeout_s"},
            413: {"description": "The body is over serving.max_body_bytes"},
            415: {"description": "The Content-Type is not application/json"},
            422: {"description": "A field is missing, unknown, mistyped or out of range"},
            503: {"description": "No model loaded yet"},
        },
    )
    async def predict(request: Request, explain: bool = False) -> Response:
        if not state.authorised(request.headers.raw):
            return _unauthorised()
        if not json_content(request.headers.raw):
            return _refused(unsupported_type())
        status, body = await answer_predict(state, await request.body(), explain)
        return Response(body, status_code=status, media_type="application/json")

    from fraudops.labels import LabelEvent

    event_schema = _documented_event(LabelEvent.model_json_schema())
    labels_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        event_schema,
                        {
                            "type": "array",
                            "items": event_schema,
                            "minItems": 1,
                            "maxItems": state.settings.labels.max_batch,
                        },
                    ]
                }
            }
        },
    }

    @api.post(
        "/v1/labels",
        openapi_extra={"requestBody": labels_body},
        summary="Record ground truth: one label event or a list of them",
        description="Events keyed by `inference_id` or `transaction_id`, with `label` (0/1), "
        "`confirmed_at`, `source` and `notes`. Unknown ids, duplicates and conflicts are "
        "reported; a batch with a malformed entry is refused whole (422 naming it).",
        responses={
            401: {"description": "Missing or wrong bearer token"},
            408: {"description": "The body did not arrive within serving.body_timeout_s"},
            413: {"description": "The body is over serving.max_body_bytes"},
            415: {"description": "The Content-Type is not application/json"},
            422: {"description": "A malformed entry (named); nothing was written"},
            503: {"description": "The lake is unavailable"},
        },
    )
    async def labels(request: Request) -> Response:
        from fraudops.serving.labels_route import labels_route_payload

        if not state.authorised(request.headers.raw):
            return _unauthorised()
        if not json_content(request.headers.raw):
            return _refused(unsupported_type())
        status, payload = await asyncio.to_thread(
            labels_route_payload,
            state.settings,
            state.labels_lake,
            await request.body(),
            now=state.clock() if state.clock else None,  # a simulation's clock, if any
            listeners=state.commits,
        )
        return JSONResponse(payload, status_code=status)

    @api.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/readyz",
        summary="A model is loaded, and the inference log can reach the lake",
        description="503 with the reason when no model is loaded, when the lake's catalog or "
        "`predictions` table is missing (predictions are still answered: the log keeps them "
        "until the lake is back), or when the log writer stopped writing because "
        "`predictions` was replaced by another table.",
    )
    async def readyz() -> JSONResponse:
        model = state.holder.describe()
        if model is None:
            return JSONResponse(
                {"ready": False, "reason": state.holder.last_error}, status_code=503
            )
        await asyncio.to_thread(state.lake.refresh)
        lake = state.lake.health(await asyncio.to_thread(state.log_stats))
        if not lake.ok:
            return JSONResponse(
                {"ready": False, "reason": f"inference log: {lake.reason}", "model": model},
                status_code=503,
            )
        return JSONResponse({"ready": True, "model": model})

    @api.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        await asyncio.to_thread(state.lake.refresh)
        body = await asyncio.to_thread(state.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4")

    @api.get("/v1/model", summary="The model being served")
    async def model(request: Request) -> JSONResponse:
        if not state.authorised(request.headers.raw):
            return _unauthorised()
        return JSONResponse(
            {
                "model": state.holder.describe(),
                "last_check": state.holder.last_check,
                "last_error": state.holder.last_error,
                "reloads": state.holder.reloads,
                "log_backend": state.settings.serving.log_backend,
                "log": state.log_stats().to_dict(),
            }
        )

    @api.post("/v1/admin/reload", summary="Check the registry's champion now")
    async def reload(request: Request) -> JSONResponse:
        if not state.authorised(request.headers.raw):
            return _unauthorised()
        swapped = await asyncio.to_thread(state.holder.check)
        return JSONResponse(
            {
                "swapped": swapped,
                "model": state.holder.describe(),
                "last_error": state.holder.last_error,
            }
        )
