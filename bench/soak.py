"""bench/soak: `fraudops serve` under steady traffic for minutes, every cost sampled each minute.

1. A fresh home (synthetic data → lake → `fraudops train`, on --rows rows), or --home with a
   champion; then `fraudops serve` with the log committed every --commit-interval seconds
   (`serving.writer_batch_age_s` and `seal_age_s`) instead of the default 2 s, to compress time.
2. For --minutes: --rate transactions/s open loop (the traffic client of `fraudops traffic`, in a
   child process, one chunk of generated transactions per minute); ground truth for --label-share
   of them through POST /v1/labels by transaction id, --label-delay seconds after the minute they
   were served, a batch every 10 s; `fraudops monitor run --no-retrain` every --monitor-every
   minutes.
3. After each minute: the writer's commit latency (p50/p99 from /metrics'
   fraudops_log_commit_seconds, "n/a" when absent), the requests' p99, per lake table the
   commits, the current metadata file's size and the files and bytes under metadata/ and data/,
   the warehouse's disk use, a `count(*)` over predictions through DuckDB as `fraudops lake
   query` runs it, and the RSS of the server and its log writer.
4. The server is stopped (its writer's last drain), then every answered prediction must be in
   `predictions` exactly once. Checks: commit latency, metadata size, file counts and RSS of the
   last minute within 1.5x of the second minute's while the rows grow (exit 1 on a FAIL unless
   --no-check); a projection of every growth to 30 days at the default commit interval.

With --spec cards the traffic is raw transactions of a spec deriving its features online, and
the online state's size is sampled and checked too, on --online-store memory or redis
(bench/soak_cards.py: the spec, the traffic's ever-new cards and terminals, the figures).

Usage:

    .venv/bin/python bench/soak.py [--minutes 20] [--rate 100] [--commit-interval 0.5] [--json]
    .venv/bin/python bench/soak.py --spec cards --online-store redis [--minutes 12]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` as a package

from bench.serve import free_port, prepare_home, wait_ready
from bench.soak_cards import (
    DEFAULT_REDIS_URL,
    RedisWatch,
    cards_env,
    online_line,
    prepare_cards_home,
    raw_traffic_worker,
    redis_prefix,
)
from bench.soak_measure import (
    FLAT_FACTOR,
    Labeller,
    Monitor,
    check_flatness,
    final_counts,
    lake_sample,
    process_rss,
    project,
    scrape_metrics,
)
from bench.soak_traffic import send_minutes

BIN = Path(sys.executable).parent
DEFAULT_INTERVAL_S = 2.0  # serving.writer_batch_age_s's default: what the projection scales to


def traffic_worker(
    url: str, rate: float, minutes: int, seed: int, concurrency: int, out: Any
) -> None:
    """Child process: one minute of transactions at a time through the traffic client, the
    minute's figures (and its transaction ids and true labels, for the labeller) on ``out``."""
    from fraudops.config import load_settings
    from fraudops.data.sampling import request_records, sample_traffic

    settings = load_settings()
    spec = settings.feature_spec()

    def minute_bodies(minute: int, n: int) -> tuple[list[dict[str, Any]], list[Any], list[int]]:
        frame = sample_traffic(
            settings.data, spec, n, seed=seed + minute, id_prefix=f"tx-soak-{seed}-{minute}-"
        )
        return (
            list(request_records(frame, spec)),
            frame[spec.id_column].tolist(),
            frame[spec.label_column].astype(int).tolist(),
        )

    send_minutes(url, rate, minutes, concurrency, out, minute_bodies)


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


HEADER = (
    f"{'min':>3} {'rows':>9} {'tx/s':>6} {'req p99':>8} {'commits':>7} {'commit p50/p99 ms':>17} "
    f"{'meta KB pred/stats':>18} {'files meta/data':>15} {'wh MB':>7} {'count ms':>8} "
    f"{'load ms':>7} {'RSS srv/wri MB':>14} {'labels':>6} {'loadavg':>7}"
)


def row_line(s: dict[str, Any]) -> str:
    pred = s["tables"].get("predictions", {})
    stats = s["tables"].get("prediction_stats", {})
    commit = s["commit_ms"]
    meta_kb = (pred.get("metadata_json_bytes", 0) / 1e3, stats.get("metadata_json_bytes", 0) / 1e3)
    cells = [
        f"{s['minute']:>3}",
        f"{s['rows']:>9,}",
        f"{s['tx_per_s']:>6.1f}",
        f"{fmt(s['request_p99_ms'], '.1f'):>8}",
        f"{s['log_commits_in_minute']:>7}",
        f"{fmt(commit['p50'], '.0f') + '/' + fmt(commit['p99'], '.0f'):>17}",
        f"{meta_kb[0]:>8.0f}/{meta_kb[1]:<9.0f}",
        f"{str(s['metadata_files']) + '/' + str(s['data_files']):>15}",
        f"{s['warehouse_disk_bytes'] / 1e6:>7.1f}",
        f"{s['count_ms']:>8.0f}",
        f"{pred.get('load_ms', 0):>7.0f}",
        f"{fmt(s['rss_mb']['server']):>6}/{fmt(s['rss_mb']['writer']):<7}",
        f"{s['labels_sent']:>6}",
        f"{s['loadavg_1m']:>7.1f}",
    ]
    return " ".join(cells)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=20, help="traffic duration (min 2)")
    parser.add_argument("--rate", type=float, default=100.0, help="transactions/s, open loop")
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=0.5,
        help="seconds between log commits (serving.writer_batch_age_s; default 0.5: 4x the "
        "commits of the default 2 s)",
    )
    parser.add_argument("--label-share", type=float, default=0.1, help="share of tx labelled")
    parser.add_argument("--label-delay", type=float, default=30.0, help="seconds after serving")
    parser.add_argument("--monitor-every", type=int, default=5, help="minutes between runs")
    parser.add_argument("--concurrency", type=int, default=16, help="most requests in flight")
    parser.add_argument("--rows", type=int, default=30_000, help="training rows (fresh home)")
    parser.add_argument(
        "--home", type=Path, help="a home with a champion, or one to prepare (default: fresh)"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--maintenance-interval", type=float, default=15.0, help="maintenance.interval_s"
    )
    parser.add_argument("--grace", type=float, default=20.0, help="maintenance.grace_s")
    parser.add_argument("--keep-snapshots", type=int, default=10, help="maintenance.keep_snapshots")
    parser.add_argument(
        "--keep-metadata-files", type=int, default=10, help="maintenance.keep_metadata_files"
    )
    parser.add_argument(
        "--spec",
        choices=("demo", "cards"),
        default="demo",
        help="demo: the default spec, features sent ready-made; cards: raw transactions, "
        "features derived by the online store (bench/soak_cards.py)",
    )
    parser.add_argument("--online-store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="--online-store redis")
    parser.add_argument("--raw-days", type=int, default=20, help="--spec cards: training days")
    parser.add_argument("--json", action="store_true", help="every sample and figure as JSON")
    parser.add_argument("--no-check", action="store_true", help="exit 0 even on a FAIL")
    args = parser.parse_args(argv)
    if args.minutes < 2:
        parser.error("--minutes must be at least 2 (flatness compares the second to the last)")
    return args


def soak_env(home: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    interval = str(args.commit_interval)
    env.update(
        {
            "FRAUDOPS_HOME": str(home),
            "FRAUDOPS_SERVING__WRITER_BATCH_AGE_S": interval,
            # A segment is sealed for the writer at this age: no later than a commit is due.
            "FRAUDOPS_SERVING__SEAL_AGE_S": str(min(1.0, args.commit_interval)),
            # Each minute's traffic is sampled from this many generated rows (fast).
            "FRAUDOPS_DATA__ROWS": str(args.rows),
            # Retention compressed like the commits, so that the steady state (what maintenance
            # keeps) is reached within the first minutes; report() scales it back to defaults.
            "FRAUDOPS_MAINTENANCE__INTERVAL_S": str(args.maintenance_interval),
            "FRAUDOPS_MAINTENANCE__GRACE_S": str(args.grace),
            "FRAUDOPS_MAINTENANCE__KEEP_SNAPSHOTS": str(args.keep_snapshots),
            "FRAUDOPS_MAINTENANCE__KEEP_METADATA_FILES": str(args.keep_metadata_files),
            "GIT_PYTHON_REFRESH": "quiet",
            "MPLBACKEND": "Agg",
        }
    )
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="fraudops-bench-soak-")) / "home"
    env = soak_env(home, args)
    if args.spec == "cards":
        env |= cards_env(home, args.online_store, args.redis_url)
    prefix = redis_prefix(env)
    redis = RedisWatch(args.redis_url, prefix) if prefix else None
    os.environ.clear()
    os.environ.update(env)  # this process reads the same home; the children inherit it
    if args.home is None or not home.exists():  # a --home not there yet is prepared too
        print(f"training a champion in {home} ...", file=sys.stderr)
        if args.spec == "cards":
            prepare_cards_home(home, env, BIN, args.raw_days)
        else:
            prepare_home(home, args.rows, env)

    from fraudops.config import load_settings

    settings = load_settings()
    spec = settings.feature_spec()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = home / "soak-server.log"
    server = subprocess.Popen(
        [str(BIN / "fraudops"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_log.open("wb"),
        start_new_session=True,
    )
    out = sys.stderr if args.json else sys.stdout
    samples: list[dict[str, Any]] = []
    try:
        wait_ready(url + "/readyz")
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        sender = ctx.Process(
            target=raw_traffic_worker if args.spec == "cards" else traffic_worker,
            args=(url, args.rate, args.minutes, args.seed, args.concurrency, queue),
        )
        labeller = Labeller(url, args.label_share, args.label_delay, seed=args.seed)
        monitor = Monitor(env, BIN / "fraudops")
        schedule = set(range(args.monitor_every, args.minutes + 1, args.monitor_every)) or {1}
        started = time.time()
        sender.start()
        print(
            f"soak: {args.minutes} min at {args.rate:g} tx/s, a log commit every "
            f"{args.commit_interval:g} s, labels for {args.label_share:.0%} after "
            f"{args.label_delay:g} s, monitoring at minutes {sorted(schedule)}; spec "
            f"{spec.name}"
            + (f" on the {args.online_store} store" if spec.derived else "")
            + f"; home {home}",
            file=out,
        )
        print(HEADER, file=out, flush=True)
        previous: dict[str, Any] | None = None
        answered = 0
        while (minute := queue.get()) is not None:
            answered += minute["ok"]
            labeller.add(minute.pop("ids"), minute.pop("truth"))
            if minute["minute"] in schedule:
                monitor.start(minute["minute"])
            sample = take_sample(minute, settings, spec.name, server.pid, url, previous)
            sample["elapsed_s"] = round(time.time() - started, 1)
            sample["labels_sent"] = labeller.sent
            sample["answered_total"] = answered
            if redis is not None:
                sample["online"] |= redis.sample()
            samples.append(sample)
            previous = sample
            print(row_line(sample), file=out, flush=True)
            if sample["online"]:
                print(online_line(sample["online"]), file=out, flush=True)
        sender.join(60)
        labels = labeller.stop()
        monitoring = monitor.wait()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        if redis is not None:  # the run's state, under its own prefix
            print(f"redis: {redis.drop():,} keys under {prefix} deleted", file=out)
    # Whatever the server's last drain left (nothing, normally) is committed before the count.
    subprocess.run(
        [str(BIN / "fraudops"), "log-writer", "--once"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows, distinct = final_counts(settings, spec.name)
    checks = check_flatness(samples)
    exact = {
        "answered": answered,
        "rows": rows,
        "distinct_inference_ids": distinct,
        "duplicates": rows - distinct,
        "lost": max(0, answered - distinct),
        "ok": rows == distinct == answered,
    }
    projection = project(
        samples,
        default_interval_s=DEFAULT_INTERVAL_S,
        rate=args.rate,
        free_bytes=shutil.disk_usage(home).free,
    )
    summary = {
        "steady_state_at_defaults": steady_state(samples[-1], args),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "home": str(home),
        "samples": samples,
        "labels": labels,
        "monitoring": monitoring,
        "exactly_once": exact,
        "checks": checks,
        "projection_30d": projection,
    }
    report(summary, out)
    if args.json:
        print(json.dumps(summary, indent=2))
    failed = not exact["ok"] or any(c["result"] == "FAIL" for c in checks)
    return 1 if failed and not args.no_check else 0


def steady_state(last: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What the log's tables keep at the default settings, from this run's figures per kept
    snapshot: at most keep_snapshots, plus those younger than grace_s, plus one maintenance
    interval's commits (expiry runs every interval_s); keep_metadata_files old metadata files,
    each at most the size of the current one."""
    from fraudops.config.maintenance_sections import MaintenanceSettings

    d = MaintenanceSettings()
    kept = d.keep_snapshots + (d.grace_s + d.interval_s) / DEFAULT_INTERVAL_S
    out: dict[str, Any] = {"snapshots_kept_at_most": kept, "tables": {}}
    for name in ("predictions", "prediction_stats"):
        t = last["tables"].get(name)
        if not t or not t["snapshots"]:
            continue
        per_snapshot = kept / t["snapshots"]
        json_bytes = t["metadata_json_bytes"] * per_snapshot
        other_files = t["metadata_files"] - t["metadata_json_files"]
        other_bytes = t["metadata_bytes"] - t["metadata_json_files"] * t["metadata_json_bytes"]
        out["tables"][name] = {
            "snapshots_now": t["snapshots"],
            "metadata_json_bytes": json_bytes,
            "metadata_files": (d.keep_metadata_files + 1) + other_files * per_snapshot,
            "metadata_bytes": (d.keep_metadata_files + 1) * json_bytes
            + max(0.0, other_bytes) * per_snapshot,
        }
    return out


def take_sample(
    minute: dict[str, Any],
    settings: Any,
    spec_name: str,
    server_pid: int,
    url: str,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    metrics = scrape_metrics(url)
    lake = lake_sample(settings, spec_name)
    pred = lake["tables"].get("predictions", {})
    commits = pred.get("commits", 0)
    before = previous["tables"].get("predictions", {}).get("commits", 0) if previous else 0
    return {
        "minute": minute["minute"],
        "traffic": minute,
        "tx_per_s": minute["sent"] / minute["seconds"] if minute["seconds"] else 0.0,
        "request_p99_ms": minute["latency_ms"]["p99"],
        "commit_ms": metrics["commit_ms"],
        "log_queue_records": metrics["queue_records"],
        "online": metrics["online"],
        "log_commits_in_minute": commits - before,
        "rss_mb": process_rss(server_pid),
        # Other work on a shared machine shows here (the bench's own processes included).
        "loadavg_1m": os.getloadavg()[0],
        **lake,
    }


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"{mem_kb / 2**20:.0f} GiB, Python {platform.python_version()}"
    )


def report(summary: dict[str, Any], out: Any) -> None:
    exact = summary["exactly_once"]
    print(
        f"\nexactly once: {exact['answered']:,} answered, {exact['rows']:,} rows, "
        f"{exact['distinct_inference_ids']:,} distinct inference ids, {exact['duplicates']} "
        f"duplicated, {exact['lost']} lost: {'PASS' if exact['ok'] else 'FAIL'}",
        file=out,
    )
    labels = summary["labels"]
    print(
        f"labels: {labels['sent']:,} in {labels['posts']} posts (p50 {fmt(labels['p50_ms'])} ms, "
        f"max {fmt(labels['max_ms'])} ms), {labels['written']:,} written, {labels['unknown']:,} "
        f"unknown, {labels['failed_posts']} failed posts, {labels['not_sent']:,} not yet due",
        file=out,
    )
    for run in summary["monitoring"]:
        print(
            f"monitor run after minute {run['minute']}: {run['seconds']:.1f} s, exit {run['rc']}",
            file=out,
        )
    first, last = summary["checks"][0]["minutes"]
    print(f"\nflatness (minute {last} within {FLAT_FACTOR}x of minute {first}):", file=out)
    for check in summary["checks"]:
        print(
            f"  {check['measure']:<28} {fmt(check['second'], ',.1f'):>12} -> "
            f"{fmt(check['last'], ',.1f'):>12}  {check['result']}",
            file=out,
        )
    p = summary["projection_30d"]
    print(
        f"\n30 days at the default commit interval ({p['default_interval_s']:g} s: "
        f"{p['log_commits']:,.0f} log commits, {p['rows']:,.0f} predictions):",
        file=out,
    )
    print(
        f"  metadata: {p['metadata_bytes'] / 1e9:,.2f} GB in {p['metadata_files']:,.0f} files "
        f"(linear per commit); current predictions metadata file "
        f"{p['predictions_metadata_json_bytes'] / 1e6:,.1f} MB",
        file=out,
    )
    if p["metadata_bytes_accelerating"] is not None:
        print(
            f"  the metadata grows faster than linearly (its growth per commit grew by "
            f"{p['metadata_growth_per_commit2']:,.0f} bytes a commit): "
            f"{p['metadata_bytes_accelerating'] / 1e12:,.1f} TB at that pace; the linear "
            "figure is a lower bound",
            file=out,
        )
    print(
        f"  data: {p['data_bytes'] / 1e9:,.2f} GB in {p['data_files']:,.0f} files "
        f"({p['predictions_bytes_per_row']:,.0f} bytes a prediction row)",
        file=out,
    )
    steady = summary["steady_state_at_defaults"]
    for name, t in steady["tables"].items():
        print(
            f"  at the default retention ({steady['snapshots_kept_at_most']:,.0f} snapshots at "
            f"most, {t['snapshots_now']} now) {name} keeps a {t['metadata_json_bytes'] / 1e6:,.2f}"
            f" MB metadata file, {t['metadata_files']:,.0f} metadata files, "
            f"{t['metadata_bytes'] / 1e6:,.1f} MB: bounded, whatever the run's length",
            file=out,
        )
    hours = p["hours_to_fill_free_disk"]
    print(
        f"  this disk's {p['free_bytes'] / 1e9:,.0f} GB free are used up after "
        + ("never" if hours is None else f"{hours:,.1f} hours ({hours / 24:,.1f} days)"),
        file=out,
    )


if __name__ == "__main__":
    raise SystemExit(main())
