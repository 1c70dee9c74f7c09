"""Derived features, point in time, for a whole frame at once (training, scoring, export).

``derive(frame, spec)`` computes every derived feature of ``spec`` (the definitions and their
semantics are derived.py's) for each row as known at the row's time: a row sees the rows of its
key at earlier times, plus itself and the same-time rows of smaller id when its window has no
delay. Sorted NumPy (windows.py), no loop per row.

Exactness contract with the online engine (which must produce the same bits):

- times are int64 microseconds since the epoch, UTC (``timestamp_kind: seconds`` data:
  ``round(seconds * 1e6)``); a window bound is compared on those integers;
- same-time rows of one key are ordered by id compared as text (Python ``str`` order; the lake
  stores ids as text), rows without an id column by their position in the frame;
- a row whose key is missing (null) has no history: it is its own key;
- count: an integer; sum: the window's values in (time, id) order added one by one from 0.0
  (``s = 0.0; for v in vals: s += v``); mean: that sum / count; std: ``sqrt(q / n)`` where ``q``
  adds ``(v - mean) ** 2`` the same way, 0 for fewer than two values; min/max: exact; empty
  windows give 0;
- fraud_rate: frauds / count (0 for an empty window) where a row's label counts iff it is 1 and
  known at t (``label_known_at <= t``; rows loaded in the lake are known at their own time);
- time_since_last: ``(t_us - previous_t_us) / 1_000_000``, -1.0 for the key's first row and
  when ``t_us - previous_t_us > spec.key_ttl_us`` (features.key_ttl_s: the online state forgets
  a key idle that long, so an older previous row counts as none here too);
- calendar features from the UTC time: hour, day_of_week (0 = Monday), weekend, night (hour < 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.derived import Agg, Calendar, DerivedFeature
from fraudops.errors import ValidationError
from fraudops.features.windows import (
    FloatArray,
    IntArray,
    KeyedRows,
    sequential_sq_dev,
    sequential_sum,
    window_extreme,
)
from fraudops.spec import FeatureSpec

US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
NOT_KNOWN = np.iinfo(np.int64).max  # a label never known
LABEL_EVENT_COLUMNS = ("row", "is_fraud", "confirmed_at")


def needed_columns(spec: FeatureSpec) -> list[str]:
    """The input columns ``derive`` reads for ``spec``'s derived features (the id, when the
    spec has one, orders same-time rows)."""
    cols = [spec.timestamp_column]
    if spec.id_column:
        cols.append(spec.id_column)
    for d in spec.derived:
        cols += [c for c in (d.by, d.of) if c is not None]
        if d.agg is Agg.fraud_rate:
            cols.append(spec.label_column)
    return list(dict.fromkeys(cols))


def require_derived(spec: FeatureSpec) -> None:
    """Refuse a spec with nothing to derive, saying how to declare some."""
    if not spec.derived:
        raise ValidationError(
            f"spec {spec.name!r} declares no derived features: add a `derived:` list (and "
            "`keys:`) to compute features from the transactions' history"
        )


def to_micros(values: pd.Series | np.ndarray, kind: str, *, column: str) -> IntArray:
    """Times as int64 µs since the epoch, UTC (naive datetimes are UTC; ``seconds`` data is
    rounded to the µs). NaT/NaN stay visible as ``NOT_KNOWN`` only for ``label_known_at``: here
    a missing time is refused naming the column."""
    micros, missing = _micros(values, kind)
    if missing.any():
        raise ValidationError(
            f"column {column!r} has {int(missing.sum())} missing time(s) (first at row "
            f"{int(np.flatnonzero(missing)[0]) + 1}): every transaction needs its time"
        )
    return micros


def _micros(values: pd.Series | np.ndarray, kind: str) -> tuple[IntArray, np.ndarray]:
    series = pd.Series(values, copy=False) if not isinstance(values, pd.Series) else values
    if kind == "seconds" and not pd.api.types.is_datetime64_any_dtype(series.dtype):
        seconds = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(seconds)
        return np.rint(np.where(missing, 0.0, seconds) * 1e6).astype(np.int64), missing
    stamps = pd.to_datetime(series, utc=True)  # naive -> UTC, aware -> converted
    missing = stamps.isna().to_numpy()
    micros = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view(np.int64)
    return np.where(missing, 0, micros).astype(np.int64), missing


@dataclass(frozen=True)
class Derived:
    """Every derived feature of every input row (``values``, input order) and the rows in
    (time, id) order (``order``: input positions), which the windows were computed in."""

    values: dict[str, np.ndarray]
    order: IntArray


def derive(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    *,
    emit: Sequence[bool] | np.ndarray | pd.Series | None = None,
    label_known_at: Sequence[object] | np.ndarray | pd.Series | None = None,
    label_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every derived feature of ``spec`` for the rows of ``frame``, point in time.

    ``frame`` holds the columns ``needed_columns(spec)`` names (others are ignored), one row per
    transaction, in any order. ``emit`` (a boolean mask, default all) picks the rows to output:
    the others are history that windows see but that get no values (the lake's rows before a
    scored file). ``label_known_at`` gives when each row's label became known (datetimes, or
    seconds for a ``seconds`` spec; NaT/NaN = not known); by default a row's label is known at
    its own time, so every labelled row of a delayed window counts. ``label_events`` instead
    gives every label event (columns ``row``: the input position, ``is_fraud``, ``confirmed_at``,
    listed in the order recorded): the label in force at t is the one with the latest
    ``confirmed_at <= t`` (ties: listed last), as the online store keeps it; a row without an
    event has no label known.

    Returns a frame indexed like the emitted rows of ``frame`` (input order), one column per
    derived feature in spec order: int64 for counts and calendar features, float64 otherwise.
    """
    n = len(frame)
    mask = np.ones(n, dtype=bool) if emit is None else np.asarray(emit, dtype=bool)
    if mask.shape != (n,):
        raise ValidationError(f"emit has {mask.shape[0]} values for {n} rows")
    done = derive_all(frame, spec, label_known_at=label_known_at, label_events=label_events)
    index = frame.index[mask]
    return pd.DataFrame({name: col[mask] for name, col in done.values.items()}, index=index)


def derive_all(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    *,
    label_known_at: Sequence[object] | np.ndarray | pd.Series | None = None,
    label_events: pd.DataFrame | None = None,
) -> Derived:
    """``derive`` for every row, as arrays, with the (time, id) order of the rows."""
    require_derived(spec)
    missing = [c for c in needed_columns(spec) if c not in frame.columns]
    if spec.id_column in missing:
        missing.remove(spec.id_column)  # the id only breaks ties: frame order stands in
    if label_events is not None and spec.label_column in missing:
        missing.remove(spec.label_column)  # the events carry the labels
    if missing:
        raise ValidationError(
            f"the data has no column(s) {', '.join(map(repr, missing))} needed by the derived "
            f"features of spec {spec.name!r} (it has: {', '.join(map(str, frame.columns))})"
        )
    times = to_micros(
        frame[spec.timestamp_column], spec.timestamp_kind, column=spec.timestamp_column
    )
    order = time_id_order(frame, spec, times)
    spells = fraud_spells(frame, spec, times, label_known_at, label_events)
    out: dict[str, np.ndarray] = {}
    keyed: dict[str, KeyedRows] = {}
    lookback_us = max(d.lookback_s for d in spec.derived) * 1_000_000
    for d in spec.derived:
        if d.calendar is not None:
            out[d.name] = calendar(times, d.calendar)
            continue
        assert d.by is not None
        if d.by not in keyed:
            codes = key_codes(frame[d.by])
            keyed[d.by] = KeyedRows.build(codes, times, order, lookback_us=lookback_us)
        values = _window_feature(d, keyed[d.by], frame, spells, spec.key_ttl_us)
        result = np.empty_like(values)
        result[keyed[d.by].perm] = values
        out[d.name] = result
    return Derived(out, order)


def _known_at(
    label_known_at: Sequence[object] | np.ndarray | pd.Series | None,
    times: IntArray,
    spec: FeatureSpec,
) -> IntArray:
    if label_known_at is None:
        return times
    values = (
        np.asarray(label_known_at) if not isinstance(label_known_at, pd.Series) else label_known_at
    )
    if len(values) != len(times):
        raise ValidationError(f"label_known_at has {len(values)} values for {len(times)} rows")
    micros, missing = _micros(pd.Series(values).reset_index(drop=True), spec.timestamp_kind)
    return np.where(missing, NOT_KNOWN, micros)


def key_codes(values: pd.Series) -> IntArray:
    """An int64 code per row, equal for equal keys; each missing key gets a code of its own."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    nulls = codes < 0
    if nulls.any():
        codes[nulls] = codes.max(initial=-1) + 1 + np.arange(int(nulls.sum()))
    return codes


def time_id_order(frame: pd.DataFrame, spec: FeatureSpec, times: IntArray) -> IntArray:
    """The rows in (time, id as text) order; without an id column, same-time rows keep frame
    order. Only the rows sharing a time with another are compared by id."""
    order = np.argsort(times, kind="stable")
    id_column = spec.id_column if spec.id_column in frame.columns else None
    if id_column is None or len(order) < 2:
        return order
    ordered = times[order]
    same = ordered[1:] == ordered[:-1]
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    if not tied.any():
        return order
    rows = order[tied]
    text = frame[id_column].take(rows).astype(str).to_numpy(dtype=str)
    _, id_rank = np.unique(text, return_inverse=True)
    # Ties sit in runs of one time, in time order: re-sorting the tied rows by (time, id) and
    # writing them back to the same positions keeps every run in place.
    order[tied] = rows[np.lexsort((id_rank, times[rows]))]
    return order


def calendar(times: IntArray, kind: Calendar) -> IntArray:
    """A calendar reading of UTC µs times (floor division: correct before 1970 too)."""
    hour = (times // US_PER_HOUR) % 24
    if kind is Calendar.hour:
        return hour
    if kind is Calendar.night:
        return (hour < 7).astype(np.int64)
    day_of_week = (times // US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday (3)
    if kind is Calendar.day_of_week:
        return day_of_week
    return (day_of_week >= 5).astype(np.int64)


def _window_feature(
    d: DerivedFeature, rows: KeyedRows, frame: pd.DataFrame, spells: FraudSpells, key_ttl_us: int
) -> np.ndarray:
    """One window feature per sorted position of ``rows``."""
    if d.agg is Agg.time_since_last:
        return rows.time_since_last(key_ttl_us)
    window_us = int(d.window_s or 0) * 1_000_000
    delay_us = d.delay_s * 1_000_000
    lo, hi = rows.window(window_us, delay_us)
    count = hi - lo
    if d.agg is Agg.count:
        return count
    if d.agg is Agg.fraud_rate:
        frauds = _frauds(rows, spells, window_us, delay_us)
        return np.divide(frauds, count, out=np.zeros(len(count)), where=count > 0)
    assert d.of is not None
    values = _values(frame[d.of], d.of)[rows.perm]
    if d.agg in (Agg.min, Agg.max):
        return window_extreme(values, lo, hi, largest=d.agg is Agg.max)
    total = sequential_sum(values, lo, hi)
    if d.agg is Agg.sum:
        return total
    mean = np.divide(total, count, out=np.zeros(len(count)), where=count > 0)
    if d.agg is Agg.mean:
        return mean
    squares = sequential_sq_dev(values, lo, hi, mean)
    return np.where(count >= 2, np.sqrt(squares / np.maximum(count, 1)), 0.0)


def _values(column: pd.Series, name: str) -> FloatArray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValidationError(
            f"column {name!r} has {int(bad.sum())} missing or non-numeric value(s) (first at row "
            f"{int(np.flatnonzero(bad)[0]) + 1}): window features need every value"
        )
    return values


@dataclass(frozen=True)
class FraudSpells:
    """When each transaction's label in force is fraud: row ``row[i]`` (input position) from
    ``since[i]`` (inclusive) until ``until[i]`` (exclusive), µs; a row may have several."""

    row: IntArray
    since: IntArray
    until: IntArray


def fraud_spells(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    times: IntArray,
    label_known_at: Sequence[object] | np.ndarray | pd.Series | None,
    label_events: pd.DataFrame | None,
) -> FraudSpells:
    """The spells from the label column known at ``label_known_at`` (default: at the row's
    time), or from ``label_events``: the label in force at t is the event with the latest
    ``confirmed_at <= t``, ties going to the event listed last."""
    if label_events is None:
        known = _known_at(label_known_at, times, spec)
        labels = frame[spec.label_column] if spec.label_column in frame.columns else None
        if labels is None:
            return FraudSpells(*(np.zeros(0, dtype=np.int64),) * 3)
        is_fraud = pd.to_numeric(labels, errors="coerce").to_numpy(np.float64, na_value=0.0)
        rows = np.flatnonzero(is_fraud == 1)
        return FraudSpells(rows, known[rows], np.full(len(rows), NOT_KNOWN, dtype=np.int64))
    if label_known_at is not None:
        raise ValidationError("give label_known_at or label_events, not both")
    missing = [c for c in LABEL_EVENT_COLUMNS if c not in label_events.columns]
    if missing:
        raise ValidationError(f"label_events has no column(s) {', '.join(missing)}")
    row = label_events["row"].to_numpy(dtype=np.int64)
    if len(row) and (row.min() < 0 or row.max() >= len(times)):
        raise ValidationError(f"label_events: a row outside 0..{len(times) - 1}")
    confirmed = to_micros(label_events["confirmed_at"], spec.timestamp_kind, column="confirmed_at")
    fraud = pd.to_numeric(label_events["is_fraud"]).to_numpy(np.float64) == 1
    order = np.lexsort((np.arange(len(row)), confirmed, row))  # per row, in force order
    row, confirmed, fraud = row[order], confirmed[order], fraud[order]
    until = np.full(len(row), NOT_KNOWN, dtype=np.int64)
    same = row[1:] == row[:-1]
    until[:-1][same] = confirmed[1:][same]  # the next event of the row ends this one
    return FraudSpells(row[fraud], confirmed[fraud], until[fraud])


def _frauds(rows: KeyedRows, spells: FraudSpells, window_us: int, delay_us: int) -> IntArray:
    """Per sorted row at time t: the frauds j of its key with t in the window's reach of j,
    [tj + d, tj + d + w) (i.e. tj in (t - d - w, t - d]), and in one of j's fraud spells."""
    position = np.empty(len(rows.perm), dtype=np.int64)
    position[rows.perm] = np.arange(len(rows.perm))
    at = position[spells.row]  # sorted positions
    event = rows.times[at]
    start = np.maximum(event + delay_us, spells.since)
    end = np.minimum(event + delay_us + window_us, spells.until)
    live = start < end
    codes = rows.codes[at][live]
    return rows.count_at(codes, start[live]) - rows.count_at(codes, end[live])
