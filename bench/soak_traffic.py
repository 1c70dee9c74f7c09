"""bench/soak's traffic: the loop its child processes run, whatever the bodies are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def send_minutes(
    url: str,
    rate: float,
    minutes: int,
    concurrency: int,
    out: Any,
    minute_bodies: Callable[[int, int], tuple[list[dict[str, Any]], list[Any], list[int]]],
) -> None:
    """A traffic child process's loop: each minute, ``minute_bodies(minute, n)`` gives n request
    bodies with their transaction ids and true labels, sent open loop at ``rate``; the minute's
    figures (and the ids and labels, for the labeller) go on ``out``, then None at the end."""
    import asyncio

    import orjson

    from fraudops.traffic.client import latency_summary, send

    n = max(1, round(rate * 60))

    async def run() -> None:
        for minute in range(1, minutes + 1):
            records, ids, truth = minute_bodies(minute, n)
            bodies = [orjson.dumps(r) for r in records]
            tally, seconds = await send(url, bodies, rate=rate, concurrency=concurrency)
            out.put(
                {
                    "minute": minute,
                    "sent": tally.sent,
                    "ok": len(tally.latencies),
                    "errors": dict(tally.errors),
                    "seconds": round(seconds, 2),
                    "latency_ms": latency_summary(tally.latencies),
                    "ids": ids,
                    "truth": truth,
                }
            )

    try:
        asyncio.run(run())
    finally:
        out.put(None)
