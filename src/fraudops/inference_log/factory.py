"""The request path's side of the inference log: where a served prediction's record goes.

``serving.log_backend`` picks the local durable spool (default; drained into the lake by the
log writer), Redis Streams (drained by ``fraudops log-consumer``), or nothing. All three take a
micro-batch of encoded records at once and say how many they kept; none raises into a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fraudops.config import Settings


class InferenceLog(Protocol):
    backend: str

    def append_many(self, lines: Sequence[bytes]) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class _SpoolLog:
    backend = "spool"

    def __init__(self, settings: Settings, spec_name: str) -> None:
        from fraudops.serving.spool import Spool

        cfg = settings.serving
        self.spool = Spool(
            settings.spool_dir(spec_name),
            fsync_interval_s=cfg.fsync_interval_s,
            segment_max_bytes=cfg.segment_max_bytes,
            seal_age_s=cfg.seal_age_s,
            max_bytes=cfg.spool_max_bytes,
        ).open()

    def append_many(self, lines: Sequence[bytes]) -> int:
        return self.spool.append_many(lines)

    def stats(self) -> dict[str, Any]:
        return self.spool.stats()

    def close(self) -> None:
        self.spool.close()


class _NoLog:
    backend = "none"

    def append_many(self, lines: Sequence[bytes]) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def open_inference_log(settings: Settings, spec_name: str) -> InferenceLog:
    backend = settings.serving.log_backend
    if backend == "spool":
        return _SpoolLog(settings, spec_name)
    if backend == "redis":
        from fraudops.serving.redis_log import RedisLogProducer

        producer: InferenceLog = RedisLogProducer(settings, spec_name)
        return producer
    return _NoLog()
