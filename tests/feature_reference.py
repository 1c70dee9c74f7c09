"""Independent references for the derived features (derived.py's definitions), used by the
offline engine's tests: pandas per-key ``rolling`` on the timestamp, and a brute force row by
row in plain Python (slow, obviously right, and adding in the documented order so it matches
bit for bit)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fraudops.derived import Agg, DerivedFeature
from fraudops.spec import FeatureSpec

RAW_SPEC: dict[str, Any] = {
    "id_column": "tx_id",
    "timestamp_column": "tx_time",
    "label_column": "is_fraud",
    "amount_column": "amount",
    "customer_column": "customer_id",
    "keys": ["customer_id", "terminal_id"],
    "features": [{"name": "amount", "min": 0}],
    "derived": [
        {"name": "is_weekend", "calendar": "weekend"},
        {"name": "is_night", "calendar": "night"},
        {"name": "hour", "calendar": "hour"},
        {"name": "dow", "calendar": "day_of_week"},
        # (name, by, window, delay, agg, of)
        *(
            {
                k: v
                for k, v in zip(("name", "by", "window", "delay", "agg", "of"), row, strict=True)
                if v
            }
            for row in (
                ("cust_nb_tx_1d", "customer_id", "1d", None, "count", None),
                ("cust_sum_amt_1d", "customer_id", "1d", None, "sum", "amount"),
                ("cust_avg_amt_7d", "customer_id", "7d", None, "mean", "amount"),
                ("cust_std_amt_7d", "customer_id", "7d", None, "std", "amount"),
                ("cust_max_amt_30d", "customer_id", "30d", None, "max", "amount"),
                ("cust_min_amt_2d", "customer_id", "2d", "1d", "min", "amount"),
                ("cust_secs_since_last", "customer_id", None, None, "time_since_last", None),
                ("term_nb_tx_7d", "terminal_id", "7d", "7d", "count", None),
                ("term_avg_amt_7d", "terminal_id", "7d", "2d", "mean", "amount"),
                ("term_risk_7d", "terminal_id", "7d", "7d", "fraud_rate", None),
                ("term_risk_3d", "terminal_id", "3d", "1d", "fraud_rate", None),
            )
        ),
    ],
}


def raw_spec(name: str = "rawtest") -> FeatureSpec:
    return FeatureSpec.model_validate({"name": name, **RAW_SPEC})


def random_raw_frame(n: int, seed: int = 7, *, days: int = 40) -> pd.DataFrame:
    """Transactions of a few customers and terminals with many same-time ties (times on the
    hour, some repeated exactly), ids whose text order differs from the frame order."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, days * 24, n)
    times = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(hours, unit="h")
    ids = rng.permutation(np.arange(1000, 1000 + n)).astype(str)
    return pd.DataFrame(
        {
            "tx_id": [f"t{i}" for i in ids],
            "tx_time": times,
            "customer_id": rng.choice(["c1", "c2", "c3", "c4", "c5"], n),
            "terminal_id": rng.choice(["T1", "T2", "T3"], n),
            "amount": np.round(rng.gamma(2.0, 40.0, n), 2),
            "is_fraud": (rng.random(n) < 0.25).astype(int),
        }
    )


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_id=frame["tx_id"].astype(str)).sort_values(
        ["tx_time", "_id"], kind="stable"
    )


def brute_force(
    frame: pd.DataFrame, spec: FeatureSpec, known_at: pd.Series | None = None
) -> pd.DataFrame:
    """Every derived feature row by row, straight from the definitions (O(n²))."""
    ordered = _order(frame)
    known = ordered["tx_time"] if known_at is None else known_at.loc[ordered.index]
    rows = list(
        zip(
            ordered.index,
            ordered["tx_time"],
            ordered["customer_id"],
            ordered["terminal_id"],
            ordered["amount"],
            ordered["is_fraud"],
            known,
            strict=True,
        )
    )
    position = {idx: p for p, (idx, *_rest) in enumerate(rows)}
    out: dict[str, dict[Any, float]] = {d.name: {} for d in spec.derived}
    by_key: dict[tuple[int, Any], list[Any]] = {}
    for r in rows:
        by_key.setdefault((2, r[2]), []).append(r)
        by_key.setdefault((3, r[3]), []).append(r)
    for idx, t, cust, term, *_ in rows:
        for d in spec.derived:
            if d.calendar is not None:
                value = {
                    "hour": t.hour,
                    "day_of_week": t.dayofweek,
                    "weekend": int(t.dayofweek >= 5),
                    "night": int(t.hour < 7),
                }[d.calendar.value]
                out[d.name][idx] = value
                continue
            key = cust if d.by == "customer_id" else term
            col = 2 if d.by == "customer_id" else 3
            mine = by_key[(col, key)]
            out[d.name][idx] = _one(d, t, position[idx], mine, position, spec.key_ttl_s)
    return pd.DataFrame(out).loc[frame.index]


def _one(
    d: DerivedFeature,
    t: pd.Timestamp,
    pos: int,
    mine: list[Any],
    position: dict[Any, int],
    key_ttl_s: float,
) -> float:
    if d.agg is Agg.time_since_last:
        # a previous row older than the key's ttl counts as none (derived.py)
        before = [r for r in mine if position[r[0]] < pos]
        if not before or t - before[-1][1] > pd.Timedelta(seconds=key_ttl_s):
            return -1.0
        return (t - before[-1][1]).value / 1e9
    w = pd.Timedelta(seconds=d.window_s or 0)
    delay = pd.Timedelta(seconds=d.delay_s)
    low, high = t - delay - w, t - delay
    window = [r for r in mine if low < r[1] <= high]
    if d.delay is None:
        window = [r for r in window if position[r[0]] <= pos]
    values = [r[4] for r in window]
    n = len(values)
    if d.agg is Agg.count:
        return n
    if d.agg is Agg.fraud_rate:
        frauds = sum(1 for r in window if r[5] == 1 and not pd.isna(r[6]) and r[6] <= t)
        return frauds / n if n else 0.0
    if n == 0:
        return 0.0
    if d.agg is Agg.min:
        return min(values)
    if d.agg is Agg.max:
        return max(values)
    total = 0.0
    for v in values:  # the documented order: one by one from the left
        total += v
    if d.agg is Agg.sum:
        return total
    mean = total / n
    if d.agg is Agg.mean:
        return mean
    squares = 0.0
    for v in values:
        squares += (v - mean) * (v - mean)
    return math.sqrt(squares / n) if n >= 2 else 0.0


def pandas_rolling(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The count/sum/mean/std/min/max/fraud_rate window features by per-key
    ``groupby().rolling(window, on=timestamp, closed="right")``; a delayed window is read at a
    "ghost" row placed at ``t - delay`` after every real row of that time (labels known at their
    own time, as for loaded rows)."""
    ordered = _order(frame).reset_index(names="_row")
    out: dict[str, pd.Series] = {}
    for d in spec.derived:
        if d.calendar is not None or d.agg is Agg.time_since_last:
            continue
        out[d.name] = _rolling_feature(ordered, d).sort_index()
    return pd.DataFrame(out).loc[frame.index]


def _rolling_feature(ordered: pd.DataFrame, d: DerivedFeature) -> pd.Series:
    by = d.by
    assert by is not None
    real = ordered.assign(_real=1.0, _ghost=0, _value=ordered.get(d.of or "amount"))
    if d.delay is None:
        stacked = real
    else:
        ghosts = ordered.assign(
            tx_time=ordered["tx_time"] - pd.Timedelta(seconds=d.delay_s),
            _real=0.0,
            _ghost=1,
            _value=np.nan,
            is_fraud=0,
        )
        stacked = pd.concat([real, ghosts], ignore_index=True)
    # A ghost comes after the real rows of its time (they are at or before t - d).
    stacked = stacked.sort_values([by, "tx_time", "_ghost"], kind="stable").reset_index(drop=True)
    rolling = stacked.groupby(by, sort=False).rolling(
        f"{d.window_s}s", on="tx_time", closed="right"
    )
    counted = rolling["_real"].sum()
    # stacked is sorted by key: the result's rows (grouped by key) are stacked's, in order.
    rows = stacked
    assert (counted.index.get_level_values(0) == stacked[by].to_numpy()).all()
    count = counted.to_numpy()
    if d.agg is Agg.count:
        result = count
    elif d.agg is Agg.fraud_rate:
        frauds = rolling["is_fraud"].sum().to_numpy()
        result = np.divide(frauds, count, out=np.zeros(len(count)), where=count > 0)
    else:
        values = rolling["_value"]
        reduced = {
            "sum": values.sum,
            "mean": values.mean,
            "min": values.min,
            "max": values.max,
            "std": lambda: values.std(ddof=0),
        }[d.agg.value if d.agg else ""]()
        result = np.nan_to_num(reduced.to_numpy(), nan=0.0)
    wanted = (rows["_ghost"] == (0 if d.delay is None else 1)).to_numpy()
    return pd.Series(result[wanted], index=rows["_row"].to_numpy()[wanted], name=d.name)
