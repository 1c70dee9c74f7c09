"""What a request may cost the server: its body's size and time, its content type.

Raw ASGI, no framework: the predict fast path calls ``json_content`` and ``read_body`` itself,
and ``BodyLimit`` wraps any other ASGI app (the API's FastAPI routes, the dashboard) so that no
route of theirs ever parses a body past the cap or waits forever for one:

- a ``Content-Length`` over the cap is refused before a byte of the body is read (413);
- a body that grows past the cap while it streams in (chunked, or a lying length) is refused
  as soon as it does (413): at most ``cap`` bytes are ever held;
- a body that has not fully arrived ``timeout_s`` after the request started is refused (408),
  which frees the connection a stalled upload held.

uvicorn guards the rest of a connection's life only in part (see the README's security
paragraph): idle keep-alive connections are closed after ``timeout_keep_alive``; a client that
connects and stalls before its headers are complete needs a front server's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from time import monotonic as _monotonic
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPE = b"application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyRefused(Exception):
    """The request's body (or its announced size) is refused: ``status`` and the error list
    in FastAPI's shape."""

    def __init__(self, status: int, loc: list[str], msg: str, kind: str) -> None:
        super().__init__(msg)
        self.status = status
        self.errors = [{"loc": loc, "msg": msg, "type": kind}]

    def body(self) -> bytes:
        return orjson.dumps({"detail": self.errors})


def too_large(cap: int, setting: str) -> BodyRefused:
    return BodyRefused(
        413, ["body"], f"the body is larger than {cap} bytes ({setting})", "too_long"
    )


def unsupported_type() -> BodyRefused:
    return BodyRefused(
        415,
        ["header", "content-type"],
        "Content-Type must be application/json",
        "unsupported_media_type",
    )


def json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request says its body is JSON (``application/json``, any parameters)."""
    for key, value in headers:
        if key == b"content-type":
            if value == JSON_TYPE:  # the common case: one compare
                return True
            return value.split(b";", 1)[0].strip().lower() == JSON_TYPE
    return False


def body_headers(headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    """(the body is JSON by its Content-Type, its Content-Length): one pass, for the fast path."""
    is_json = False
    length = None
    for key, value in headers:
        if key == b"content-type":
            is_json = value == JSON_TYPE or value.split(b";", 1)[0].strip().lower() == JSON_TYPE
        elif key == b"content-length" and value.isdigit():  # the parser refuses a bad one
            length = int(value)
    return is_json, length


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses a malformed length before us
    return None


class BodyDeadlines:
    """The deadline of every body being read, enforced by one sweeping task per event loop.

    A timer per request (``asyncio.timeout``) cost the predict path ~8 µs; registering the
    reading task in a dict costs well under one. The sweeper wakes every ``timeout_s / 4`` (at
    most 1 s) while bodies are being read, cancels the readers past their deadline, and ends
    when none is left: a stalled upload is answered within ``timeout_s`` and a quarter.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._interval = min(1.0, timeout_s / 4)
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None  # the loop a sweeper runs on
        self._sweeper: asyncio.Task[None] | None = None

    def begin(self) -> asyncio.Task[Any] | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            return None
        self._reading[task] = _monotonic() + self.timeout_s
        if self._sweeping is not loop:
            self._sweeping = loop
            self._sweeper = loop.create_task(self._sweep())
        return task

    def end(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._reading.pop(task, None)

    def overran(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether the sweeper cancelled ``task`` (then its cancellation is taken back)."""
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            mine = {t: d for t, d in self._reading.items() if t.get_loop() is loop}
            if not mine:
                if self._sweeping is loop:
                    self._sweeping = None
                return
            now = _monotonic()
            for task, deadline in mine.items():
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()


async def read_body(
    receive: Receive,
    cap: int,
    deadlines: BodyDeadlines,
    setting: str = "serving.max_body_bytes",
) -> bytes | None:
    """The whole body, or None when the client went away. BodyRefused (413) past ``cap``
    bytes, (408) when it is not all there within the deadline."""
    chunks: list[bytes] = []
    size = 0
    task = deadlines.begin()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise too_large(cap, setting)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if not deadlines.overran(task):
            raise
        raise BodyRefused(
            408,
            ["body"],
            f"the body did not arrive within {deadlines.timeout_s:g} s (serving.body_timeout_s)",
            "timeout",
        ) from None
    finally:
        deadlines.end(task)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_refusal(send: Send, refused: BodyRefused) -> None:
    # The rest of the body is never read: the connection is closed, not kept alive.
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [(b"content-type", JSON_TYPE), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": refused.body()})


class BodyLimit:
    """An ASGI app whose requests' bodies are read under a cap and a deadline first, then
    handed to ``app`` whole (routes that never expect a body get the same bound)."""

    def __init__(
        self, app: ASGIApp, cap: int, timeout_s: float, setting: str = "serving.max_body_bytes"
    ) -> None:
        self.app = app
        self.cap = cap
        self.deadlines = BodyDeadlines(timeout_s)
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            length = declared_length(scope["headers"])
            if length is not None and length > self.cap:
                raise too_large(self.cap, self.setting)
            body = await read_body(receive, self.cap, self.deadlines, self.setting)
        except BodyRefused as refused:
            await send_refusal(send, refused)
            return
        if body is None:
            return  # the client is gone: nobody to answer
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # only a disconnect can come now
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
