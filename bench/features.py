"""bench/features: the offline derived-feature engine (issue 19 point 2) on 1.75M raw rows.

Synthetic raw transactions made here with NumPy (the public set's shape: ~5,000 customers,
~10,000 terminals, 6 months, ~1% fraud) and the 12 window features of the fraud-detection
handbook: per customer the count and mean amount over 1, 7 and 30 days; per terminal the count
and the fraud rate over 1, 7 and 30 days after a 7-day delay. Timed:

- ``lake``: ``derive_from_lake`` on a temporary lake holding the rows (read + derive, the target:
  under 20 s);
- ``memory``: ``derive`` on the frame already in memory;
- ``numpy_peer``: a plain NumPy ``searchsorted`` + ``cumsum`` computation of the same 12 (the
  peer figure, ~6 s; its means are cumsum differences, not the engine's exact sequential sums);
- ``duckdb``: the same 12 as DuckDB window functions (``RANGE BETWEEN INTERVAL ... PRECEDING``)
  over the Arrow table: the alternative the issue asks to measure. Its frames are closed at both
  ends and its ties are peers (all same-time rows), so it is not the engine's definition: timing
  only.

    python bench/features.py [--rows 1750000] [--skip duckdb,numpy_peer] [--json]

The figures go to bench/RESULTS.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DAY = 86_400
WINDOWS = (1, 7, 30)
DELAY_DAYS = 7


def spec_dict() -> dict[str, Any]:
    derived: list[dict[str, str]] = []
    for w in WINDOWS:
        derived.append(
            {"name": f"cust_nb_tx_{w}d", "by": "customer_id", "window": f"{w}d", "agg": "count"}
        )
        derived.append(
            {
                "name": f"cust_avg_amt_{w}d",
                "by": "customer_id",
                "window": f"{w}d",
                "agg": "mean",
                "of": "amount",
            }
        )
    for w in WINDOWS:
        for agg, prefix in (("count", "term_nb_tx"), ("fraud_rate", "term_risk")):
            derived.append(
                {
                    "name": f"{prefix}_{w}d",
                    "by": "terminal_id",
                    "window": f"{w}d",
                    "delay": f"{DELAY_DAYS}d",
                    "agg": agg,
                }
            )
    return {
        "id_column": "tx_id",
        "timestamp_column": "tx_time",
        "label_column": "is_fraud",
        "amount_column": "amount",
        "customer_column": "customer_id",
        "keys": ["customer_id", "terminal_id"],
        "features": [{"name": "amount", "min": 0}],
        "derived": derived,
    }  # fmt: skip


def make_rows(n: int, seed: int = 19) -> pd.DataFrame:
    """``n`` transactions over 182 days; busy and quiet customers; ids in time order."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(2.0, 1.0, 5_000)
    customers = rng.choice(5_000, n, p=activity / activity.sum())
    terminals = rng.integers(0, 10_000, n)
    seconds = np.sort(rng.integers(0, 182 * DAY, n))
    return pd.DataFrame(
        {
            "tx_id": np.char.add("tx", np.arange(n).astype(str)),
            "tx_time": pd.Timestamp("2025-04-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "customer_id": np.char.add("c", customers.astype(str)),
            "terminal_id": np.char.add("t", terminals.astype(str)),
            "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
            "is_fraud": (rng.random(n) < 0.01).astype(np.int64),
        }
    )


def numpy_peer(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The plain way: per key, sort by (key, time), searchsorted the window bounds on a
    (key, time) composite, cumsum differences for sums."""
    t = frame["tx_time"].dt.tz_localize(None).to_numpy("datetime64[s]").view(np.int64)
    amount = frame["amount"].to_numpy()
    fraud = frame["is_fraud"].to_numpy().astype(np.float64)
    out: dict[str, np.ndarray] = {}
    span = int(t.max() - t.min()) + 60 * DAY
    rel = t - t.min() + 40 * DAY
    for key, prefix in (("customer_id", "cust"), ("terminal_id", "term")):
        codes = pd.factorize(frame[key])[0].astype(np.int64)
        order = np.lexsort((rel, codes))
        comp = codes[order] * span + rel[order]
        pos = np.arange(len(order))
        for w in WINDOWS:
            if prefix == "cust":
                lo = np.searchsorted(comp, comp - w * DAY, side="right")
                hi = pos + 1
                sums = np.concatenate([[0.0], np.cumsum(amount[order])])
                count = hi - lo
                feats = {
                    f"cust_nb_tx_{w}d": count,
                    f"cust_avg_amt_{w}d": (sums[hi] - sums[lo]) / count,
                }
            else:
                delay = DELAY_DAYS * DAY
                lo = np.searchsorted(comp, comp - delay - w * DAY, side="right")
                hi = np.searchsorted(comp, comp - delay, side="right")
                frauds = np.concatenate([[0.0], np.cumsum(fraud[order])])
                count = hi - lo
                rate = np.divide(
                    frauds[hi] - frauds[lo], count, out=np.zeros(len(count)), where=count > 0
                )
                feats = {f"term_nb_tx_{w}d": count, f"term_risk_{w}d": rate}
            for name, values in feats.items():
                result = np.empty_like(values)
                result[order] = values
                out[name] = result
    return out  # fmt: skip


def duckdb_windows(frame: pd.DataFrame) -> int:
    import duckdb
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    cols = []
    for w in WINDOWS:
        over_c = (
            "(PARTITION BY customer_id ORDER BY tx_time "
            f"RANGE BETWEEN INTERVAL {w} DAY PRECEDING AND CURRENT ROW)"
        )
        cols += [
            f"count(*) OVER {over_c} AS cust_nb_tx_{w}d",
            f"avg(amount) OVER {over_c} AS cust_avg_amt_{w}d",
        ]
        over_t = (
            "(PARTITION BY terminal_id ORDER BY tx_time RANGE BETWEEN "
            f"INTERVAL {w + DELAY_DAYS} DAY PRECEDING AND INTERVAL {DELAY_DAYS} DAY PRECEDING)"
        )
        rate = f"sum(is_fraud) OVER {over_t} / nullif(count(*) OVER {over_t}, 0)"
        cols += [
            f"count(*) OVER {over_t} AS term_nb_tx_{w}d",
            f"coalesce({rate}, 0) AS term_risk_{w}d",
        ]
    con = duckdb.connect()
    con.register("tx", table)
    result = con.execute(f"SELECT tx_id, {', '.join(cols)} FROM tx").to_arrow_table()
    return int(result.num_rows)  # fmt: skip


def timed(label: str, figures: dict[str, Any], fn: Any) -> Any:
    """Wall and CPU seconds of ``fn()`` (the CPU figure too: the bench machine is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    figures[label] = round(time.perf_counter() - wall, 2)
    figures[f"{label}_cpu"] = round(time.process_time() - cpu, 2)
    print(f"{label}: {figures[label]} s wall, {figures[f'{label}_cpu']} s CPU", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--skip", default="", help="comma-separated: numpy_peer,duckdb,lake")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from fraudops.config import load_settings
    from fraudops.features import derive, derive_from_lake
    from fraudops.lake import Lake

    figures: dict[str, Any] = {
        "rows": args.rows,
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    frame = timed("generate", figures, lambda: make_rows(args.rows))
    figures["customers"] = int(frame["customer_id"].nunique())
    figures["terminals"] = int(frame["terminal_id"].nunique())
    with tempfile.TemporaryDirectory(prefix="bench-features-") as home:
        settings = load_settings(home=Path(home), specs={"raw": spec_dict()}, spec="raw")
        spec = settings.feature_spec("raw")
        derived = timed("memory", figures, lambda: derive(frame, spec))
        if "numpy_peer" not in skip:
            peer = timed("numpy_peer", figures, lambda: numpy_peer(frame))
            worst = 0.0
            for name, values in peer.items():  # the same features, but for the peer's rounding
                np.testing.assert_allclose(derived[name], values, rtol=1e-5, err_msg=name)
                gap = np.abs(derived[name] - values) / np.maximum(np.abs(values), 1e-300)
                worst = max(worst, float(gap.max()))
            figures["numpy_peer_max_rel_diff"] = worst  # cumsum differences drift
        if "duckdb" not in skip:
            timed("duckdb", figures, lambda: duckdb_windows(frame))
        if "lake" not in skip:
            with Lake.open(settings, "raw") as lake:
                lake.init_tables()
                from fraudops.lake.validation import validate_frame

                timed(
                    "lake_write",
                    figures,
                    lambda: lake.append("transactions", validate_frame(frame, spec)),
                )
                exported = timed("lake", figures, lambda: derive_from_lake(lake, spec))
            assert len(exported) == args.rows
            by_id = exported.set_index("tx_id").loc[frame["tx_id"]]
            for name in derived.columns:
                assert np.array_equal(by_id[name].to_numpy(), derived[name].to_numpy()), name
    print(json.dumps(figures) if args.json else figures)


if __name__ == "__main__":
    main()
