"""The online state in this process's memory: one serving process (online.py has the rules).

``LocalState`` is every key's history (online_keys.KeyHistory) and the rules that keep it
bounded; ``MemoryStore`` is one behind a lock. The Redis store keeps a ``LocalState`` too, as
its mirror of the shared log (online_redis.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from fraudops.features.online import (
    DEFAULT_LATE_S,
    FeaturePlan,
    KeyPlan,
    OnlineHeld,
    OnlineStore,
    require_id,
    warm_rows,
)
from fraudops.features.online_keys import US_PER_S, KeyHistory, Labels, key_features
from fraudops.features.raw_request import RawTransaction, to_time_us
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd


class LocalState:
    """Every key value's history in this process (not thread-safe: its owner locks).

    Each record trims the keys it touched to ``newest - keep_us`` (``newest``: the latest time
    recorded here); now and then every key is trimmed and the keys idle for more than
    ``forget_us`` (OnlineStore.forget_us) are forgotten, so the state stays bounded on an
    endless stream."""

    def __init__(self, plan: FeaturePlan, keep_us: int, forget_us: int) -> None:
        self.plan = plan
        self.keep_us = keep_us
        self.forget_us = forget_us
        self.keys: dict[tuple[str, str], KeyHistory] = {}
        self.newest: int | None = None
        self._swept_at: int | None = None

    def compute(self, tx: RawTransaction) -> dict[str, float]:
        keys = self.keys
        histories = {p.key: keys.get((p.key, tx.keys[p.key])) for p in self.plan.keys}
        return self.plan.compute(tx, histories)

    def compute_and_record(self, tx: RawTransaction, *, sweep: bool = True) -> dict[str, float]:
        """``compute`` then ``record`` (with no labels), each key's position searched once."""
        tx_id = require_id(tx)
        t = tx.time_us
        out = self.plan.calendar_values(t)
        touched = []
        keys, values, held = tx.keys, tx.values, self.keys
        for plan in self.plan.keys:
            own = [float(values[c]) for c in plan.columns]
            history = held.get((plan.key, keys[plan.key]))
            if history is None:
                history = self.history(plan, keys[plan.key])
            at = key_features(plan, history, t, tx_id, own, out)
            history.put(t, tx_id, own, None, at)
            touched.append(history)
        if self.newest is None or t > self.newest:
            self.newest = t
        self.trim(touched, sweep=sweep)
        return out

    def history(self, plan: KeyPlan, value: str) -> KeyHistory:
        found = self.keys.get((plan.key, value))
        if found is None:
            found = self.keys[(plan.key, value)] = KeyHistory(len(plan.columns))
        return found

    def put(
        self,
        plan: KeyPlan,
        value: str,
        t: int,
        tx_id: str,
        values: Sequence[float],
        labels: Labels | None = None,
    ) -> KeyHistory:
        """Record one event under one key (labels: replace its labels; None keeps them)."""
        history = self.history(plan, value)
        history.put(t, tx_id, values, labels if plan.needs_labels else None)
        if self.newest is None or t > self.newest:
            self.newest = t
        return history

    def record(
        self, tx: RawTransaction, labels: Labels | None = None, *, sweep: bool = True
    ) -> None:
        tx_id = require_id(tx)
        touched = [
            self.put(plan, tx.keys[plan.key], tx.time_us, tx_id, own, labels)
            for plan, own in zip(self.plan.keys, self.plan.all_values(tx), strict=True)
        ]
        self.trim(touched, sweep=sweep)

    def trim(self, touched: Sequence[KeyHistory], *, sweep: bool = True) -> None:
        """Trim ``touched`` to the horizon; with ``sweep``, every key now and then too."""
        if self.newest is None:
            return
        cut = self.newest - self.keep_us
        for history in touched:
            times = history.times
            if len(times) > 1 and times[1] <= cut:  # something to drop (a call less if not)
                history.trim(cut)
        if sweep:
            self.maybe_sweep()

    def maybe_sweep(self, *, now: bool = False) -> bool:
        """Trim every key now and then (a key not seen again keeps its events otherwise) and
        forget the keys idle for more than forget_us; whether it swept."""
        newest = self.newest
        if newest is None:
            return False
        every = max(self.keep_us // 4, US_PER_S)
        if not now and self._swept_at is not None and newest - self._swept_at < every:
            return False
        self._swept_at = newest
        cut = newest - self.keep_us
        idle = newest - self.forget_us
        for key, history in list(self.keys.items()):
            history.trim(cut)
            if not history.times or history.times[-1] < idle:
                del self.keys[key]
        return True

    def add_label(
        self, transaction_id: str, confirmed: int, is_fraud: bool, keys: Mapping[str, str]
    ) -> bool:
        found = False
        for plan in self.plan.keys:
            if plan.needs_labels and plan.key in keys:
                history = self.keys.get((plan.key, keys[plan.key]))
                if history is not None and history.add_label(transaction_id, confirmed, is_fraud):
                    found = True
        return found

    def stored_events(self) -> int:
        return sum(len(h) for h in self.keys.values())

    def clear(self) -> None:
        self.keys.clear()
        self.newest = None
        self._swept_at = None


class MemoryStore(OnlineStore):
    """Thread-safe in-process state; every method holds one lock for its whole work."""

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        late_s: float = DEFAULT_LATE_S,
        key_ttl_s: float | None = None,  # default: the spec's (features.key_ttl_s)
    ) -> None:
        super().__init__(spec, late_s=late_s, key_ttl_s=key_ttl_s)
        self._lock = threading.Lock()
        self._state = LocalState(self.plan, self.keep_us, self.forget_us)
        self._ids: dict[str, tuple[int, Mapping[str, str]]] = {}  # id -> (time, key values)
        self._ids_swept_at: int | None = None

    def compute(self, tx: RawTransaction) -> dict[str, float]:
        require_id(tx)
        with self._lock:
            return self._state.compute(tx)

    def compute_and_record(self, tx: RawTransaction) -> dict[str, float]:
        return self.compute_and_record_many([tx])[0]

    def compute_and_record_many(self, txs: Sequence[RawTransaction]) -> list[dict[str, float]]:
        for tx in txs:
            require_id(tx)
        out = []
        with self._lock:
            state, ids = self._state, self._ids
            for tx in txs:
                out.append(state.compute_and_record(tx))
                ids[require_id(tx)] = (tx.time_us, tx.keys)  # a parsed request's: not mutated
            self._sweep_ids()
        return out

    def record(self, tx: RawTransaction) -> None:
        require_id(tx)
        with self._lock:
            self._record(tx)

    def _record(self, tx: RawTransaction, labels: Labels | None = None) -> None:
        state = self._state
        state.record(tx, labels)
        self._ids[require_id(tx)] = (tx.time_us, dict(tx.keys))
        self._sweep_ids()

    def _sweep_ids(self, *, now: bool = False) -> None:
        """The id index forgets the ids older than the retention horizon (now and then)."""
        newest = self._state.newest
        assert newest is not None
        every = max(self.keep_us // 4, US_PER_S)
        if not now and self._ids_swept_at is not None and newest - self._ids_swept_at < every:
            return
        self._ids_swept_at = newest
        cut = newest - self.keep_us
        self._ids = {i: v for i, v in self._ids.items() if v[0] > cut}

    def record_label(
        self,
        transaction_id: str,
        is_fraud: bool,
        confirmed_at: dt.datetime | float,
        keys: Mapping[str, str] | None = None,
    ) -> bool:
        confirmed = to_time_us(confirmed_at)
        with self._lock:
            if keys is None:
                known = self._ids.get(transaction_id)
                if known is None:
                    return False
                keys = known[1]
            return self._state.add_label(transaction_id, confirmed, bool(is_fraud), keys)

    def warm(self, frame: pd.DataFrame) -> int:
        rows = warm_rows(self.plan, frame)
        with self._lock:
            for row in rows:
                state, tx = self._state, row.tx
                for plan, own in zip(self.plan.keys, self.plan.all_values(tx), strict=True):
                    state.put(plan, tx.keys[plan.key], tx.time_us, require_id(tx), own, row.labels)
                self._ids[require_id(tx)] = (tx.time_us, tx.keys)
            if rows:
                self._state.maybe_sweep(now=True)
                self._sweep_ids(now=True)
        return len(rows)

    def stored_events(self) -> int:
        with self._lock:
            return self._state.stored_events()

    def held(self) -> OnlineHeld:
        with self._lock:
            state = self._state
            return OnlineHeld(len(state.keys), state.stored_events(), len(self._ids))

    def clear(self) -> None:
        with self._lock:
            self._state.clear()
            self._ids.clear()
            self._ids_swept_at = None
