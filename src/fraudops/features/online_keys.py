"""The per-key history of the online stores, held column by column, and the window kernel.

Both stores compute from a ``KeyHistory`` in this process (the Redis store keeps one as a
mirror of its shared log, online_redis.py). A history holds one key value's events in
(time, id) order as parallel columns - times, ids, one array per value column, and per event
the time from which its label in force is fraud - so a query is a few ``bisect`` calls and
slices of those columns: no per-event object is built or visited in Python. The figures are
those of online.py's numeric contract, bit for bit: sums add the window's values one by one
from 0.0 in (time, id) order (``functools.reduce(operator.add, ...)``, which never compensates,
unlike ``sum`` of floats from Python 3.12; before 3.12 ``sum`` adds the same way, ~2x faster).
"""

from __future__ import annotations

import bisect
import math
import operator
import sys
from array import array
from collections.abc import Callable, Sequence
from functools import partial, reduce
from typing import TYPE_CHECKING

from fraudops.derived import Agg

if TYPE_CHECKING:
    from fraudops.features.online import KeyPlan

US_PER_S = 1_000_000
NEVER = 2**63 - 1  # fraud_from of an event whose label is never fraud (later than any time)
IRREGULAR = -(2**63)  # fraud_from of an event whose label turns fraud then back: read its labels
Labels = list[tuple[int, bool]]  # (confirmed µs, fraud) in the order recorded


def label_in_force(labels: Sequence[tuple[int, bool]], t_us: int) -> bool:
    """Whether the label known at ``t_us`` says fraud (latest confirmed <= t; ties: last)."""
    best: tuple[int, bool] | None = None
    for confirmed, fraud in labels:
        if confirmed <= t_us and (best is None or confirmed >= best[0]):
            best = (confirmed, fraud)
    return best is not None and best[1]


def fraud_from(labels: Sequence[tuple[int, bool]]) -> int:
    """The time from which ``label_in_force`` says fraud for good (NEVER if it never does), or
    IRREGULAR when it says fraud and later not (a withdrawn fraud: read the labels then)."""
    by_time: dict[int, bool] = {}
    for confirmed, fraud in labels:
        by_time[confirmed] = fraud  # the last recorded at one instant is the one in force
    first: int | None = None
    for confirmed, fraud in sorted(by_time.items()):
        if fraud and first is None:
            first = confirmed
        elif not fraud and first is not None:
            return IRREGULAR
    return NEVER if first is None else first


class KeyHistory:
    """One key value's events in (time, id) order, column by column (the module docstring)."""

    __slots__ = ("cols", "fraud", "ids", "irregular", "labels", "times", "where")

    def __init__(self, width: int) -> None:
        # Contiguous machine arrays, not lists of objects: a query walks a window's values in
        # a few cache lines (measured: lists cost ~1.6x the kernel's time in a busy server).
        self.times = array("q")
        self.ids: list[str] = []
        self.cols = [array("d") for _ in range(width)]
        self.fraud = array("q")  # fraud_from per event
        self.labels: dict[str, Labels] = {}  # only events with label events
        self.where: dict[str, int] = {}  # id -> time
        self.irregular = 0  # events whose fraud_from is IRREGULAR

    def __len__(self) -> int:
        return len(self.times)

    def index(self, t: int, tx_id: str) -> int:
        """The position (time, id) takes in the order: before every later event."""
        times, ids = self.times, self.ids
        if not times or times[-1] < t:  # the usual case: the newest so far
            return len(times)
        i = bisect.bisect_left(times, t)
        n = len(times)
        while i < n and times[i] == t and ids[i] < tx_id:
            i += 1
        return i

    def put(
        self,
        t: int,
        tx_id: str,
        values: Sequence[float],
        labels: Labels | None = None,
        at: int | None = None,
    ) -> None:
        """Record an event; one recorded before under this id is replaced, keeping its labels
        unless ``labels`` are given. ``at``: its position if known (``index``, or what
        key_features returned for it), valid when the id is not held yet."""
        old = self.where.get(tx_id)
        if old == t and labels is None:  # recorded again at its time: its values replaced
            i = at if at is not None and at < len(self.ids) and self.ids[at] == tx_id else None
            i = self.index(t, tx_id) if i is None else i
            for col, value in zip(self.cols, values, strict=True):
                col[i] = value
            return
        if old is not None:
            kept = self.labels.get(tx_id)
            self._remove(self.index(old, tx_id))
            if labels is None:
                labels = kept
            at = None
        times = self.times
        if at is None:
            at = len(times) if not times or times[-1] < t else self.index(t, tx_id)
        if at == len(times):
            times.append(t)
            self.ids.append(tx_id)
            for col, value in zip(self.cols, values, strict=True):
                col.append(value)
            self.fraud.append(NEVER)
        else:
            times.insert(at, t)
            self.ids.insert(at, tx_id)
            for col, value in zip(self.cols, values, strict=True):
                col.insert(at, value)
            self.fraud.insert(at, NEVER)
        self.where[tx_id] = t
        if labels:
            self._set_labels(at, tx_id, list(labels))

    def add_label(self, tx_id: str, confirmed: int, fraud: bool) -> bool:
        """A label event of a held event (False when this key does not hold it)."""
        t = self.where.get(tx_id)
        if t is None:
            return False
        labels = [*self.labels.get(tx_id, ()), (confirmed, fraud)]
        self._set_labels(self.index(t, tx_id), tx_id, labels)
        return True

    def clear_labels(self, tx_id: str) -> None:
        t = self.where.get(tx_id)
        if t is not None and tx_id in self.labels:
            self._set_labels(self.index(t, tx_id), tx_id, [])

    def _set_labels(self, i: int, tx_id: str, labels: Labels) -> None:
        self.irregular -= self.fraud[i] == IRREGULAR
        if labels:
            self.labels[tx_id] = labels
        else:
            self.labels.pop(tx_id, None)
        self.fraud[i] = fraud_from(labels)
        self.irregular += self.fraud[i] == IRREGULAR

    def _remove(self, i: int) -> None:
        tx_id = self.ids[i]
        self.irregular -= self.fraud[i] == IRREGULAR
        del self.times[i], self.ids[i], self.fraud[i]
        for col in self.cols:
            del col[i]
        del self.where[tx_id]
        self.labels.pop(tx_id, None)

    def trim(self, cut_us: int) -> None:
        """Drop the events at or before ``cut_us`` but the last of them (time_since_last's)."""
        drop = bisect.bisect_right(self.times, cut_us) - 1
        if drop <= 0:
            return
        for tx_id in self.ids[:drop]:
            del self.where[tx_id]
            self.labels.pop(tx_id, None)
        self.irregular -= self.fraud[:drop].count(IRREGULAR)
        del self.times[:drop], self.ids[:drop], self.fraud[:drop]
        for col in self.cols:
            del col[:drop]

    def events(self) -> list[tuple[int, str, tuple[float, ...], Labels]]:
        """(time, id, values, labels) per event in order (compaction, tests)."""
        rows = zip(*self.cols, strict=True) if self.cols else ((),) * len(self.times)
        return [
            (t, i, tuple(v), list(self.labels.get(i, ())))
            for t, i, v in zip(self.times, self.ids, rows, strict=True)
        ]


def key_features(
    plan: KeyPlan,
    history: KeyHistory | None,
    t: int,
    tx_id: str,
    own: Sequence[float],
    out: dict[str, float],
) -> int:
    """The window features of ``plan`` for the transaction (``t``, ``tx_id``, its values
    ``own``) into ``out``: over the events before it in (time, id) order, plus itself. Returns
    the position the transaction takes in ``history`` (``KeyHistory.put``'s ``at``)."""
    if history is None:
        width = len(plan.columns)
        history = _EMPTY[width] if width in _EMPTY else _EMPTY.setdefault(width, KeyHistory(width))
    at = end = history.index(t, tx_id)
    old = history.where.get(tx_id)
    if old is not None and old < t:  # its earlier copy is not history: without it
        history = _without(history, tx_id)
        end -= 1
    times = history.times
    if plan.since:
        gap = t - times[end - 1] if end else -1
        # a previous row older than key_ttl counts as none (the store may still hold it)
        since = gap / US_PER_S if 0 <= gap <= plan.key_ttl_us else -1.0
        for name in plan.since:
            out[name] = since
    cols, right = history.cols, bisect.bisect_right
    for span in plan.spans:
        hi = t - span.delay_us
        start = right(times, hi - span.window_us, 0, end)
        mine = span.delay_us == 0  # the query's own row is in its window
        stop = end if mine else right(times, hi, start, end)
        n = stop - start + mine
        xs: array[float] | None = None
        column = -1
        for name, agg, of in span.ops:
            if agg is _COUNT:
                out[name] = float(n)
            elif agg is _FRAUD_RATE:
                # its own row has no label yet: it adds to n only
                out[name] = _frauds(history, start, stop, t) / n if n else 0.0
            else:
                if of != column:  # the window's values of that column, once per span
                    xs, column = cols[of][start:stop], of
                    if mine:
                        xs.append(own[of])
                assert xs is not None
                if agg is _MEAN:
                    out[name] = plain_sum(xs) / n if n else 0.0
                else:
                    out[name] = aggregate(agg, xs)
    return at


_EMPTY: dict[int, KeyHistory] = {}  # read only: a key with no history yet
_COUNT, _FRAUD_RATE, _MEAN = Agg.count, Agg.fraud_rate, Agg.mean


def _reduce_sum(xs: Sequence[float]) -> float:
    return reduce(operator.add, xs, 0.0)


# The plain sum of floats from 0.0 in order: CPython's ``sum`` before 3.12 does exactly these
# additions, in C (3.12 compensates: its results differ in the last bits).
plain_sum: Callable[[Sequence[float]], float] = (
    partial(sum, start=0.0) if sys.version_info < (3, 12) else _reduce_sum
)


def _frauds(history: KeyHistory, start: int, stop: int, t: int) -> int:
    if not history.irregular:
        return sum(map(t.__ge__, history.fraud[start:stop]))
    labels = history.labels
    return sum(label_in_force(labels.get(i, ()), t) for i in history.ids[start:stop])


def _without(history: KeyHistory, tx_id: str) -> KeyHistory:
    copy = KeyHistory(len(history.cols))
    i = history.index(history.where[tx_id], tx_id)
    copy.times = history.times[:i] + history.times[i + 1 :]
    copy.ids = history.ids[:i] + history.ids[i + 1 :]
    copy.cols = [col[:i] + col[i + 1 :] for col in history.cols]
    copy.fraud = history.fraud[:i] + history.fraud[i + 1 :]
    copy.labels = history.labels
    copy.irregular = history.irregular
    copy.where = {k: v for k, v in history.where.items() if k != tx_id}
    return copy


def aggregate(agg: Agg, xs: Sequence[float]) -> float:
    """count/sum/mean/min/max/std of ``xs`` in order (online.py's numeric contract)."""
    n = len(xs)
    if agg is Agg.count:
        return float(n)
    if n == 0:
        return 0.0
    if agg is Agg.min:
        return min(xs)
    if agg is Agg.max:
        return max(xs)
    total = plain_sum(xs)
    if agg is Agg.sum:
        return total
    mean = total / n
    if agg is Agg.mean:
        return mean
    if n < 2:
        return 0.0
    acc = 0.0
    for x in xs:
        d = x - mean
        acc += d * d
    return math.sqrt(acc / n)
