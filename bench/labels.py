"""bench/labels: label ingestion, a monitoring window read and the transaction index, at 1M
and 10M predictions (issue 16: costs follow the data, not the table's age).

Two lakes with the same traffic per day (``bench/dashboard_data.make_lake``: 27,400 predictions
a day, UUIDv7 inference ids, their labels): 1M predictions over 36.5 days and 10M over 365.
In each, ``--rounds`` batches of 1,000 label events on predictions of the last 30 days (half by
``inference_id``, half by ``transaction_id`` alone; confirmed 1-30 days after the prediction),
each ingested by a fresh process (as ``fraudops labels load`` would), timed around
``ingest_labels``. Also timed, in fresh processes: the transaction index's first build (the
dashboard's start-up before this change, and once per table now) and its load afterwards, and
the monitoring window read (``labels.window.read_window``, 7 days) at both sizes.

``--code DIR`` runs the measured processes with another checkout's ``src`` first on the path
(the "before" figures: ``--code /work/main``).

    python bench/labels.py [--rows 1000000 10000000] [--rounds 3] [--code DIR] [--keep H]
                           [--json]

The figures go to bench/RESULTS.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PER_DAY = 27_400  # 10M over 365 days
HERE = Path(__file__).resolve().parent


def build(home: Path, rows: int) -> float:
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    from bench.dashboard_data import make_lake

    started = time.perf_counter()
    make_lake(home, rows, max(2, round(rows / PER_DAY)), seed=7, aggregates=False)
    return time.perf_counter() - started


def sample_events(home: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` label events on predictions of the last 30 days, half keyed by transaction only."""
    import numpy as np

    from fraudops.config import load_settings
    from fraudops.lake import Lake

    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=30)
    with Lake.open(load_settings(home=home)) as lake:
        frame = lake.read_frame(
            "predictions",
            ["inference_id", "transaction_id", "request_time"],
            f"request_time > '{start.isoformat()}'",
        )
    rng = np.random.default_rng(seed)
    picked = frame.iloc[rng.choice(len(frame), size=n, replace=False)]
    events = []
    for k, (_, row) in enumerate(picked.iterrows()):
        delay = dt.timedelta(days=float(rng.uniform(1, 30)))
        confirmed = min(row["request_time"].to_pydatetime() + delay, now)
        event: dict[str, Any] = {
            "label": int(rng.random() < 0.3),
            "confirmed_at": confirmed.isoformat(),
            "source": "chargeback",
        }
        if k % 2:
            event["transaction_id"] = row["transaction_id"]
        else:
            event["inference_id"] = row["inference_id"]
        events.append(event)
    return events


# ---- what the fresh processes run ------------------------------------------------------------


def child(task: str, home: Path, payload: Path | None) -> dict[str, Any]:
    from fraudops.config import load_settings

    settings = load_settings(home=home)
    if task == "ingest":
        from fraudops.labels.ingest import ingest_labels

        assert payload is not None
        events = json.loads(payload.read_text())
        started = time.perf_counter()
        from fraudops.runtime import Runtime

        with Runtime(settings) as runtime:  # its commits followed by the aggregates' refresh
            report = ingest_labels(
                runtime.lake(), events, origin="bench", listeners=runtime.commits
            )
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "written": report.written,
            "unknown": len(report.unknown),
            "duplicates": len(report.duplicates),
        }
    if task == "index":
        from fraudops.labels.txindex import lake_index
        from fraudops.lake import Lake

        with Lake.open(settings) as lake:
            table = lake.table("predictions")
            started = time.perf_counter()
            index = lake_index(settings.home_dir, lake.spec.name, table)
            index.build(table)
            return {"seconds": time.perf_counter() - started, "rows": index.rows}
    if task == "window":
        from fraudops.labels.window import read_window
        from fraudops.lake import Lake

        end = dt.datetime.now(dt.UTC)
        with Lake.open(settings) as lake:
            started = time.perf_counter()
            window = read_window(lake, lake.spec, start=end - dt.timedelta(days=7), end=end)
            seconds = time.perf_counter() - started
        return {"seconds": seconds, "rows": len(window.predictions)}
    raise SystemExit(f"unknown task {task}")


def run_child(task: str, home: Path, code: Path | None, payload: Path | None = None) -> Any:
    src = str((code or HERE.parent) / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(HERE.parent)])}
    command = [sys.executable, str(HERE / "labels.py"), "--child", task, "--home", str(home)]
    if payload is not None:
        command += ["--payload", str(payload)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{task} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    home: Path, rounds: int, code: Path | None, new_code: bool, seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if new_code:
        out["index_first_build_s"] = round(run_child("index", home, code)["seconds"], 3)
        out["index_load_s"] = round(run_child("index", home, code)["seconds"], 3)
    out["window_7d_s"] = round(min(run_child("window", home, code)["seconds"] for _ in range(2)), 3)
    times = []
    for r in range(rounds):
        events = sample_events(home, 1_000, seed=seed + r)  # new events each round
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(events, handle)
        result = run_child("ingest", home, code, Path(handle.name))
        os.unlink(handle.name)
        assert result["unknown"] == 0, result
        times.append(result["seconds"])
        print(f"  ingest 1,000: {result}", file=sys.stderr, flush=True)
    out["ingest_1000_s"] = [round(t, 3) for t in times]
    out["ingest_1000_median_s"] = round(statistics.median(times), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, default=None, help="checkout measured (default: this)")
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep lakes under this dir")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--payload", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.home, args.payload)))
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="labels-bench-"))
    new_code = args.code is None or (args.code / "src/fraudops/labels/txindex.py").exists()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "code": str(args.code or HERE.parent),
        "load_before": os.getloadavg(),
        "lakes": {},
    }
    for rows in args.rows:
        home = root / f"lake-{rows}"
        figures: dict[str, Any] = {}
        if not (home / "lake").exists():
            print(f"building {rows:,} predictions in {home}", file=sys.stderr, flush=True)
            figures["build_s"] = round(build(home, rows), 1)
        seed = int(time.time()) % 100_000  # a rerun on kept lakes labels other predictions
        figures.update(measure(home, args.rounds, args.code, new_code, seed))
        result["lakes"][rows] = figures
        print(f"{rows:,}: {figures}", file=sys.stderr, flush=True)
    result["load_after"] = os.getloadavg()
    sizes = sorted(result["lakes"])
    if len(sizes) > 1:
        small, large = result["lakes"][sizes[0]], result["lakes"][sizes[-1]]
        result["ingest_ratio"] = round(
            large["ingest_1000_median_s"] / small["ingest_1000_median_s"], 2
        )
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
