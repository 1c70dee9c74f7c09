"""The online store the settings ask for, and the check that a server's workers can share it."""

from __future__ import annotations

from fraudops.config.settings import Settings
from fraudops.errors import ConfigError
from fraudops.features.online import OnlineStore
from fraudops.spec import FeatureSpec


def check_online_store(settings: Settings, workers: int | None = None) -> None:
    """Refuse a configuration whose workers would each keep their own state (and so compute
    different features than one worker would): several workers need ``redis``."""
    count = settings.serving.workers if workers is None else workers
    if count > 1 and settings.features.online_store == "memory":
        raise ConfigError(
            f"serving with {count} workers needs a shared online feature state: set "
            "features.online_store: redis (FRAUDOPS_FEATURES__ONLINE_STORE=redis); the memory "
            "store lives in one process, so each worker would see only its own traffic"
        )


def open_online_store(settings: Settings, spec: FeatureSpec) -> OnlineStore:
    """The configured store for ``spec`` (Redis keys under ``redis_prefix:<spec>``)."""
    features = settings.features
    if features.online_store == "redis":
        from fraudops.features.online_redis import RedisStore

        return RedisStore(
            spec,
            url=features.redis_url or settings.serving.redis_url,
            prefix=f"{features.redis_prefix}:{spec.name}",
            late_s=features.late_arrival_s,
            key_ttl_s=features.key_ttl_s,
        )
    from fraudops.features.online_memory import MemoryStore

    return MemoryStore(spec, late_s=features.late_arrival_s, key_ttl_s=features.key_ttl_s)
