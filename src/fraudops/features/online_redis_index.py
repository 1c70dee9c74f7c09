"""The Redis store's id index: a transaction's time and keys, for a label that comes without
them (online_redis.py).

One hash per period of wall-clock recording - a quarter of the retention span, from 1 s to a
week -, kept the retention span past its period: every entry lives at least the retention (a
label for an older transaction finds nothing to update anyway), and the index holds at most
1.25 spans of ids. (A fixed week per hash held a week of ids whatever the retention: bench/soak
--spec cards saw it grow with the traffic.) A label looks its transaction up in the periods
that may still hold it.
"""

from __future__ import annotations

import time

import orjson

from fraudops.features.online_keys import US_PER_S
from fraudops.features.raw_request import RawTransaction

WEEK_S = 7 * 86_400


def index_period_s(keep_us: int) -> int:
    """The period (s): a quarter of the retention span, from 1 s to a week - five hashes alive
    at once at most, and at most a quarter more ids than the retention."""
    return min(WEEK_S, max(1, keep_us // US_PER_S // 4))


def id_entry(tx: RawTransaction) -> bytes:
    """What the id index holds for a transaction: its time and key values."""
    return orjson.dumps({"t": tx.time_us, "k": dict(tx.keys)})


class IdIndex:
    """The index's hash names and times to live for a store under ``prefix`` keeping
    ``keep_us`` of history."""

    def __init__(self, prefix: str, keep_us: int) -> None:
        self.prefix = prefix
        self.ttl_ms = max(keep_us // 1000, 1_000)  # each entry's life at least
        self.period_s = index_period_s(keep_us)
        self.hash_ttl_ms = self.ttl_ms + self.period_s * 1000  # set when a hash is created

    def key(self, period: int) -> bytes:
        # the period's length in the name: stores configured otherwise never share a hash
        return f"{self.prefix}:ids:{self.period_s}:{period}".encode()

    def current(self) -> bytes:
        """The hash this period's recordings go to."""
        return self.key(int(time.time() // self.period_s))

    def lookups(self) -> list[bytes]:
        """The hashes that may still hold an entry, newest first."""
        now = int(time.time() // self.period_s)
        back = -(-self.ttl_ms // (self.period_s * 1000)) + 1
        return [self.key(p) for p in range(now, now - back - 1, -1)]
