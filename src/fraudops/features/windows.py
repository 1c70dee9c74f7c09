"""The vectorised kernels of the offline engine: rows of one key column sorted by (key, time, id),
each row's window as a half-open range of positions, and the reductions over those ranges.

Times are int64 microseconds (UTC). Nothing here loops over rows in Python: the loops are per
position inside a window (the sequential sum, ``max window length`` steps over shrinking slices)
or per feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


LIMIT = 2**62  # the largest (key, time) code allowed, with room for the searches' offsets


@dataclass(frozen=True)
class KeyedRows:
    """The rows sorted by (key, time, id) for one key column.

    ``perm[p]`` is the input row at sorted position ``p``; ``comp`` encodes (key, time) as one
    nondecreasing int64, ``key code * step + time code``, so one ``searchsorted`` finds a time
    bound inside every key's rows at once, with no loop per key. The time code is the µs time
    less a base when the codes fit in int64 (``step`` = the data's time span plus the look-back
    on both sides), else the time's rank among the data's distinct times (``universe``): both
    keep the order of every time a search asks about."""

    perm: IntArray
    codes: IntArray  # key code per sorted position
    times: IntArray  # µs per sorted position
    comp: IntArray
    step: int
    base: int
    universe: IntArray | None  # the distinct times, sorted, when coding by rank

    @classmethod
    def build(
        cls,
        codes: IntArray,
        times: IntArray,
        order: IntArray,
        *,
        lookback_us: int,
        by_rank: bool = False,
    ) -> KeyedRows:
        """``codes`` and ``times`` per input row; ``order`` the rows in (time, id) order;
        ``lookback_us`` the longest window + delay a search will use (``by_rank`` forces the
        rank coding, for its test)."""
        perm = order[np.argsort(codes[order], kind="stable")]
        sorted_codes = codes[perm]
        sorted_times = times[perm]
        first, last = (int(times.min()), int(times.max())) if len(times) else (0, 0)
        base = first - lookback_us - 1
        step = last - first + 2 * lookback_us + 3
        universe = None
        if by_rank or (int(codes.max(initial=0)) + 1) * step >= LIMIT:
            ordered = np.sort(times)
            universe = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
            step = len(universe) + 1
            time_code = np.searchsorted(universe, sorted_times)
        else:
            time_code = sorted_times - base
        comp = sorted_codes * step + time_code
        return cls(perm, sorted_codes, sorted_times, comp, step, base, universe)

    def _cut_code(self, cut: IntArray) -> IntArray:
        """A code c with: a row time is > cut iff its code is > c."""
        if self.universe is None:
            return np.clip(cut - self.base, 0, self.step - 1)
        return np.searchsorted(self.universe, cut, side="right") - 1

    def _event_code(self, event: IntArray) -> IntArray:
        """A code c with: the event is at or before a row time iff c <= the row's code."""
        if self.universe is None:
            return np.clip(event - self.base, 0, self.step - 1)
        return np.searchsorted(self.universe, event, side="left")

    def _bound(self, cut: IntArray) -> IntArray:
        """Per sorted row: the first position of its key whose time is > ``cut`` (its own cut)."""
        return np.searchsorted(
            self.comp, self.codes * self.step + self._cut_code(cut), side="right"
        )

    def window(self, window_us: int, delay_us: int) -> tuple[IntArray, IntArray]:
        """Per sorted row, the positions [lo, hi) of its window (t - d - w, t - d]: with no delay
        up to and including the row itself (same-time rows of smaller id come before it)."""
        lo = self._bound(self.times - delay_us - window_us)
        if delay_us == 0:
            hi = np.arange(1, len(self.times) + 1, dtype=np.int64)
        else:
            hi = self._bound(self.times - delay_us)
        return lo, hi

    def time_since_last(self, max_gap_us: int) -> FloatArray:
        """Seconds since the key's previous row in (time, id) order; -1 for its first, and when
        that row is more than ``max_gap_us`` older (the key's ttl: forgotten online)."""
        out = np.full(len(self.times), -1.0)
        gaps = self.times[1:] - self.times[:-1]
        keep = (self.codes[1:] == self.codes[:-1]) & (gaps <= max_gap_us)
        out[1:][keep] = gaps[keep] / 1_000_000
        return out

    def count_at(self, event_codes: IntArray, event_times: IntArray) -> IntArray:
        """Per sorted row: how many events of its key happened at or before its time (events
        given as key codes and µs times, in any order)."""
        events = np.sort(event_codes * self.step + self._event_code(event_times))
        return np.searchsorted(events, self.comp, side="right") - np.searchsorted(
            events, self.codes * self.step, side="left"
        )


BLOCK = 16_384  # rows per lockstep pass: their windows' values stay in the CPU cache


def sequential_sum(values: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """Σ values[lo:hi] per row, added one by one from the left starting at 0.0.

    This is the order the online engine must use to match bit for bit: the window's values in
    (time, id) order, ``s = 0.0; for v in values: s += v`` (not Python's ``sum``, which
    compensates since 3.12, nor ``np.sum``, which adds pairwise; ``np.cumsum`` does add in this
    order). Vectorised across rows: step ``k`` adds every window's k-th value, the windows
    sorted longest first so the ones still running are a prefix, a block of rows at a time."""
    return _blocked(values, lo, hi, None)


def sequential_sq_dev(
    values: FloatArray, lo: IntArray, hi: IntArray, mean: FloatArray
) -> FloatArray:
    """Σ (v - mean)² per window, added in the same left-to-right order as ``sequential_sum``."""
    return _blocked(values, lo, hi, mean)


def _blocked(
    values: FloatArray, lo: IntArray, hi: IntArray, centre: FloatArray | None
) -> FloatArray:
    out = np.empty(len(lo))
    for s in range(0, len(lo), BLOCK):
        part = slice(s, s + BLOCK)
        out[part] = _lockstep(values, lo[part], hi[part], None if centre is None else centre[part])
    return out


def _lockstep(
    values: FloatArray, lo: IntArray, hi: IntArray, centre: FloatArray | None
) -> FloatArray:
    length = hi - lo
    order = np.argsort(-length, kind="stable")
    longest_first = length[order]
    index = lo[order]  # each window's next value, moved one step right per pass
    acc = np.zeros(len(lo))
    if len(lo) == 0 or longest_first[0] == 0:
        return acc
    mid = None if centre is None else centre[order]
    buf = np.empty(len(lo))
    # running[k] = windows longer than k = a prefix of the longest-first order
    running = np.searchsorted(-longest_first, -np.arange(longest_first[0]), side="left")
    for active in running.tolist():
        step, at = buf[:active], index[:active]
        np.take(values, at, out=step)
        if mid is not None:
            step -= mid[:active]
            step *= step
        acc[:active] += step
        at += 1
    out = np.empty_like(acc)
    out[order] = acc
    return out


def window_extreme(values: FloatArray, lo: IntArray, hi: IntArray, *, largest: bool) -> FloatArray:
    """min or max of values[lo:hi] per row (exact in any order), 0.0 for an empty window."""
    if len(lo) == 0:
        return np.zeros(0)
    ufunc = np.maximum if largest else np.minimum
    padded = np.append(values, 0.0)  # so an index equal to len(values) is valid
    # One reduceat over interleaved bounds: the even results are the windows [lo, hi); the odd
    # ones ([hi, next lo)) are thrown away and, the windows moving forward, cost O(rows) in all.
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2] = lo
    bounds[1::2] = hi
    found = ufunc.reduceat(padded, bounds)[0::2]
    return np.where(hi > lo, found, 0.0)
