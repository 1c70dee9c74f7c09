"""bench/serve: fraudops serving, logging on, against a plain FastAPI app — same run, same model.

1. A fresh home: synthetic data → lake → `fraudops train` (or reuse --home with a champion).
2. The plain app (bench/plain_app.py) under uvicorn, then `fraudops serve` with the inference
   log on, each with the same worker count; each gets a warm-up, then wrk from a second process
   on loopback: 16 connections, single-transaction POSTs cycling through 2,000 different
   generated transactions, for --seconds.
3. fraudops is stopped (SIGTERM), the spool drained with `fraudops log-writer --once`, and the
   rows in `predictions` compared with the 200 responses wrk counted: records lost.

Needs wrk (`apt-get install wrk`). Usage:

    .venv/bin/python bench/serve.py [--seconds 20] [--workers 1] [--connections 16] [--json]

With --derived: raw transactions of `cards` (derived features computed by the online store,
memory and Redis) against the same features sent ready-made (bench/serve_derived.py).

Prints a summary and the markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} did not become ready")


def prepare_home(home: Path, rows: int, env: dict[str, str]) -> None:
    def run(*args: str) -> None:
        subprocess.run(
            [str(BIN / "fraudops"), *args], env=env, check=True, stdout=subprocess.DEVNULL
        )

    run("data", "generate", "--rows", str(rows), "--out", str(home / "data"))
    run("lake", "init")
    run("lake", "load", str(home / "data" / "transactions.parquet"))
    run("train")


def write_bodies(path: Path, env: dict[str, str], n: int = 2000) -> None:
    """n different transactions of the active spec, one JSON body per line."""
    code = (
        "import sys, json\n"
        "from fraudops.config import load_settings\n"
        "from fraudops.data.synthetic import generate_transactions\n"
        "s = load_settings(); spec = s.feature_spec()\n"
        f"df = generate_transactions(s.data, spec, rows={n}, seed=99)\n"
        "cols = spec.feature_names + [spec.id_column]\n"
        "for rec in df[cols].to_dict(orient='records'):\n"
        "    row = {k: (v.item() if hasattr(v, 'item') else v) for k, v in rec.items()}\n"
        "    print(json.dumps(row))\n"
    )
    with path.open("w") as fh:
        subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=fh)


def run_wrk(url: str, seconds: int, connections: int, script: Path, bodies: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        env={**os.environ, "BENCH_BODIES": str(bodies)},
        check=True,
        capture_output=True,
        text=True,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    stats: dict[str, Any] = json.loads(line)
    seconds_run = stats["duration_us"] / 1e6
    errors = stats["status_errors"]
    stats["ok"] = stats["requests"] - errors
    stats["rps"] = round(stats["requests"] / seconds_run, 1)
    for key in ("p50", "p95", "p99", "max"):
        stats[f"{key}_ms"] = round(stats.pop(f"{key}_us") / 1000, 2)
    return stats


def measure(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    port: int,
    ready_path: str,
    args: argparse.Namespace,
    script: Path,
    bodies: Path,
) -> tuple[dict[str, Any], Any]:
    server = subprocess.Popen(
        cmd,
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + ready_path)
        warm = run_wrk(url + "/v1/predict", 3, args.connections, script, bodies)
        stats = run_wrk(url + "/v1/predict", args.seconds, args.connections, script, bodies)
        stats["warmup_ok"] = warm["ok"]
    except BaseException:
        os.killpg(server.pid, signal.SIGKILL)
        raise
    print(
        f"{name:>10}: {stats['rps']:8.1f} req/s  p50 {stats['p50_ms']} ms  "
        f"p95 {stats['p95_ms']} ms  p99 {stats['p99_ms']} ms  non-2xx {stats['status_errors']}",
        file=sys.stderr,
    )
    return stats, server


class DashboardViewer:
    """`fraudops dashboard` on the same home with its Inference page open: every 5 s (the
    default dashboard.refresh_seconds) the page asks /api/state and, when the lake moved,
    fetches its data again — what an open browser tab does."""

    def __init__(self, env: dict[str, str], refresh: float = 5.0) -> None:
        import threading

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(BIN / "fraudops"), "dashboard", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_ready(self.base + "/api/state")
        self.refresh = refresh
        self.polls = self.page_loads = self.errors = 0
        self.page_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=30) as response:
            return bytes(response.read())

    def _run(self) -> None:
        last = None
        while not self._stop.is_set():
            try:
                state = self._get("/api/state")
                self.polls += 1
                if state != last:
                    started = time.perf_counter()
                    self._get("/api/page/inference")
                    self.page_ms.append((time.perf_counter() - started) * 1000)
                    self.page_loads += 1
                    last = state
            except OSError:
                self.errors += 1
            self._stop.wait(self.refresh)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(60)
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        ms = sorted(self.page_ms)
        return {
            "polls": self.polls,
            "page_loads": self.page_loads,
            "errors": self.errors,
            "page_p50_ms": round(ms[len(ms) // 2], 1) if ms else None,
            "page_max_ms": round(ms[-1], 1) if ms else None,
        }


def count_predictions(env: dict[str, str]) -> tuple[int, int]:
    """Rows in `predictions` and distinct inference ids among them."""
    sql = "SELECT count(*) AS n, count(DISTINCT inference_id) AS ids FROM predictions"
    done = subprocess.run(
        [str(BIN / "fraudops"), "lake", "query", sql, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    row = json.loads(done.stdout)[0]
    return int(row["n"]), int(row["ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rows", type=int, default=100_000, help="training rows (fresh home)")
    parser.add_argument("--home", type=Path, help="a home with a champion (default: fresh)")
    parser.add_argument(
        "--with-dashboard",
        action="store_true",
        help="keep `fraudops dashboard` open on the same home during fraudops' run, its "
        "Inference page polling as a browser does (state every 5 s, the page when it moved)",
    )
    parser.add_argument(
        "--derived",
        action="store_true",
        help="raw `cards` transactions (online store: memory, then Redis) against the same "
        "features sent ready-made (bench/serve_derived.py); --home: that bench's home",
    )
    parser.add_argument("--customers", type=int, default=1000, help="--derived: raw data")
    parser.add_argument("--terminals", type=int, default=2000, help="--derived: raw data")
    parser.add_argument("--days", type=int, default=120, help="--derived: days generated")
    parser.add_argument("--loaded-days", type=int, default=100, help="--derived: trained on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve needs wrk: apt-get install wrk")
    if args.derived:
        sys.path.insert(0, str(REPO))  # `bench.*` as a package
        from bench.serve_derived import run_derived

        run_derived(args)
        return

    home = args.home or Path(tempfile.mkdtemp(prefix="fraudops-bench-serve-")) / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env.update(
        {
            "FRAUDOPS_HOME": str(home),
            "GIT_PYTHON_REFRESH": "quiet",
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(REPO),
        }
    )
    if args.home is None:
        print(f"training a champion on {args.rows:,} rows in {home} ...", file=sys.stderr)
        prepare_home(home, args.rows, env)
    work = Path(tempfile.mkdtemp(prefix="fraudops-wrk-"))
    script, bodies = work / "post.lua", work / "bodies.jsonl"
    script.write_text(WRK_SCRIPT)
    write_bodies(bodies, env)
    before = count_predictions(env)

    plain_port = free_port()
    plain, server = measure(
        "plain",
        [
            str(BIN / "uvicorn"),
            "--factory",
            "bench.plain_app:create_app",
            "--port",
            str(plain_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
        plain_port,
        "/docs",
        args,
        script,
        bodies,
    )
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(30)

    dashboard = DashboardViewer(env) if args.with_dashboard else None
    port = free_port()
    ours, server = measure(
        "fraudops",
        [str(BIN / "fraudops"), "serve", "--port", str(port), "--workers", str(args.workers)],
        env,
        port,
        "/readyz",
        args,
        script,
        bodies,
    )
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(60)
    viewer = dashboard.stop() if dashboard is not None else None
    drained = subprocess.run(
        [str(BIN / "fraudops"), "log-writer", "--once", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows_after, ids_after = count_predictions(env)
    logged, distinct = rows_after - before[0], ids_after - before[1]
    # Every 200 fraudops sent, the warm-up's included, must be a row: compare both runs.
    answered = ours["ok"] + ours["warmup_ok"]
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "workers": args.workers,
        "connections": args.connections,
        "seconds": args.seconds,
        "plain": plain,
        "fraudops": ours,
        "ratio_rps": round(ours["rps"] / plain["rps"], 2),
        "dashboard": viewer,
        "predictions_rows": logged,
        "drain": json.loads(drained.stdout) if drained.stdout.strip().startswith("{") else None,
        "home": str(home),
    }
    # wrk counts the responses that completed inside its window; the few in flight when it
    # stops were answered and logged too, so rows may exceed its count. A loss shows as fewer
    # distinct ids than 200s, a replay as more rows than distinct ids.
    summary["answered_200"] = answered
    summary["distinct_ids"] = distinct
    summary["records_lost"] = max(0, answered - distinct)
    summary["duplicates"] = logged - distinct
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    p, o = plain, ours
    print(
        f"{summary['machine']}, {summary['date']}, {args.workers} worker(s), "
        f"{args.connections} connections, {args.seconds} s"
    )
    print(
        "| App | Requests/s | p50 ms | p95 ms | p99 ms | non-2xx | 200s counted by wrk | "
        "rows logged | lost | duplicated |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| plain FastAPI + pydantic + XGBoost | {p['rps']:,.0f} | {p['p50_ms']} | "
        f"{p['p95_ms']} | {p['p99_ms']} | {p['status_errors']} | — | — | — |"
    )
    print(
        f"| fraudops, log on | {o['rps']:,.0f} | {o['p50_ms']} | {o['p95_ms']} | "
        f"{o['p99_ms']} | {o['status_errors']} | {answered:,} | {logged:,} | "
        f"{summary['records_lost']} |"
    )
    print(f"ratio: {summary['ratio_rps']}x")
    if viewer is not None:
        print(f"dashboard open meanwhile: {viewer}")


if __name__ == "__main__":
    main()
