"""`fraudops traffic` against a stand-in server that speaks the /v1/predict contract.

The stand-in (a small FastAPI app under uvicorn in a thread) is a test peer for the client: it
checks the token and the body, answers in the server's shape, and records what it received, so
the tests can hold the client's summary against what really went over the wire.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from typer.testing import CliRunner

from fraudops.cli import app as cli_app
from fraudops.config import Settings, load_settings
from fraudops.errors import ConfigError, FraudopsError
from fraudops.spec import TRANSACTIONS30
from fraudops.traffic.client import build_bodies, default_url, latency_summary, run_traffic
from tests.waiting import wait_for

TOKEN = "s3cret-token"
FEATURES = TRANSACTIONS30.feature_names


@dataclass
class Peer:
    """What the stand-in does and what it saw."""

    token: str | None = TOKEN
    versions: tuple[str, ...] = ("1",)
    fail_every: int = 0  # answer 503 to every k-th request (0: never)
    received: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def stand_in(peer: Peer) -> FastAPI:
    api = FastAPI()

    @api.post("/v1/predict")
    async def predict(request: Request, explain: bool = False) -> Response:
        with peer.lock:
            peer.calls += 1
            call = peer.calls
        if peer.token and request.headers.get("authorization") != f"Bearer {peer.token}":
            return JSONResponse({"detail": "invalid or missing bearer token"}, status_code=401)
        if peer.fail_every and call % peer.fail_every == 0:
            return JSONResponse({"detail": "overloaded"}, status_code=503)
        body = orjson.loads(await request.body())
        bad = [
            {"loc": ["body", name], "msg": "Field required", "type": "missing"}
            for name in FEATURES
            if not isinstance(body.get(name), int | float)
        ]
        if bad:
            return JSONResponse({"detail": bad}, status_code=422)
        with peer.lock:
            peer.received.append(body)
            version = peer.versions[(len(peer.received) - 1) % len(peer.versions)]
        # A stand-in rule, not a model: a CVV mismatch is "fraud".
        probability = 0.95 if body["cvv_match"] == 0 else 0.02
        prediction = int(probability >= 0.5)
        return JSONResponse(
            {
                "model_name": "fraudops-transactions30",
                "model_version": version,
                "results": [
                    {
                        "inference_id": f"inf-{call}",
                        "transaction_id": body.get("transaction_id"),
                        "probability": probability,
                        "prediction": prediction,
                        "risk_tier": "critical" if prediction else "low",
                    }
                ],
                "predictions": [prediction],
                "probabilities": {"fraud": [probability], "non_fraud": [1 - probability]},
            }
        )

    return api


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Peer]]:
    peer = Peer()
    sock = _free_socket()
    config = uvicorn.Config(stand_in(peer), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, "the stand-in server started", timeout=10, poll=0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", peer
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def peer(server: tuple[str, Peer]) -> Peer:
    peer = server[1]
    peer.token, peer.versions, peer.fail_every = TOKEN, ("1",), 0
    peer.received.clear()
    peer.calls = 0
    return peer


@pytest.fixture
def url(server: tuple[str, Peer]) -> str:
    return server[0]


def _settings(settings: Settings) -> Settings:
    return load_settings(home=settings.home, serving={"tokens": [TOKEN, "other"]})


def test_every_transaction_is_sent_once_and_summarised(
    settings: Settings, url: str, peer: Peer
) -> None:
    peer.versions = ("1", "2")
    report = run_traffic(_settings(settings), n=40, url=url, concurrency=4, seed=5)

    assert (report.sent, report.ok, report.errors) == (40, 40, {})
    ids = [body["transaction_id"] for body in peer.received]
    assert len(set(ids)) == 40 and all(i.startswith("tx-traffic-5-") for i in ids)
    assert all(set(body) == {*FEATURES, "transaction_id", "customer_id"} for body in peer.received)
    # The summary is what the stand-in answered: its fraud rule, its alternating versions.
    frauds = sum(body["cvv_match"] == 0 for body in peer.received)
    assert report.predicted_fraud == frauds
    assert report.fraud_share == pytest.approx(frauds / 40)
    assert report.model_versions == {"1": 20, "2": 20}
    lat = report.latency_ms
    p50, p95, p99, top = (lat[k] for k in ("p50", "p95", "p99", "max"))
    assert p50 is not None and p95 is not None and p99 is not None and top is not None
    assert 0 < p50 <= p95 <= p99 <= top
    assert report.requests_per_s > 0 and report.seed == 5 and report.target_rate is None
    json.dumps(report.to_dict())  # --json prints it as is


def test_bodies_are_reproducible_and_drift_moves_the_configured_features(
    settings: Settings,
) -> None:
    plain = build_bodies(settings, TRANSACTIONS30, 2000, seed=9)
    assert plain == build_bodies(settings, TRANSACTIONS30, 2000, seed=9)
    drifted = build_bodies(settings, TRANSACTIONS30, 2000, seed=9, drifted=True)
    a = [orjson.loads(b) for b in plain]
    d = [orjson.loads(b) for b in drifted]
    assert d[0]["transaction_id"].startswith("tx-traffic-drift-9-")

    def mean(rows: list[dict[str, Any]], name: str) -> float:
        return float(np.mean([r[name] for r in rows]))

    # data.default_drift: amount ×1.4, distance ×2.0, velocity ×1.5, transactions_24h +3.
    assert mean(d, "transaction_amount") / mean(a, "transaction_amount") == pytest.approx(1.4, 0.05)
    assert mean(d, "distance_from_home_km") / mean(a, "distance_from_home_km") == pytest.approx(
        2.0, 0.05
    )
    assert mean(d, "num_transactions_24h") - mean(a, "num_transactions_24h") == pytest.approx(
        3, abs=0.2
    )
    assert [r["merchant_category_code"] for r in a] == [r["merchant_category_code"] for r in d]
    assert all(isinstance(r["transaction_hour"], int) for r in d)  # ints stay JSON integers


def test_failures_are_counted_by_status_with_an_example(
    settings: Settings, url: str, peer: Peer
) -> None:
    peer.fail_every = 4
    report = run_traffic(_settings(settings), n=20, url=url, concurrency=1, seed=1)
    assert (report.sent, report.ok, report.errors) == (20, 15, {"503": 5})
    assert "overloaded" in report.error_examples["503"]

    peer.fail_every = 0
    wrong = run_traffic(settings, n=6, url=url, token="wrong", seed=1)
    assert (wrong.ok, wrong.errors) == (0, {"401": 6})
    assert wrong.latency_ms["p50"] is None and wrong.fraud_share is None


def test_a_target_rate_paces_the_requests(settings: Settings, url: str, peer: Peer) -> None:
    report = run_traffic(_settings(settings), n=30, url=url, rate=300, concurrency=8, seed=2)
    assert (report.ok, report.target_rate) == (30, 300)
    # Open loop: request i is due at i/300 s, so the run cannot be shorter than 29/300 s.
    assert report.seconds >= 29 / 300
    assert report.requests_per_s <= 300 * 30 / 29


def test_an_unreachable_server_is_one_clear_error(settings: Settings) -> None:
    sock = _free_socket()  # bound, never listening: connections are refused
    port = sock.getsockname()[1]
    try:
        with pytest.raises(FraudopsError, match=rf"cannot reach the server at .*:{port}"):
            run_traffic(settings, n=50, url=f"http://127.0.0.1:{port}", seed=1)
    finally:
        sock.close()


def test_bad_arguments_are_config_errors(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="rate"):
        run_traffic(settings, n=1, rate=0)
    with pytest.raises(ConfigError, match="concurrency"):
        run_traffic(settings, n=1, concurrency=0)


def test_default_url_reaches_an_all_interfaces_server_on_loopback(home: Any) -> None:
    assert default_url(load_settings(home=home)) == "http://127.0.0.1:8080"
    wide = load_settings(home=home, serving={"host": "0.0.0.0", "port": 9000})
    assert default_url(wide) == "http://127.0.0.1:9000"


def test_latency_summary_percentiles() -> None:
    summary = latency_summary([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert summary == {"p50": 50.5, "p95": 95.05, "p99": 99.01, "max": 100.0}


def test_cli_prints_the_summary_as_json_and_exits_1_on_errors(
    settings: Settings, url: str, peer: Peer
) -> None:
    env = {"FRAUDOPS_HOME": str(settings.home)}
    args = ["traffic", "--n", "12", "--url", url, "--token", TOKEN, "--seed", "3", "--json"]
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["ok"], summary["model_versions"]) == (12, 12, {"1": 12})

    peer.fail_every = 3
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == {"503": 4}
