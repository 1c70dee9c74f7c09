"""The online state of derived features: per key value, the recent history a query needs.

``OnlineStore`` is the interface; ``MemoryStore`` (online_memory.py, one serving process) and
``RedisStore`` (online_redis.py, several workers or servers) implement it and pass one behaviour
suite (tests/integration/test_features_online.py). The semantics are fraudops.derived's; this
module adds what an incremental engine must pin down to equal the offline engine EXACTLY.

Numeric contract (shared with features/offline.py; the two are compared bit for bit):

- times are whole microseconds since the epoch (UTC) for ``timestamp_kind: datetime`` and
  ``round(seconds * 1e6)`` for ``seconds``; windows and delays are compared as integers;
- a window's rows are taken in (time, id) order, ids compared as strings (the lake stores them
  as strings: "10" < "9");
- ``count`` = float(n); ``sum`` = plain float64 additions from 0.0 in that order;
  ``mean`` = sum / n; ``min``/``max`` = the extreme value; ``std`` = sqrt(acc / n) where
  acc adds (x - mean) * (x - mean) from 0.0 in that order (population std; 0 when n < 2);
  empty windows give 0 for all of them;
- ``fraud_rate`` = frauds / n with n every transaction of the window and frauds those whose
  label in force at ``t`` is fraud: the label event with the latest ``confirmed_at <= t``
  (ties: the one recorded last); 0 for an empty window;
- ``time_since_last`` = (t - t_prev) / 1e6 in seconds, t_prev the time of the key's previous
  row in (time, id) order; -1.0 when there is none or ``t - t_prev > key_ttl_us`` (the spec's
  ``key_ttl_s`` in whole µs: a key forgotten online has no previous row offline either);
- calendar features from the UTC time: hour, day_of_week (0 = Monday), weekend, night (< 07:00).
Both stores compute in this process with one kernel over per-key columnar histories
(online_keys.py); the Redis store keeps them as a mirror of per-key logs it shares with the
other workers (online_redis.py). No Redis-side arithmetic.

What a query sees (``compute``): the rows recorded so far whose (time, id) is before its own,
plus itself; a row recorded later with an earlier time is seen by later queries only. So an
out-of-order arrival gets exactly what the offline computation gives for it over the rows
recorded so far with a timestamp <= its own (same-timestamp rows in id order), labels as
recorded so far with confirmed_at <= its time. A label event for a transaction the store does
not hold (not recorded yet, or evicted) is dropped (``record_label`` returns False). A
transaction id recorded again replaces its event under the same key values (its labels stay).

Bounded state: each key keeps the events newer than ``newest - (max lookback + late_s)``,
``newest`` the latest time recorded, plus its last older event (for time_since_last). Queries at
times down to ``newest - late_s`` are exact; an arrival later than that may see a window cut at
the retention horizon. A key idle for ``key_ttl_s + late_s`` is forgotten (by event time; in
Redis by the wall clock), later than the time_since_last rule reads its last row as too old:
forgetting never changes a value while ``key_ttl_s`` covers the longest window + delay (the
settings refuse less).

Batches (``compute_and_record_many``): each transaction computed then recorded, in order, as
one call - one Redis round trip for all of them.

Warming (``warm``): a frame of history - the spec's timestamp, id (``transaction_id`` when the
spec has no id column), keys and value columns, the label column if any (null: unknown), and
optionally ``label_confirmed_at`` (when absent or null, a present label counts as known at the
row's own time, as loaded history does). A transaction may take several rows, one per label
event (in the order they were confirmed); its labels in the store become those of the frame.
The frame should hold the lake's last ``max(window + delay) + late_s`` before its newest row
and, per key, the last row before that (``warm_horizon_us``): the newest row of the lake, not
the wall clock, anchors it, so a replay of past days works.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fraudops.derived import DEFAULT_KEY_TTL_S, Agg, Calendar, DerivedFeature
from fraudops.features.online_keys import US_PER_S, KeyHistory, key_features
from fraudops.features.raw_request import RawTransaction, to_time_us
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

_US_PER_HOUR = 3600 * US_PER_S
_US_PER_DAY = 24 * _US_PER_HOUR
CONFIRMED_AT_COLUMN = "label_confirmed_at"
DEFAULT_LATE_S = 3600.0


@dataclass(frozen=True)
class WindowPlan:
    """One window feature, its durations parsed once (not per query)."""

    name: str
    agg: Agg
    window_us: int  # 0 for time_since_last
    delay_us: int
    column: int | None  # index into KeyPlan.columns of ``of``


@dataclass(frozen=True)
class SpanPlan:
    """The window features of one key over one span ``(t - delay - window, t - delay]``: its
    bounds are searched once for them all. ``ops``: per feature (name, aggregation, value
    column index or -1), what the kernel loops over (online_keys.key_features)."""

    window_us: int
    delay_us: int
    windows: tuple[WindowPlan, ...]

    @cached_property
    def ops(self) -> tuple[tuple[str, Agg, int], ...]:
        return tuple((w.name, w.agg, -1 if w.column is None else w.column) for w in self.windows)


@dataclass(frozen=True)
class KeyPlan:
    """The derived features of one key column and what their computation reads."""

    key: str
    features: tuple[DerivedFeature, ...]
    columns: tuple[str, ...]
    lookback_us: int  # longest window + delay of these features (0: time_since_last only)
    needs_labels: bool
    windows: tuple[WindowPlan, ...] = ()
    key_ttl_us: int = round(DEFAULT_KEY_TTL_S * US_PER_S)  # time_since_last's cut-off

    @cached_property
    def since(self) -> tuple[str, ...]:
        """The names of the time_since_last features."""
        return tuple(w.name for w in self.windows if w.agg is Agg.time_since_last)

    @cached_property
    def spans(self) -> tuple[SpanPlan, ...]:
        """The other window features grouped by span, in the order of first appearance."""
        spans: dict[tuple[int, int], list[WindowPlan]] = {}
        for w in self.windows:
            if w.agg is not Agg.time_since_last:
                spans.setdefault((w.window_us, w.delay_us), []).append(w)
        return tuple(SpanPlan(wu, du, tuple(ws)) for (wu, du), ws in spans.items())


class FeaturePlan:
    """A spec's derived features grouped by key, and the one computation both stores share."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.names = [d.name for d in spec.derived]
        self.calendar = [d for d in spec.derived if d.calendar is not None]
        plans = []
        for key in spec.keys:
            feats = tuple(d for d in spec.derived if d.by == key)
            if not feats:
                continue
            columns = tuple(dict.fromkeys(d.of for d in feats if d.of is not None))
            plans.append(
                KeyPlan(
                    key=key,
                    features=feats,
                    columns=columns,
                    lookback_us=max(d.lookback_s for d in feats) * US_PER_S,
                    needs_labels=any(d.agg is Agg.fraud_rate for d in feats),
                    key_ttl_us=spec.key_ttl_us,
                    windows=tuple(
                        WindowPlan(
                            name=d.name,
                            agg=d.agg,
                            window_us=(d.window_s or 0) * US_PER_S,
                            delay_us=d.delay_s * US_PER_S,
                            column=None if d.of is None else columns.index(d.of),
                        )
                        for d in feats
                        if d.agg is not None
                    ),
                )
            )
        self.keys: list[KeyPlan] = plans
        self._blank = dict.fromkeys(self.names, 0.0)
        self.max_lookback_us = max((p.lookback_us for p in plans), default=0)
        self.value_columns = tuple(dict.fromkeys(c for p in plans for c in p.columns))

    def key_values(self, plan: KeyPlan, tx: RawTransaction) -> list[float]:
        """The values ``plan``'s features read from ``tx`` (its columns, in order)."""
        values = tx.values
        return [float(values[c]) for c in plan.columns]

    def all_values(self, tx: RawTransaction) -> list[list[float]]:
        values = tx.values
        return [[float(values[c]) for c in plan.columns] for plan in self.keys]

    def calendar_values(self, t: int) -> dict[str, float]:
        """Every derived feature in the spec's order, the calendar ones computed (the window
        ones to fill, 0.0 until then)."""
        out = self._blank.copy()
        if self.calendar:
            hour = float((t % _US_PER_DAY) // _US_PER_HOUR)
            day = float((t // _US_PER_DAY + 3) % 7)  # 1970-01-01 was a Thursday
            values = {
                Calendar.hour: hour,
                Calendar.day_of_week: day,
                Calendar.weekend: 1.0 if day >= 5 else 0.0,
                Calendar.night: 1.0 if hour < 7 else 0.0,
            }
            for cal in self.calendar:
                assert cal.calendar is not None
                out[cal.name] = values[cal.calendar]
        return out

    def compute(
        self, tx: RawTransaction, histories: Mapping[str, KeyHistory | None]
    ) -> dict[str, float]:
        """The derived features of ``tx`` from each key's history (``histories[key]``: that
        key's recorded events, covering ``(t - lookback, t]`` and the last event before it)."""
        tx_id = require_id(tx)
        out = self.calendar_values(tx.time_us)
        for plan, own in zip(self.keys, self.all_values(tx), strict=True):
            key_features(plan, histories.get(plan.key), tx.time_us, tx_id, own, out)
        return out


def require_id(tx: RawTransaction) -> str:
    if tx.transaction_id is None:
        raise ValueError(
            "the online store orders same-time rows by transaction id: give the transaction "
            "an id before computing (serving assigns the inference id)"
        )
    return tx.transaction_id


@dataclass(slots=True)
class WarmRow:
    """One history transaction as ``warm`` reads it: its label events in frame order, or None
    when the frame gives it no label (its recorded labels then stay)."""

    tx: RawTransaction
    labels: list[tuple[int, bool]] | None


def warm_rows(plan: FeaturePlan, frame: pd.DataFrame) -> list[WarmRow]:
    """The transactions of a history frame (columns: the module docstring). A transaction may
    repeat, one row per label event; its last row gives its values."""
    spec = plan.spec
    id_col = spec.id_column or "transaction_id"
    needed = [spec.timestamp_column, id_col, *(p.key for p in plan.keys), *plan.value_columns]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"warm: the history frame lacks the column(s) {missing}")
    label_col = spec.label_column if spec.label_column in frame.columns else None
    confirmed_col = CONFIRMED_AT_COLUMN if CONFIRMED_AT_COLUMN in frame.columns else None
    rows: dict[str, WarmRow] = {}
    for rec in frame.to_dict("records"):
        t = to_time_us(rec[spec.timestamp_column])
        tx = RawTransaction(
            time_us=t,
            keys={p.key: str(rec[p.key]) for p in plan.keys},
            values={c: float(rec[c]) for c in plan.value_columns},
            transaction_id=str(rec[id_col]),
        )
        row = rows.setdefault(tx.transaction_id or "", WarmRow(tx, None))
        row.tx = tx
        label = _present(rec[label_col]) if label_col else None
        if label is not None:
            confirmed = _present(rec[confirmed_col]) if confirmed_col else None
            event = (t if confirmed is None else to_time_us(confirmed), bool(label))
            row.labels = [*(row.labels or []), event]
    return list(rows.values())


def _present(value: Any) -> Any:
    """``value``, or None for a missing one (None, NaN, NaT, pd.NA)."""
    if value is None:
        return None
    try:
        if value != value:  # NaN / NaT
            return None
    except TypeError:  # pd.NA refuses a truth value
        return None
    return value


@dataclass(frozen=True, slots=True)
class OnlineHeld:
    """What this process holds of the online state (cheap: read at each /metrics scrape).

    ``keys``: key values held (card, terminal); ``events``: their events; ``ids``: entries of
    the id index kept in this process (None when the index lives elsewhere: Redis)."""

    keys: int
    events: int
    ids: int | None


class OnlineStore(ABC):
    """Per-key recent history and the derived features it gives (module docstring: the rules).

    Thread-safe; ``compute_and_record`` is atomic (no other record interleaves).
    """

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        late_s: float = DEFAULT_LATE_S,
        key_ttl_s: float | None = None,
    ) -> None:
        if key_ttl_s is not None and key_ttl_s != spec.key_ttl_s:
            spec = spec.model_copy(update={"key_ttl_s": key_ttl_s})  # given here: the rule too
        self.spec = spec
        self.plan = FeaturePlan(spec)
        self.late_us = round(late_s * US_PER_S)
        self.keep_us = self.plan.max_lookback_us + self.late_us
        self.key_ttl_s = spec.key_ttl_s
        # A key is forgotten this long after its last event: a query down to newest - late_s
        # then finds it older than key_ttl (time_since_last -1) and outside every window.
        self.forget_us = spec.key_ttl_us + self.late_us

    def warm_horizon_us(self, newest_us: int) -> int:
        """Rows newer than this (with each key's last older row) are what ``warm`` needs."""
        return newest_us - self.keep_us

    @abstractmethod
    def compute(self, tx: RawTransaction) -> dict[str, float]:
        """The derived features of ``tx`` at its time (the state is left as it was)."""

    def compute_and_record_many(self, txs: Sequence[RawTransaction]) -> list[dict[str, float]]:
        """``compute_and_record`` of each transaction in order (one round trip for a remote
        store)."""
        return [self.compute_and_record(tx) for tx in txs]

    async def compute_and_record_many_async(
        self, txs: Sequence[RawTransaction]
    ) -> list[dict[str, float]]:
        """``compute_and_record_many`` for an event loop: a remote store awaits its answer
        (the loop serves other requests meanwhile); a local one just computes."""
        return self.compute_and_record_many(txs)

    @abstractmethod
    def record(self, tx: RawTransaction) -> None:
        """Add ``tx`` to the history of each of its keys."""

    @abstractmethod
    def compute_and_record(self, tx: RawTransaction) -> dict[str, float]:
        """``compute`` then ``record``, with no other record in between."""

    @abstractmethod
    def record_label(
        self,
        transaction_id: str,
        is_fraud: bool,
        confirmed_at: dt.datetime | float,
        keys: Mapping[str, str] | None = None,
    ) -> bool:
        """A label event for a recorded transaction; counts for queries at or after
        ``confirmed_at``. ``keys`` (key column -> value) spares the store its id lookup. False
        when the store does not hold the transaction (never recorded, or evicted)."""

    @abstractmethod
    def warm(self, frame: pd.DataFrame) -> int:
        """Load history rows (module docstring); returns how many were read."""

    @abstractmethod
    def stored_events(self) -> int:
        """Events held over all keys (a measure of the state's size)."""

    @abstractmethod
    def held(self) -> OnlineHeld:
        """The size of this process's state (the memory store's, the Redis store's mirror)."""

    @abstractmethod
    def clear(self) -> None:
        """Forget everything (tests, and a rebuild from the lake)."""

    def close(self) -> None:  # noqa: B027 - optional for backends holding nothing
        """Release connections."""
