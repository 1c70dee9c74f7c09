"""Settings of derived features: where serving keeps their online state, what a raw request may
claim about its time."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fraudops.config.base import Section

OnlineStoreName = Literal["memory", "redis"]


class FeaturesSettings(Section):
    """`features:` - the online state of derived features (fraudops.features.online)."""

    online_store: OnlineStoreName = Field(
        "memory",
        description="memory: in the serving process (one worker); redis: shared by several "
        "workers or servers (required for serving.workers > 1).",
    )
    redis_url: str | None = Field(
        None, description="Redis of the online state; default serving.redis_url."
    )
    redis_prefix: str = Field(
        "fraudops:online", description="Key prefix of the online state in Redis (spec appended)."
    )
    max_clock_skew_s: float = Field(
        300.0, ge=0, description="A raw request's timestamp may be at most this past now."
    )
    late_arrival_s: float = Field(
        3600.0,
        ge=0,
        description="How far behind the newest time seen a transaction may arrive and still "
        "see its exact windows (the state keeps this much beyond the longest window + delay).",
    )
    key_ttl_s: float = Field(
        90 * 86_400.0,
        gt=0,
        description="A key (card, terminal) idle this long is forgotten: its time since last "
        "reads -1 afterwards. Redis counts wall-clock idleness, memory event time.",
    )
