"""`fraudops log-consumer`: drains the Redis Streams inference log into the lake."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudops.cli._common import JsonOption, SpecOption, emit, err, kv_table, out, settings_from
from fraudops.errors import FraudopsError

if TYPE_CHECKING:
    from fraudops.inference_log.base import DrainReport
    from fraudops.inference_log.redis_consumer import RedisLogConsumer


def log_consumer(
    ctx: typer.Context,
    spec: SpecOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Consumer name in the group (default: <host>-<pid>). A restart under the same "
            "name settles its own pending entries first; run one process per name.",
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Settle everything available now (own pending, reclaimable, new) and exit.",
        ),
    ] = False,
    claim_idle_ms: Annotated[
        int | None,
        typer.Option(
            "--claim-idle-ms",
            min=1,
            help="Take over entries pending this long on another consumer "
            "(default: serving.redis_claim_idle_ms).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Consume the Redis inference-log stream as one member of its group, until SIGTERM/SIGINT.

    Each batch is acknowledged only after its lake commit; entries left pending by a dead
    consumer are taken over after the claim idle time. Exits 1 if a lake commit failed (--once).
    """
    from redis.exceptions import RedisError

    # redis-py and pyiceberg: imported when the command runs, not for --help.
    from fraudops.inference_log.redis_consumer import RedisLogConsumer
    from fraudops.inference_log.redis_producer import redacted_url
    from fraudops.runtime import Runtime

    runtime = Runtime(settings_from(ctx), spec)
    settings = runtime.settings
    consumer = runtime.log_drainer(name, claim_idle_ms=claim_idle_ms, backend="redis")
    assert isinstance(consumer, RedisLogConsumer)
    err.print(
        f"log-consumer [bold]{consumer.name}[/] on stream {consumer.stream} "
        f"(group {consumer.group}, lake spec {consumer.spec_name})",
        highlight=False,
    )
    with runtime, consumer:
        try:
            if once:
                report = consumer.drain()
            else:
                report = _run_until_signalled(consumer)
                report.pending = consumer.pending()
        except RedisError as exc:
            url = redacted_url(settings.serving.redis_url)
            raise FraudopsError(f"Redis at {url} failed: {exc}") from None
    result: dict[str, Any] = report.to_dict()
    emit(result, as_json, lambda: out.print(kv_table("log-consumer", result)))
    if once and report.commit_failures:
        raise typer.Exit(1)


def _run_until_signalled(consumer: RedisLogConsumer) -> DrainReport:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        err.print(f"{signal.Signals(signum).name}: settling the batch in hand, then stopping")
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return consumer.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
