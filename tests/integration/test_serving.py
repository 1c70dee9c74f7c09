"""`fraudops serve` as a real process: answers, errors, auth, metrics, hot reload, the log."""

from __future__ import annotations

import http.client
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from fraudops import governance
from fraudops.config import Settings
from fraudops.runtime import Runtime
from tests.serving_support import (
    FRAUDOPS,
    Load,
    Server,
    env_for,
    get_json,
    logged,
    post_json,
    train_champion,
    transactions,
    wait_logged,
)
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Two registered versions of the same model; version 2 is the champion."""
    home = tmp_path_factory.mktemp("serving") / "home"
    return train_champion(home, times=2)


@pytest.fixture(scope="module")
def bodies(trained: Settings) -> list[dict[str, Any]]:
    return transactions(trained, 300)


@pytest.fixture(scope="module")
def server(trained: Settings) -> Iterator[Server]:
    running = Server(trained.home_dir).start()
    yield running
    running.stop()


def test_a_transaction_gets_probability_decision_tier_and_the_seed_shape(
    server: Server, bodies: list[dict[str, Any]]
) -> None:
    status, answer = post_json(server.url + "/v1/predict", bodies[0])
    assert status == 200
    result = answer["results"][0]
    assert result["transaction_id"] == bodies[0]["transaction_id"]
    assert 0.0 <= result["probability"] <= 1.0
    assert result["risk_tier"] in {"low", "medium", "high", "critical"}
    assert answer["model_name"] == "fraudops-transactions30" and answer["model_version"] == "2"
    assert answer["predictions"] == [result["prediction"]]
    fraud, legit = answer["probabilities"]["fraud"][0], answer["probabilities"]["non_fraud"][0]
    assert fraud == result["probability"] and abs(fraud + legit - 1.0) < 1e-12


def test_a_list_is_scored_like_its_members_one_by_one(
    server: Server, bodies: list[dict[str, Any]]
) -> None:
    status, batch = post_json(server.url + "/v1/predict", bodies[:20])
    assert status == 200 and len(batch["results"]) == 20
    singles = [post_json(server.url + "/v1/predict", b)[1]["results"][0] for b in bodies[:20]]
    for together, alone in zip(batch["results"], singles, strict=True):
        assert together["probability"] == pytest.approx(alone["probability"], abs=1e-6)
        assert together["inference_id"] != alone["inference_id"]


def test_explain_returns_the_top_reason_codes(
    server: Server, bodies: list[dict[str, Any]], trained: Settings
) -> None:
    status, answer = post_json(server.url + "/v1/predict?explain=true", bodies[1])
    assert status == 200
    reasons = answer["results"][0]["reason_codes"]
    assert len(reasons) == trained.serving.explain_top_k
    names = set(trained.feature_spec().feature_names)
    assert all(r["feature"] in names for r in reasons)
    contributions = [r["contribution"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True)


def test_bad_fields_get_422_naming_each_and_are_not_logged(
    server: Server, bodies: list[dict[str, Any]]
) -> None:
    before = _counter(server, 'fraudops_predictions_total{prediction="legit"}') + _counter(
        server, 'fraudops_predictions_total{prediction="fraud"}'
    )
    body = {**bodies[2], "transaction_hour": 31, "velocity_score": "high"}
    del body["credit_limit"]
    status, answer = post_json(server.url + "/v1/predict", body)
    assert status == 422
    locations = {tuple(d["loc"]) for d in answer["detail"]}
    assert locations == {("body", "velocity_score"), ("body", "credit_limit")}
    # Type and presence first; the range of transaction_hour is named once those are right.
    body["velocity_score"], body["credit_limit"] = 0.5, 1000.0
    status, answer = post_json(server.url + "/v1/predict", body)
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "transaction_hour"]
    after = _counter(server, 'fraudops_predictions_total{prediction="legit"}') + _counter(
        server, 'fraudops_predictions_total{prediction="fraud"}'
    )
    assert after == before


def test_health_readiness_and_metrics(server: Server, bodies: list[dict[str, Any]]) -> None:
    assert get_json(server.url + "/healthz") == (200, {"status": "ok"})
    status, ready = get_json(server.url + "/readyz")
    assert status == 200 and ready["model"]["model_version"] == "2"
    before = _counter(server, 'fraudops_requests_total{route="/v1/predict",status="200"}')
    for body in bodies[:5]:
        post_json(server.url + "/v1/predict", body)
    after = _counter(server, 'fraudops_requests_total{route="/v1/predict",status="200"}')
    assert after == before + 5
    text = _metrics(server)
    for name in (
        "fraudops_request_latency_seconds_bucket",
        "fraudops_log_queue_bytes",
        "fraudops_log_records_written_total",
        "fraudops_log_records_dropped_total",
        'fraudops_log_records_rejected_total{reason="checksum"}',
        'fraudops_log_records_rejected_total{reason="torn"}',
    ):
        assert name in text
    assert _counter(server, "fraudops_lake_available") == 1.0
    assert _counter(server, "fraudops_log_writing_stopped") == 0.0


def test_logged_rows_carry_features_and_decision(
    trained: Settings, server: Server, bodies: list[dict[str, Any]]
) -> None:
    status, answer = post_json(server.url + "/v1/predict", bodies[7])
    assert status == 200
    inference_id = answer["results"][0]["inference_id"]
    # The running server's own writer drains the spool within a few seconds.
    from fraudops.lake import Lake

    def landed() -> list[dict[str, Any]]:
        with Lake.open(trained, "transactions30") as lake:
            frame = lake.read_frame("predictions", row_filter=f"inference_id = '{inference_id}'")
        return frame.to_dict(orient="records")  # type: ignore[return-value]

    [row] = wait_for(landed, "the server's log writer lands the record", timeout=30, poll=0.5)
    assert row["transaction_id"] == bodies[7]["transaction_id"]
    assert row["transaction_amount"] == pytest.approx(bodies[7]["transaction_amount"])
    assert row["probability"] == pytest.approx(answer["results"][0]["probability"])
    assert row["model_version"] == "2" and row["risk_tier"] == answer["results"][0]["risk_tier"]
    assert row["latency_ms"] > 0 and row["threshold"] > 0


def test_labels_posted_for_served_predictions_are_recorded(
    trained: Settings, server: Server, bodies: list[dict[str, Any]]
) -> None:
    status, answer = post_json(server.url + "/v1/predict", bodies[9])
    assert status == 200
    inference_id = answer["results"][0]["inference_id"]
    wait_logged(trained, {inference_id})
    event = {"inference_id": inference_id, "label": 1, "source": "chargeback"}
    status, report = post_json(
        server.url + "/v1/labels", [event, {"inference_id": "nope", "label": 0}]
    )
    assert status == 200, report
    assert report["written"] == 1 and len(report["unknown"]) == 1
    # One malformed entry refuses the whole batch, naming it.
    status, refused = post_json(
        server.url + "/v1/labels", [event, {"inference_id": inference_id, "label": 7}]
    )
    assert status == 422
    assert refused["detail"][0]["loc"][:3] == ["body", 1, "label"]


def _metrics(server: Server) -> str:
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        return str(response.read().decode())


def _counter(server: Server, sample: str) -> float:
    for line in _metrics(server).splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_bodies_must_be_json_and_within_the_cap(
    server: Server, bodies: list[dict[str, Any]]
) -> None:
    """The real server (uvicorn as `serve` runs it): 415 unless application/json, 413 past
    serving.max_body_bytes on the labels route as on predict (tests/integration/
    test_serving_limits.py covers the streamed body and the stalled upload)."""
    import urllib.request

    for route in ("/v1/predict", "/v1/labels"):
        request = urllib.request.Request(
            server.url + route,
            data=json.dumps(bodies[0]).encode(),
            headers={"Content-Type": "text/plain"},
        )
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError(f"{route} took a text/plain body")
        except urllib.error.HTTPError as exc:
            assert exc.code == 415, route
            assert json.loads(exc.read())["detail"][0]["loc"] == ["header", "content-type"]
        # A 5 MB body announced: refused before it is sent (the server then closes).
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", route)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(5_000_000))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413, route
        assert "serving.max_body_bytes" in json.loads(response.read())["detail"][0]["msg"]
        connection.close()


# ---- the API schema, fuzzed ------------------------------------------------------------------


@pytest.mark.parametrize("route", [None, "/v1/labels"])
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_gets_a_server_error(
    server: Server, mode: str, route: str | None
) -> None:
    """Schemathesis draws requests from the OpenAPI document — valid ones, and (negative mode)
    ones that break it — for every route, then for /v1/labels alone (a body route that writes
    to the lake): none may get a 5xx, every 422 names its field."""
    from schemathesis.generation.modes import GenerationMode

    api: Any = schemathesis.openapi.from_url(server.url + "/openapi.json")
    if route is not None:
        api = api.include(path=route)
    seen: set[int] = set()

    @given(case=api.as_strategy(generation_mode=GenerationMode(mode)))
    @hypothesis_settings(
        max_examples=100 if route is None else 60,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call()
        seen.add(response.status_code)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code == 422:
            detail = response.json()["detail"]
            assert detail and all(d["loc"] and d["msg"] for d in detail)

    check()
    assert 200 in seen if mode == "positive" else 422 in seen, seen


# ---- auth and exposure ---------------------------------------------------------------------------


def test_tokens_guard_predict_and_admin_routes(
    trained: Settings, bodies: list[dict[str, Any]]
) -> None:
    guarded = Server(trained.home_dir, FRAUDOPS_SERVING__TOKENS='["s3cret-token"]')
    guarded.start()
    try:
        assert post_json(guarded.url + "/v1/predict", bodies[0])[0] == 401
        import urllib.request

        request = urllib.request.Request(
            guarded.url + "/v1/predict",
            data=json.dumps(bodies[0]).encode(),
            headers={"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert post_json(guarded.url + "/v1/admin/reload", {})[0] == 401
        assert get_json(guarded.url + "/healthz")[0] == 200  # probes stay open
    finally:
        guarded.stop()


def test_refuses_a_public_address_without_a_token(trained: Settings) -> None:
    done = subprocess.run(
        [*FRAUDOPS, "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env_for(trained.home_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "serving.tokens" in done.stderr


# ---- hot reload ---------------------------------------------------------------------------


def promote(settings: Settings, version: str, *, actor: str, reason: str) -> None:
    with Runtime(settings) as runtime:
        governance.promote(runtime, version, actor=actor, reason=reason)


def test_moving_the_champion_under_traffic_fails_no_request(
    trained: Settings, bodies: list[dict[str, Any]]
) -> None:
    server = Server(trained.home_dir, FRAUDOPS_SERVING__RELOAD_INTERVAL_S="0.2").start()
    load = Load(server.url, bodies, threads=6).start()
    try:
        load.wait_for(200)
        promote(trained, "1", actor="test", reason="move champion under traffic")
        wait_for(
            lambda: any(v == "1" for _, v in load.ok), "an answer of v1", timeout=30, poll=0.05
        )
        load.wait_for(len(load.ok) + 200)
    finally:
        load.stop()
        server.stop()
        promote(trained, "2", actor="test", reason="restore")
    assert load.failures == []
    versions = [v for _, v in load.ok]
    assert "2" in versions and "1" in versions
    # Each logged record names the version that answered it (the module's running server
    # holds the spool's writer lock and drains what this server left).
    answered = dict(load.ok)
    frame = wait_logged(trained, set(answered)).set_index("inference_id")["model_version"]
    assert all(frame[i] == v for i, v in answered.items())


# ---- the Redis Streams log backend, end to end ------------------------------------------------


def test_with_the_redis_backend_every_answer_reaches_the_lake_through_a_consumer(
    trained: Settings, bodies: list[dict[str, Any]]
) -> None:
    import uuid

    import redis

    from tests.services import require_redis

    require_redis()
    stream = f"test:{uuid.uuid4().hex}"
    extra = {
        "FRAUDOPS_SERVING__LOG_BACKEND": "redis",
        "FRAUDOPS_SERVING__REDIS_STREAM": stream,
    }
    server = Server(trained.home_dir, **extra).start()
    try:
        answered = []
        for body in bodies[:120]:
            status, answer = post_json(server.url + "/v1/predict", body)
            assert status == 200
            answered.append(answer["results"][0]["inference_id"])
    finally:
        server.stop()
    client = redis.Redis.from_url(trained.serving.redis_url)
    try:
        assert client.xlen(f"{stream}:transactions30") == 120
        done = subprocess.run(
            [*FRAUDOPS, "log-consumer", "--once", "--json"],
            env=env_for(trained.home_dir, **extra),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["written"] == 120
        frame = logged(trained)
        assert set(answered) <= set(frame["inference_id"])
        assert frame["inference_id"].is_unique
    finally:
        for key in client.scan_iter(f"{stream}*"):
            client.delete(key)
