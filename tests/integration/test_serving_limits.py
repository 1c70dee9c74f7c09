"""What a request may cost the server, over real uvicorn sockets: the body cap on every route
that takes a body (by Content-Length and on the stream), the body deadline that frees a stalled
upload, the JSON content type. The app runs without its lifespan (no model loaded): each of
these refusals comes before a model is needed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from fraudops.config import load_settings
from fraudops.runtime import Runtime
from fraudops.serving.app import create_app
from tests import waiting
from tests.serving_support import free_port

CAP = 20_000
TIMEOUT_S = 0.6
ROUTES = ("/v1/predict", "/v1/labels")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("limits") / "home"
    settings = load_settings(
        home=home, serving={"max_body_bytes": CAP, "body_timeout_s": TIMEOUT_S}
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(Runtime(settings)),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http="httptools",
        timeout_keep_alive=settings.serving.keep_alive_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    waiting.wait_for(lambda: server.started or not thread.is_alive(), "uvicorn started", timeout=30)
    assert thread.is_alive(), "uvicorn's thread ended before it started"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _detail(response: httpx.Response) -> dict[str, object]:
    [detail] = response.json()["detail"]
    assert isinstance(detail, dict)
    return detail


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_that_is_not_json_by_its_type_is_415(url: str, route: str) -> None:
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/jsonx"}, {}):
        answer = httpx.post(url + route, content=b'{"label": 1}', headers=headers)
        assert answer.status_code == 415, (headers, answer.text)
        assert _detail(answer)["loc"] == ["header", "content-type"]
    # application/json with parameters is JSON; it then goes on (no model here: 503, labels
    # with no lake: a refusal that is not about the body).
    ok = httpx.post(
        url + route,
        content=b"[]",
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert ok.status_code not in (408, 413, 415), ok.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_over_the_cap_is_413_by_length_and_on_the_stream(url: str, route: str) -> None:
    body = b"[" + b" " * CAP + b"]"
    json_type = {"Content-Type": "application/json"}
    announced = httpx.post(url + route, content=body, headers=json_type)
    assert announced.status_code == 413
    assert f"larger than {CAP} bytes (serving.max_body_bytes)" in str(_detail(announced)["msg"])

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to go by
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = httpx.post(url + route, content=chunks(), headers=json_type)
    assert streamed.status_code == 413 and "serving.max_body_bytes" in streamed.text


def test_other_routes_with_a_body_are_capped_too(url: str) -> None:
    answer = httpx.post(url + "/v1/admin/reload", content=b"x" * (CAP + 1))
    assert answer.status_code == 413


@pytest.mark.parametrize("route", ROUTES)
def test_a_stalled_upload_is_answered_408_and_its_connection_closed(url: str, route: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    stalled = []
    for _ in range(5):  # several at once: each is timed out on its own
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(
            f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n[{".encode()
        )
        stalled.append(conn)
    started = time.monotonic()
    for conn in stalled:
        received = b""
        while chunk := conn.recv(65536):  # until the server closes the connection
            received += chunk
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert b"serving.body_timeout_s" in received
        conn.close()
    assert time.monotonic() - started < TIMEOUT_S + 5


def test_the_deadline_covers_the_whole_body_not_each_chunk(url: str, tmp_path: Path) -> None:
    # A trickle (a byte every 0.2 s) never stalls for the whole deadline, and is still cut off.
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        conn.settimeout(0.2)
        received = b""
        while not received and time.monotonic() - started < 5:
            try:
                conn.sendall(b" ")
                received = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
