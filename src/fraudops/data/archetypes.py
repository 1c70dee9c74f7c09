"""The fraud archetypes of the synthetic generator, and how rows are assigned to them.

Most frauds follow a clear pattern (card-not-present with CVV/AVS mismatch, account takeover far
from home, card testing at high velocity, bust-out on new accounts), but each shows only some of
its signs, and a share of them (``STEALTH``) look almost legitimate.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

LEGIT, CNP, TAKEOVER, TESTING, BUSTOUT, STEALTH = range(6)
SHARE = {CNP: 0.30, TAKEOVER: 0.22, TESTING: 0.16, BUSTOUT: 0.15, STEALTH: 0.17}


def draw(rng: np.random.Generator, n: int, fraud_rate: float) -> Array:
    """Per row: LEGIT or a fraud archetype; exactly round(n * fraud_rate) frauds (at least one
    when there are two rows or more, so that any slice can be trained on)."""
    frauds = round(n * fraud_rate)
    if frauds == 0 and n >= 2:
        frauds = 1
    archetype = np.full(n, LEGIT, dtype=np.int64)
    where = rng.choice(n, size=frauds, replace=False)
    kinds = np.array(list(SHARE))
    share = np.array(list(SHARE.values()))
    archetype[where] = rng.choice(kinds, size=frauds, p=share / share.sum())
    return archetype


def is_kind(archetype: Array, *kinds: int) -> Array:
    return np.isin(archetype, kinds)
