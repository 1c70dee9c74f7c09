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


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses a malformed length before us
    return None


async def read_body(
    receive: Receive, cap: int, timeout_s: float, setting: str = "serving.max_body_bytes"
) -> bytes | None:
    """The whole body, or None when the client went away. BodyRefused (413) past ``cap``
    bytes, (408) when it is not all there within ``timeout_s``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
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
    except TimeoutError:
        raise BodyRefused(
            408,
            ["body"],
            f"the body did not arrive within {timeout_s:g} s (serving.body_timeout_s)",
            "timeout",
        ) from None
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
        self.timeout_s = timeout_s
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            length = declared_length(scope["headers"])
            if length is not None and length > self.cap:
                raise too_large(self.cap, self.setting)
            body = await read_body(receive, self.cap, self.timeout_s, self.setting)
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
