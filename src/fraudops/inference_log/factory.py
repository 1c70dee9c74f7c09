"""The inference log's backend from the settings: ``serving.log_backend`` (spool | redis | none).

``spool`` (default): the local durable spool, drained into the lake by the log writer (a child
process of ``fraudops serve``, or ``fraudops log-writer``). ``redis``: Redis Streams, drained by
``fraudops log-consumer``. ``none``: nothing is logged (and nothing drained).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fraudops.config import LogBackend, Settings
from fraudops.errors import ConfigError
from fraudops.inference_log.base import BACKENDS, Drainer, Producer, ProducerStats
from fraudops.inference_log.spool import Spool

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake
    from fraudops.lake.commits import CommitListeners


class NoLog:
    """``log_backend: none``: keeps nothing."""

    backend = "none"

    def append_many(self, lines: Sequence[bytes]) -> int:
        return 0

    def stats(self) -> ProducerStats:
        return ProducerStats(backend=self.backend)

    def close(self) -> None:
        pass


def open_producer(settings: Settings, spec_name: str | None = None) -> Producer:
    """The request path's side of the configured backend, open and ready to append."""
    backend = _backend(settings)
    if backend == "spool":
        return Spool.from_settings(settings, spec_name).open()
    if backend == "redis":
        # Imported on use: redis-py is not needed (nor paid for) by a spool server.
        from fraudops.inference_log.redis_producer import RedisLogProducer

        return RedisLogProducer(settings, spec_name)
    return NoLog()


def open_drainer(
    settings: Settings,
    spec_name: str | None = None,
    *,
    open_lake: Callable[[], Lake],
    consumer_name: str | None = None,
    claim_idle_ms: int | None = None,
    listeners: CommitListeners | None = None,
    backend: LogBackend | None = None,
) -> Drainer | None:
    """The lake's side of the configured backend (None for ``none``). ``open_lake``: opens a
    new lake client of the spec (``Runtime.lake_factory``); ``consumer_name``: the
    Redis consumer's name in its group (default: ``<host>-<pid>``); ``listeners``: told of each
    commit (``Runtime.log_drainer`` subscribes the aggregates and the maintenance); ``backend``:
    this one rather than ``serving.log_backend`` (``fraudops log-writer`` drains the spool)."""
    chosen = backend or _backend(settings)
    # Imported on use: the drainers bring pyiceberg (the lake), which a producer never needs.
    if chosen == "spool":
        from fraudops.inference_log.writer import SpoolWriter

        return SpoolWriter(settings, spec_name, open_lake=open_lake, listeners=listeners)
    if chosen == "redis":
        from fraudops.inference_log.redis_consumer import RedisLogConsumer

        return RedisLogConsumer(
            settings,
            spec_name,
            consumer_name,
            open_lake=open_lake,
            claim_idle_ms=claim_idle_ms,
            listeners=listeners,
        )
    return None


def _backend(settings: Settings) -> str:
    backend = settings.serving.log_backend
    if backend not in BACKENDS:  # config validates it; a hand-built Settings may not have
        raise ConfigError(f"serving.log_backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return backend
