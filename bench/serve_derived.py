"""bench/serve --derived: serving raw transactions of `cards` (the online store computes the
derived features) against the same features sent ready-made — same data, same model kind.

1. A fresh home (or --home from an earlier run): `data generate --raw`, the first
   --loaded-days loaded into `cards` and trained (`train --spec cards`); the same rows with
   their derived features (`features export`) loaded into `cards_ready`, a spec declaring the
   derived names as plain features, and trained too (the same rows and labels: the same trees).
2. The later days are the traffic: as raw bodies (id, time, card, terminal, amount) and as
   ready bodies (id, amount and the derived values `fraudops score` of that raw file gives).
3. `fraudops serve` of `cards_ready` with the ready bodies, then of `cards` with the raw bodies
   on the memory store, then on the Redis store (a fresh key prefix, deleted after); each gets
   a warm-up, then wrk: 16 connections, 2 threads, the bodies in time order (thread k sends
   bodies k, k+2, …), for --seconds. The log is on in every run. Each run starts from the
   same home: the one prepared in step 1, restored from a copy taken before any serving (a
   run's served traffic reaches the lake, and a later raw run would warm from it and re-record
   every transaction it is sent).

Targets (issue 19): derived ≥ 60 % of the ready spec's requests/s, p99 ≤ 10 ms.

    .venv/bin/python bench/serve.py --derived [--seconds 20] [--home DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from bench.serve import BIN, REPO, free_port, run_wrk, wait_ready

# Each wrk thread walks its own stride of the bodies: together they send them in time order.
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
function setup(thread)
  thread:set("first", counter)
  counter = counter + 1
end
local i = nil
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if i == nil then i = first end
  local body = bodies[i % #bodies + 1]
  i = i + 2
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""
READY = "cards_ready"


def _fraudops(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [str(BIN / "fraudops"), *args, "--json"], env=env, check=True, capture_output=True
    )
    return json.loads(done.stdout)


def ready_spec() -> dict[str, Any]:
    """`cards` with its derived features declared as plain ones (same names, same order)."""
    from fraudops.spec import CARDS

    return {
        "description": "cards' features, sent ready-made (bench/serve --derived)",
        "id_column": CARDS.id_column,
        "customer_column": CARDS.customer_column,
        "timestamp_column": CARDS.timestamp_column,
        "label_column": CARDS.label_column,
        "amount_column": CARDS.amount_column,
        "features": [{"name": name} for name in CARDS.feature_names],
    }


def prepare(home: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """The two trained specs and the traffic files under ``home``."""
    data = home / "bench-data"
    data.mkdir(parents=True, exist_ok=True)
    sizes = ["--customers", str(args.customers), "--terminals", str(args.terminals)]
    sizes += ["--days", str(args.days), "--seed", "7"]
    _fraudops(env, "data", "generate", "--raw", *sizes, "--out", str(data / "raw.parquet"))
    raw = pd.read_parquet(data / "raw.parquet")
    cut = raw["tx_time"].min().normalize() + pd.Timedelta(days=args.loaded_days)
    raw[raw["tx_time"] < cut].to_parquet(data / "loaded.parquet", index=False)
    traffic = raw[raw["tx_time"] >= cut].sort_values(["tx_time", "tx_id"], kind="stable")
    traffic.to_parquet(data / "traffic.parquet", index=False)
    for spec, step in (("cards", "lake init"), (READY, "lake init")):
        _fraudops(env, *step.split(), "--spec", spec)
    _fraudops(env, "lake", "load", str(data / "loaded.parquet"), "--spec", "cards")
    trained = _fraudops(env, "train", "--spec", "cards")
    print(f"cards: {trained['decision']} {trained['metrics']['roc_auc']:.3f}", file=sys.stderr)
    _fraudops(env, "features", "export", "--spec", "cards", "--out", str(data / "ready.parquet"))
    _fraudops(env, "lake", "load", str(data / "ready.parquet"), "--spec", READY)
    trained = _fraudops(env, "train", "--spec", READY)
    print(f"{READY}: {trained['decision']} {trained['metrics']['roc_auc']:.3f}", file=sys.stderr)
    # The ready bodies carry the values the offline engine gives the traffic (= what serving
    # computes for it, tests/integration/test_features_score_serve.py).
    scored = data / "traffic-scored.parquet"
    _fraudops(
        env, "score", "-i", str(data / "traffic.parquet"), "-o", str(scored), "--spec", "cards"
    )


def write_bodies(home: Path, work: Path) -> tuple[Path, Path]:
    from fraudops.spec import CARDS

    data = home / "bench-data"
    traffic = pd.read_parquet(data / "traffic.parquet")
    scored = pd.read_parquet(data / "traffic-scored.parquet").set_index("tx_id")
    derived = scored.loc[traffic["tx_id"], [d.name for d in CARDS.derived]]
    derived.insert(0, "amount", traffic["amount"].to_numpy())  # the plain feature, as sent raw
    raw_path, ready_path = work / "raw.jsonl", work / "ready.jsonl"
    with raw_path.open("w") as raw_out, ready_path.open("w") as ready_out:
        for row, values in zip(traffic.itertuples(), derived.itertuples(index=False), strict=True):
            raw = {
                "transaction_id": row.tx_id,
                "tx_time": row.tx_time.isoformat(),
                "customer_id": row.customer_id,
                "terminal_id": row.terminal_id,
                "amount": float(row.amount),
            }
            raw_out.write(json.dumps(raw) + "\n")
            ready = {"transaction_id": row.tx_id, "customer_id": row.customer_id}
            ready |= {name: float(v) for name, v in zip(CARDS.feature_names, values, strict=True)}
            ready_out.write(json.dumps(ready) + "\n")
    return raw_path, ready_path


def pristine_copy(home: Path) -> Path:
    """The copy of ``home`` every run starts from, taken once before any serving (the
    traffic files stay in ``home`` only: no run writes them)."""
    pristine = home.parent / f"{home.name}.pristine"
    if not pristine.exists():
        shutil.copytree(
            home, pristine, ignore=lambda d, _: ["bench-data"] if d == str(home) else []
        )
    return pristine


def restore(home: Path, pristine: Path) -> None:
    """``home`` as ``pristine`` holds it, in place (the lake's catalog and the registry hold
    absolute paths: a copy elsewhere would still write here)."""
    for entry in home.iterdir():
        if entry.name == "bench-data":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in pristine.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, home / entry.name)
        else:
            shutil.copy2(entry, home / entry.name)


def measure(
    name: str, spec: str, env: dict[str, str], bodies: Path, script: Path, seconds: int, conns: int
) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "fraudops"), "serve", "--port", str(port), "--spec", spec],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        wait_ready(url + "/readyz", timeout=600)  # the Redis store warms from the lake first
        ready_s = time.perf_counter() - started
        warm = run_wrk(url + "/v1/predict", 3, conns, script, bodies)
        stats = run_wrk(url + "/v1/predict", seconds, conns, script, bodies)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    stats["warmup_ok"] = warm["ok"]
    stats["ready_s"] = round(ready_s, 1)
    print(
        f"{name:>16}: {stats['rps']:8.1f} req/s  p50 {stats['p50_ms']} ms  "
        f"p99 {stats['p99_ms']} ms  non-2xx {stats['status_errors']}  (ready in {ready_s:.1f} s)",
        file=sys.stderr,
    )
    return stats


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def run_derived(args: argparse.Namespace) -> None:
    home = args.home or Path(tempfile.mkdtemp(prefix="fraudops-bench-derived-")) / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = home.parent / "bench-derived.yaml"
    config.write_text(yaml.safe_dump({"home": str(home), "specs": {READY: ready_spec()}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env |= {
        "FRAUDOPS_CONFIG": str(config),
        "GIT_PYTHON_REFRESH": "quiet",
        "MPLBACKEND": "Agg",
        # This checkout's code in the servers and commands, and `bench.*`.
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
    }
    if not (home / "bench-data" / "traffic-scored.parquet").exists():
        print(f"preparing {home} (raw data, two trained specs) ...", file=sys.stderr)
        prepare(home, env, args)
    elif not (home.parent / f"{home.name}.pristine").exists():
        print(
            f"warning: {home} has no pristine copy (prepared by an older bench): the runs start "
            "from it as it is, with any traffic earlier runs served",
            file=sys.stderr,
        )
    pristine = pristine_copy(home)
    work = Path(tempfile.mkdtemp(prefix="fraudops-wrk-derived-"))
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    raw_bodies, ready_bodies = write_bodies(home, work)
    run = (args.seconds, args.connections)

    restore(home, pristine)
    ready = measure("ready features", READY, env, ready_bodies, script, *run)
    restore(home, pristine)
    memory = measure("derived, memory", "cards", env, raw_bodies, script, *run)
    redis_url = "redis://127.0.0.1:6379/0"
    prefix = f"fraudops-bench:{uuid.uuid4().hex[:8]}"
    redis_env = env | {
        "FRAUDOPS_FEATURES__ONLINE_STORE": "redis",
        "FRAUDOPS_FEATURES__REDIS_URL": redis_url,
        "FRAUDOPS_FEATURES__REDIS_PREFIX": prefix,
    }
    restore(home, pristine)
    try:
        on_redis = measure("derived, redis", "cards", redis_env, raw_bodies, script, *run)
    finally:
        _drop_redis_prefix(redis_url, prefix)
        restore(home, pristine)

    load = os.getloadavg()
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_after": [round(x, 2) for x in load],
        "connections": args.connections,
        "seconds": args.seconds,
        "traffic_bodies": sum(1 for _ in raw_bodies.open()),
        "ready": ready,
        "derived_memory": memory,
        "derived_redis": on_redis,
        "ratio_memory": round(memory["rps"] / ready["rps"], 2),
        "ratio_redis": round(on_redis["rps"] / ready["rps"], 2),
        "home": str(home),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"{summary['machine']}, {summary['date']}, 1 worker, {args.connections} connections, "
        f"{args.seconds} s, load average after {summary['load_average_after']}"
    )
    print("| cards served as | Requests/s | vs ready | p50 ms | p95 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, s, ratio in (
        ("ready-made features (`cards_ready`)", ready, 1.0),
        ("raw transactions, memory store", memory, summary["ratio_memory"]),
        ("raw transactions, Redis store", on_redis, summary["ratio_redis"]),
    ):
        print(
            f"| {label} | {s['rps']:,.0f} | {ratio:.0%} | {s['p50_ms']} | {s['p95_ms']} | "
            f"{s['p99_ms']} | {s['status_errors']} |"
        )
    print("targets: ≥ 60 % of the ready spec's requests/s, p99 ≤ 10 ms")
