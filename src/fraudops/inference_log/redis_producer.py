"""The inference log through Redis Streams: the scale-out alternative to the local spool.

This file: the stream's client and the appending side (``RedisLogProducer``); the draining side
is ``redis_consumer.py``.

Selected with ``serving.log_backend: redis``. Every server process appends its records to one
stream per spec (``settings.redis_stream(spec)``); any number of ``fraudops log-consumer``
processes, on any machine, drain it into the lake as one consumer group.

Delivery is at least once on the Redis side and exactly once in the lake:

* an entry is acknowledged (XACK, then XDEL: the stream is a queue, this group owns it) only
  after the lake commit that holds its row succeeded, in one MULTI with its dead letters;
* a consumer that dies leaves its entries pending; after ``redis_claim_idle_ms`` another one
  takes them over (XAUTOCLAIM), and a restarted consumer first re-reads its own pending list;
* those re-delivered entries may already be in the lake (the process died between the commit
  and the ack), so they are committed with ``dedupe=True``: rows whose inference id the lake
  already holds are skipped.

Entries that cannot be stored (no record field, not a record, refused by the table's types) are
acknowledged and copied to ``<stream>:dead`` with the reason, so they never block the stream.

Limits: ``redis_claim_idle_ms`` must exceed the longest lake commit, or a live but slow consumer
has its batch taken over while it commits (both then write it). MAXLEN trimming drops the oldest
entries even when unread: size ``redis_maxlen`` for the longest lake outage to ride out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.exceptions import RedisError

from fraudops.config import Settings
from fraudops.inference_log.base import ProducerStats

log = logging.getLogger(__name__)

RECORD_FIELD = b"r"
DEAD_SUFFIX = ":dead"
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
# After a failed append the producer drops without trying for this long: a Redis that is down
# must not cost every micro-batch a connection timeout on the request path.
PRODUCER_BACKOFF_S = 0.5
DROP_LOG_EVERY = 1000


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.serving.redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def redacted_url(url: str) -> str:
    # redis://user:secret@host -> redis://user:***@host
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at or ":" not in auth:
        return url
    return f"{scheme}{sep}{auth.split(':', 1)[0]}:***@{host}"


@dataclass
class ProducerCounters:
    records_appended: int = 0
    records_dropped: int = 0
    append_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


class RedisLogProducer:
    """Appends encoded records to the spec's stream. Never raises into the request path.

    Thread-safe (redis-py's connection pool); one pipelined round trip per call.
    """

    backend = "redis"

    def __init__(
        self, settings: Settings, spec_name: str | None = None, *, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings
        self.stream = settings.redis_stream(spec_name)
        self.group = settings.serving.redis_group
        self.maxlen = settings.serving.redis_maxlen
        self.counters = ProducerCounters()
        self._client = client or redis_client(settings)
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def append(self, line: bytes) -> bool:
        """Append one encoded record (see :func:`records.encode`); False if it was dropped."""
        return self.append_many([line]) == 1

    def append_many(self, lines: Sequence[bytes]) -> int:
        """Append the records, one XADD each, in one round trip; returns how many Redis took.

        On a Redis error the records are dropped and counted (like a full spool), never raised.
        """
        if not lines:
            return 0
        if time.monotonic() < self._resume_at:
            self._dropped(len(lines), None)
            return 0
        pipe = self._client.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(self.stream, {RECORD_FIELD: line}, maxlen=self.maxlen, approximate=True)
        try:
            results = pipe.execute(raise_on_error=False)
        except RedisError as exc:  # connection refused, timeout: nothing is known to be in
            self._resume_at = time.monotonic() + PRODUCER_BACKOFF_S
            self._dropped(len(lines), exc)
            return 0
        failures = [r for r in results if isinstance(r, Exception)]
        accepted = len(lines) - len(failures)
        with self._lock:
            self.counters.records_appended += accepted
        if failures:  # OOM, a wrong key type: per command
            self._dropped(len(failures), failures[0])
        return accepted

    def _dropped(self, count: int, error: BaseException | None) -> None:
        with self._lock:
            before = self.counters.records_dropped
            self.counters.records_dropped += count
            dropped = self.counters.records_dropped
            if error is not None:
                self.counters.append_errors += 1
                self.counters.last_error = f"{type(error).__name__}: {error}"
                self.counters.last_error_at = time.time()
        if error is not None:
            log.error(
                "inference log: %d record(s) dropped, Redis stream %s at %s failed: %s",
                count,
                self.stream,
                redacted_url(self.settings.serving.redis_url),
                error,
            )
        elif before == 0 or before // DROP_LOG_EVERY != dropped // DROP_LOG_EVERY:
            log.warning(
                "inference log: Redis unavailable, dropping new records, %d dropped so far",
                dropped,
            )

    def stats(self) -> ProducerStats:
        """Counters plus the stream's length (None if Redis cannot say)."""
        c = self.counters
        length: int | None = None
        error = c.last_error
        try:
            length = int(self._client.xlen(self.stream))
        except RedisError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return ProducerStats(
            backend=self.backend,
            target=self.stream,
            records_appended=c.records_appended,
            records_dropped=c.records_dropped,
            append_errors=c.append_errors,
            last_error=error,
            queue_records=length,
        )

    def close(self) -> None:
        self._client.close()
