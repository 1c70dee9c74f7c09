"""Synthetic traffic against a running server: one generated transaction per /v1/predict call.

Closed loop by default (``concurrency`` requests in flight, each sent when one returns); with a
target ``rate`` it is open loop: request *i* is due at ``i / rate`` seconds whatever the server
does, and its latency counts from that due time, so a server that falls behind shows it in the
tail (no coordinated omission) rather than by quietly slowing the sender down.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson

from fraudops.config import Settings
from fraudops.data.drift import DEFAULT_PATTERN
from fraudops.data.sampling import request_records, sample_traffic
from fraudops.errors import ConfigError, FraudopsError
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec

PREDICT_PATH = "/v1/predict"
DEFAULT_CONCURRENCY = 16
TIMEOUT_S = 30.0
EXAMPLE_CHARS = 300


@dataclass
class TrafficReport:
    """What one `fraudops traffic` run saw."""

    url: str
    spec: str
    seed: int
    drifted: bool
    target_rate: float | None
    concurrency: int
    sent: int
    ok: int
    errors: dict[str, int]  # HTTP status (or client error class) -> count
    error_examples: dict[str, str]  # the first body / message of each kind
    seconds: float
    requests_per_s: float
    latency_ms: dict[str, float | None]  # p50, p95, p99, max over the 200 responses
    predicted_fraud: int
    fraud_share: float | None
    model_versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_url(settings: Settings) -> str:
    host = settings.serving.host
    # A server bound to every interface is reached on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.serving.port}"


def build_bodies(
    settings: Settings,
    spec: FeatureSpec,
    n: int,
    *,
    seed: int,
    drifted: bool = False,
    progress: Reporter | None = None,
) -> list[bytes]:
    """``n`` request bodies, one generated transaction each: every feature, id and customer.

    The customers are the training set's (``data.seed``); ids carry the seed, so two runs with
    different seeds never send the same transaction id. ``drifted``: ``data.default_drift``.
    """
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    frame = sample_traffic(
        settings.data,
        spec,
        n,
        seed=seed,
        id_prefix=f"tx-traffic{'-drift' if drifted else ''}-{seed}-",
        data_drift=DEFAULT_PATTERN if drifted else None,
        progress=progress,
    )
    return [orjson.dumps(record) for record in request_records(frame, spec)]


class _Tally:
    """Counts and latencies as responses come in."""

    def __init__(self, on_done: Callable[[], None]) -> None:
        self.on_done = on_done
        self.sent = 0
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.versions: Counter[str] = Counter()
        self.fraud = 0
        self.answered = 0  # responses of any status
        self.unreachable: str | None = None  # set when the server cannot be reached at all

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, example[:EXAMPLE_CHARS])

    def response(self, status: int, content: bytes, latency_s: float) -> None:
        self.answered += 1
        if status != 200:
            self.error(str(status), content.decode("utf-8", "replace"))
            return
        try:
            body = orjson.loads(content)
            version = str(body["model_version"])
            fraud = sum(int(p) for p in body["predictions"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.error("invalid-response", f"{type(exc).__name__}: {exc}")
            return
        self.latencies.append(latency_s)
        self.versions[version] += 1
        self.fraud += fraud


async def send(
    url: str,
    bodies: list[bytes],
    *,
    token: str | None = None,
    rate: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = TIMEOUT_S,
    on_done: Callable[[], None] = lambda: None,
) -> tuple[_Tally, float]:
    """Post every body to ``url``/v1/predict; the tally and the wall seconds it took."""
    import httpx

    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    tally = _Tally(on_done)
    loop = asyncio.get_running_loop()
    # One single-connection client per slot rather than one pool of `concurrency`: httpcore
    # scans its whole pool on every request, which costs the client ~30% more CPU, taken from
    # the server under test on a small machine. trust_env=False: no detour through a proxy.
    clients = [
        httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=timeout_s,
            trust_env=False,
        )
        for _ in range(min(concurrency, len(bodies)))
    ]

    async def one(client: httpx.AsyncClient, body: bytes, due: float | None) -> None:
        started = loop.time()
        try:
            response = await client.post(PREDICT_PATH, content=body)
        except httpx.ConnectError as exc:
            if not tally.answered:  # down from the start, not a blip mid-run
                tally.unreachable = str(exc) or type(exc).__name__
            tally.error(type(exc).__name__, str(exc))
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__, str(exc) or type(exc).__name__)
        else:
            latency = loop.time() - (started if due is None else due)
            tally.response(response.status_code, response.content, latency)
        finally:
            tally.sent += 1
            tally.on_done()

    begun = loop.time()
    try:
        if rate is None:
            await _closed_loop(bodies, clients, tally, one)
        else:
            await _open_loop(bodies, clients, rate, begun, tally, one)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return tally, loop.time() - begun


async def _closed_loop(bodies: list[bytes], clients: list[Any], tally: _Tally, one: Any) -> None:
    pending = iter(bodies)

    async def worker(client: Any) -> None:
        for body in pending:  # shared iterator: each body goes to exactly one worker
            if tally.unreachable:
                return
            await one(client, body, None)

    await asyncio.gather(*(worker(client) for client in clients))


async def _open_loop(
    bodies: list[bytes], clients: list[Any], rate: float, begun: float, tally: _Tally, one: Any
) -> None:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[Any] = asyncio.Queue()
    for client in clients:
        idle.put_nowait(client)
    running: set[asyncio.Task[None]] = set()

    async def on(client: Any, body: bytes, due: float) -> None:
        try:
            await one(client, body, due)
        finally:
            idle.put_nowait(client)

    for i, body in enumerate(bodies):
        if tally.unreachable:
            break
        due = begun + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        client = await idle.get()  # all busy: the send waits; its latency still counts from due
        task = asyncio.create_task(on(client, body, due))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)


def run_traffic(
    settings: Settings,
    *,
    n: int,
    drifted: bool = False,
    rate: float | None = None,
    url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    token: str | None = None,
    spec_name: str | None = None,
    seed: int | None = None,
    progress: Reporter | None = None,
) -> TrafficReport:
    """Generate ``n`` transactions and send them one per request; the latency summary.

    ``token`` defaults to the first of ``serving.tokens``; ``seed`` to a fresh random one (it is
    reported, so a run can be repeated). Raises FraudopsError when the server cannot be reached.
    """
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise ConfigError(f"--rate must be positive, got {rate}")
    reporter = progress or Reporter()
    spec = settings.feature_spec(spec_name)
    url = url or default_url(settings)
    if token is None and settings.serving.tokens:
        token = settings.serving.tokens[0].get_secret_value()
    seed = secrets.randbelow(2**31) if seed is None else seed
    bodies = build_bodies(settings, spec, n, seed=seed, drifted=drifted, progress=reporter)
    with reporter.step(f"Sending {n:,} requests to {url}", total=n) as bar:
        tally, seconds = asyncio.run(
            send(
                url,
                bodies,
                token=token,
                rate=rate,
                concurrency=concurrency,
                on_done=bar.advance,
            )
        )
    if tally.unreachable is not None:
        raise FraudopsError(
            f"cannot reach the server at {url}: {tally.unreachable} (is `fraudops serve` running?"
            " --url sets the address)"
        )
    ok = len(tally.latencies)
    return TrafficReport(
        url=url,
        spec=spec.name,
        seed=seed,
        drifted=drifted,
        target_rate=rate,
        concurrency=concurrency,
        sent=tally.sent,
        ok=ok,
        errors=dict(tally.errors),
        error_examples=tally.examples,
        seconds=seconds,
        requests_per_s=tally.sent / seconds if seconds > 0 else 0.0,
        latency_ms=latency_summary(tally.latencies),
        predicted_fraud=tally.fraud,
        fraud_share=tally.fraud / ok if ok else None,
        model_versions=dict(sorted(tally.versions.items())),
    )


def latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max in milliseconds (None without a successful request)."""
    if not latencies_s:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ms = np.asarray(latencies_s) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(ms.max()), 3),
    }
