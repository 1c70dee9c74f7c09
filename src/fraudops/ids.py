"""Time-ordered ids (UUIDv7, RFC 9562) for the predictions the server answers.

An inference id carries the millisecond it was minted on, so a look-up by id reads the day
partitions of `predictions` around it instead of the whole table (dashboard lookup). Python 3.11
has no ``uuid.uuid7``.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62


def uuid7(at: dt.datetime | None = None) -> str:
    """A UUIDv7 string whose 48-bit timestamp is ``at`` (default now), the rest random."""
    when = at or dt.datetime.now(dt.UTC)
    millis = int(when.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=(millis << 80) | _VERSION | (rand_a << 64) | _VARIANT | rand_b))


def parse_uuid(value: str) -> uuid.UUID | None:
    """``value`` as a UUID (any version), else None."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def minted_at(value: str) -> dt.datetime | None:
    """When a UUIDv7 was minted (its first 48 bits), else None (another id or version)."""
    parsed = parse_uuid(value)
    if parsed is None or parsed.version != 7:
        return None
    return dt.datetime.fromtimestamp((parsed.int >> 80) / 1000, dt.UTC)
