"""Settings of derived features: where serving keeps their online state, what a raw request may
claim about its time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from fraudops.config.base import Section
from fraudops.derived import DEFAULT_KEY_TTL_S

if TYPE_CHECKING:
    from fraudops.spec import FeatureSpec

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
        DEFAULT_KEY_TTL_S,
        gt=0,
        description="How long a key's (card, terminal) history counts: a previous transaction "
        "older than this counts as none (time_since_last -1), offline as online, and the online "
        "state forgets a key idle this long (+ late_arrival_s). At least every derived "
        "feature's window + delay.",
    )


def check_key_ttl(features: FeaturesSettings, specs: Iterable[FeatureSpec]) -> None:
    """Refuse a key_ttl_s shorter than a window + delay: the online state would forget a
    key's events that a window still reads, and its values would differ from the offline ones."""
    for spec in specs:
        longest = spec.longest_lookback()
        if longest is None or longest.lookback_s <= features.key_ttl_s:
            continue
        reach = f"window {longest.window}" + (f" + delay {longest.delay}" if longest.delay else "")
        raise ValueError(
            f"features.key_ttl_s ({features.key_ttl_s:g} s) is shorter than the history spec "
            f"{spec.name!r} reads: its derived feature {longest.name!r} reads {reach} = "
            f"{longest.lookback_s} s back. Set features.key_ttl_s to at least {longest.lookback_s}"
        )
