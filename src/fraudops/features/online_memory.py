"""The online state in this process's memory: one serving process (online.py has the rules)."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fraudops.features.online import (
    DEFAULT_KEY_TTL_S,
    DEFAULT_LATE_S,
    US_PER_S,
    OnlineStore,
    StoredEvent,
    require_id,
    warm_rows,
)
from fraudops.features.raw_request import RawTransaction, to_time_us
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd


def _time(event: StoredEvent) -> int:
    return event.time_us


def _order(event: StoredEvent) -> tuple[int, str]:
    return (event.time_us, event.tx_id)


class _History:
    """One key value's events in (time, id) order, and by id."""

    __slots__ = ("by_id", "events")

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.by_id: dict[str, StoredEvent] = {}

    def put(self, event: StoredEvent, *, keep_labels: bool) -> None:
        old = self.by_id.get(event.tx_id)
        if old is not None:  # recorded again: replaced, its labels stay
            self.events.pop(bisect.bisect_left(self.events, old.order, key=_order))
            if keep_labels:
                event.labels = old.labels
        bisect.insort(self.events, event, key=_order)
        self.by_id[event.tx_id] = event

    def trim(self, cut_us: int) -> None:
        """Drop events at or before ``cut_us`` but the last of them (time_since_last's)."""
        idx = bisect.bisect_right(self.events, cut_us, key=_time)
        if idx > 1:
            for event in self.events[: idx - 1]:
                del self.by_id[event.tx_id]
            del self.events[: idx - 1]


class MemoryStore(OnlineStore):
    """Thread-safe in-process state; every method holds one lock for its whole work."""

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        late_s: float = DEFAULT_LATE_S,
        key_ttl_s: float = DEFAULT_KEY_TTL_S,
    ) -> None:
        super().__init__(spec, late_s=late_s, key_ttl_s=key_ttl_s)
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], _History] = {}
        self._ids: dict[str, tuple[int, dict[str, str]]] = {}  # id -> (time, key values)
        self._newest: int | None = None
        self._swept_at: int | None = None
        self._key_ttl_us = round(key_ttl_s * US_PER_S)

    # ---- queries --------------------------------------------------------------------------

    def compute(self, tx: RawTransaction) -> dict[str, float]:
        with self._lock:
            return self._compute(tx)

    def compute_and_record(self, tx: RawTransaction) -> dict[str, float]:
        with self._lock:
            values = self._compute(tx)
            self._record(tx)
            return values

    def record(self, tx: RawTransaction) -> None:
        with self._lock:
            self._record(tx)

    def _compute(self, tx: RawTransaction) -> dict[str, float]:
        tx_id = require_id(tx)
        histories: dict[str, list[StoredEvent]] = {}
        for plan in self.plan.keys:
            history = self._keys.get((plan.key, tx.keys[plan.key]))
            if history is None:
                continue
            events = history.events
            # from two before the window (the previous row, even if it is this id's older copy)
            start = bisect.bisect_right(events, tx.time_us - plan.lookback_us, key=_time)
            end = bisect.bisect_right(events, (tx.time_us, tx_id), key=_order)
            histories[plan.key] = events[max(start - 2, 0) : end]
        return self.plan.compute(tx, histories)

    # ---- updates --------------------------------------------------------------------------

    def _put(self, tx: RawTransaction, labels: list[tuple[int, bool]] | None) -> list[_History]:
        tx_id = require_id(tx)
        touched = []
        for plan in self.plan.keys:
            history = self._keys.setdefault((plan.key, tx.keys[plan.key]), _History())
            event = StoredEvent(tx.time_us, tx_id, self.plan.key_values(plan, tx))
            if labels is not None and plan.needs_labels:
                event.labels = list(labels)
            history.put(event, keep_labels=labels is None)
            touched.append(history)
        self._ids[tx_id] = (tx.time_us, {p.key: tx.keys[p.key] for p in self.plan.keys})
        if self._newest is None or tx.time_us > self._newest:
            self._newest = tx.time_us
        return touched

    def _record(self, tx: RawTransaction) -> None:
        touched = self._put(tx, None)
        assert self._newest is not None
        cut = self._newest - self.keep_us
        for history in touched:
            history.trim(cut)
        self._maybe_sweep()

    def _maybe_sweep(self) -> None:
        """Trim every key now and then (a key not seen again keeps its events otherwise) and
        forget the keys idle for key_ttl_s: the state stays bounded on an endless stream."""
        assert self._newest is not None
        if self._swept_at is not None and self._newest - self._swept_at < max(
            self.keep_us // 4, US_PER_S
        ):
            return
        self._swept_at = self._newest
        cut = self._newest - self.keep_us
        idle = self._newest - self._key_ttl_us
        for key, history in list(self._keys.items()):
            history.trim(cut)
            if not history.events or history.events[-1].time_us <= idle:
                del self._keys[key]
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
            found = False
            for plan in self.plan.keys:
                if not plan.needs_labels or plan.key not in keys:
                    continue
                history = self._keys.get((plan.key, keys[plan.key]))
                event = history.by_id.get(transaction_id) if history else None
                if event is not None:
                    event.labels.append((confirmed, bool(is_fraud)))
                    found = True
            return found

    def warm(self, frame: pd.DataFrame) -> int:
        rows = warm_rows(self.plan, frame)
        with self._lock:
            for row in rows:
                self._put(row.tx, row.labels)
            if rows:
                self._swept_at = None
                self._maybe_sweep()
        return len(rows)

    def stored_events(self) -> int:
        with self._lock:
            return sum(len(h.events) for h in self._keys.values())

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._ids.clear()
            self._newest = None
            self._swept_at = None
