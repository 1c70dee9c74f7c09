"""bench/soak's measurements: the lake's files, the server's metrics and processes, the label
events and monitoring runs it sends meanwhile, and the arithmetic of its checks and projection."""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import re
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

FLAT_FACTOR = 1.5
LABEL_EVERY_S = 10.0  # one POST /v1/labels this often, for what became due
LOG_TABLES = ("predictions", "prediction_stats")  # committed by the log writer, per log commit
DAY_S = 86_400
TREE_MEASURES = ("metadata_files", "metadata_bytes", "data_files", "data_bytes")

# ---- the lake ------------------------------------------------------------------------------


def tree_usage(folder: Path) -> tuple[int, int, int]:
    """Files, bytes (their sizes) and disk bytes (allocated blocks) under ``folder``."""
    files = size = disk = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                st = os.stat(os.path.join(root, name))
            except FileNotFoundError:  # removed by a commit or maintenance meanwhile
                continue
            files += 1
            size += st.st_size
            disk += st.st_blocks * 512
    return files, size, disk


def local_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def lake_sample(settings: Any, spec_name: str) -> dict[str, Any]:
    """Per table of the namespace: commits so far (the current metadata file's version), its size,
    snapshots, manifests, files and bytes under metadata/ and data/; the totals; the warehouse's
    and the home's disk use; the time of loading `predictions` and of a `count(*)` over it."""
    from fraudops.lake import Lake
    from fraudops.lake.query import run_query
    from fraudops.lake.storage import warehouse_of

    tables: dict[str, dict[str, Any]] = {}
    with Lake.open(settings, spec_name) as lake:
        for _ns, name in sorted(lake.catalog.list_tables(lake.namespace)):
            started = time.perf_counter()
            table = lake.table(name)
            load_ms = (time.perf_counter() - started) * 1000
            location = local_path(table.metadata_location)
            snapshot = table.current_snapshot()
            entry: dict[str, Any] = {
                "commits": int(location.name.split("-", 1)[0]),
                "metadata_json_bytes": location.stat().st_size,
                "snapshots": len(table.metadata.snapshots),
                "manifests": len(snapshot.manifests(table.io)) if snapshot else 0,
                "load_ms": round(load_ms, 1),
            }
            root = local_path(table.metadata.location)
            for part in ("metadata", "data"):
                files, size, _disk = tree_usage(root / part)
                entry[f"{part}_files"], entry[f"{part}_bytes"] = files, size
            entry["metadata_json_files"] = sum(
                1 for _ in (root / "metadata").glob("*.metadata.json")
            )
            tables[name] = entry
        started = time.perf_counter()
        rows = int(run_query(lake, "SELECT count(*) AS n FROM predictions").column(0)[0].as_py())
        count_ms = (time.perf_counter() - started) * 1000
    warehouse = warehouse_of(settings).folder
    sample: dict[str, Any] = {
        "tables": tables,
        "rows": rows,
        "count_ms": round(count_ms, 1),
        "warehouse_disk_bytes": tree_usage(warehouse)[2] if warehouse else 0,
        "home_disk_bytes": tree_usage(settings.home_dir)[2],
    }
    for measure in TREE_MEASURES:
        sample[measure] = sum(t[measure] for t in tables.values())
    return sample


def final_counts(settings: Any, spec_name: str) -> tuple[int, int]:
    """Rows in `predictions` and distinct inference ids among them."""
    from fraudops.lake import Lake
    from fraudops.lake.query import run_query

    sql = "SELECT count(*) AS n, count(DISTINCT inference_id) AS ids FROM predictions"
    with Lake.open(settings, spec_name) as lake:
        row = run_query(lake, sql).to_pylist()[0]
    return int(row["n"]), int(row["ids"])


# ---- the server ----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_QUANTILE = re.compile(r'quantile="([0-9.]+)"')


def scrape_metrics(url: str) -> dict[str, Any]:
    """The writer's commit latency quantiles (ms; None when the metric is absent), the log
    queue and the online feature state's size (empty for a spec without derived features),
    from the server's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        return parse_metrics(response.read().decode())


def parse_metrics(text: str) -> dict[str, Any]:
    """scrape_metrics' figures from the text of /metrics."""
    from bench.soak_cards import ONLINE_METRICS

    commit: dict[str, float | None] = {"p50": None, "p99": None}
    queue = None
    online: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        quantile = _QUANTILE.search(labels)
        if name == "fraudops_log_commit_seconds" and quantile and value == value:  # NaN: none
            key = {0.5: "p50", 0.99: "p99"}.get(float(quantile.group(1)))
            if key is not None:  # several series (one per table, say): the slowest
                commit[key] = max(commit[key] or 0.0, round(value * 1000, 1))
        elif name == "fraudops_log_queue_records":
            queue = int(value)
        elif name in ONLINE_METRICS:
            online[ONLINE_METRICS[name]] = value
    return {"commit_ms": commit, "queue_records": queue, "online": online}


def process_rss(server_pid: int) -> dict[str, float | None]:
    """RSS in MB of the server process and of its log-writer child (None if not found)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return {"server": _proc_rss(server_pid), "writer": None}
    try:
        server = psutil.Process(server_pid)
        writer = next(
            (
                c
                for c in server.children(recursive=True)
                if {"log-writer", "fraudops.log_writer"} & set(c.cmdline())
            ),
            None,
        )
        return {
            "server": round(server.memory_info().rss / 2**20, 1),
            "writer": round(writer.memory_info().rss / 2**20, 1) if writer else None,
        }
    except psutil.Error:
        return {"server": None, "writer": None}


def _proc_rss(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# ---- label events and monitoring runs ------------------------------------------------------


class Labeller:
    """Ground truth for a share of each minute's transactions, by transaction id, posted to
    /v1/labels ``delay`` seconds after the minute ended, one batch every LABEL_EVERY_S."""

    def __init__(self, url: str, share: float, delay: float, *, seed: int) -> None:
        self.url = url + "/v1/labels"
        self.share, self.delay = share, delay
        self.rng = random.Random(seed)
        self.due: list[tuple[float, int, list[dict[str, Any]]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sent = self.posts = self.written = self.unknown = self.failed = 0
        self.post_ms: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, ids: list[str], truth: list[int]) -> None:
        events = [
            {"transaction_id": i, "label": int(t), "source": "chargeback" if t else "review"}
            for i, t in zip(ids, truth, strict=True)
            if self.rng.random() < self.share
        ]
        batches = max(1, round(60 / LABEL_EVERY_S))
        start = time.time() + self.delay
        with self.lock:
            for k in range(batches):
                part = events[k::batches]
                if part:
                    heapq.heappush(self.due, (start + k * LABEL_EVERY_S, id(part), part))

    def _run(self) -> None:
        while not self.stopping.wait(1.0):
            with self.lock:
                ready = []
                while self.due and self.due[0][0] <= time.time():
                    ready.append(heapq.heappop(self.due)[2])
            for events in ready:
                self._post(events)

    def _post(self, events: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(events).encode(), headers={"content-type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            self.failed += 1
            return
        self.post_ms.append((time.perf_counter() - started) * 1000)
        self.posts += 1
        self.sent += len(events)
        self.written += int(body.get("written", 0))
        self.unknown += len(body.get("unknown", []))

    def stop(self) -> dict[str, Any]:
        self.stopping.set()
        self.thread.join(180)
        ms = sorted(self.post_ms)
        return {
            "sent": self.sent,
            "posts": self.posts,
            "written": self.written,
            "unknown": self.unknown,
            "failed_posts": self.failed,
            "not_sent": sum(len(b[2]) for b in self.due),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
            "post_ms": [round(m, 1) for m in self.post_ms],
        }


class Monitor:
    """`fraudops monitor run --no-retrain` in the background (one at a time), timed."""

    def __init__(self, env: dict[str, str], fraudops: Path) -> None:
        self.env, self.fraudops = env, fraudops
        self.runs: list[dict[str, Any]] = []
        self.thread: threading.Thread | None = None

    def start(self, minute: int) -> None:
        if self.thread is not None and self.thread.is_alive():
            self.runs.append({"minute": minute, "seconds": 0.0, "rc": "skipped: one running"})
            return
        self.thread = threading.Thread(target=self._run, args=(minute,), daemon=True)
        self.thread.start()

    def _run(self, minute: int) -> None:
        started = time.perf_counter()
        done = subprocess.run(
            [str(self.fraudops), "monitor", "run", "--no-retrain", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        run: dict[str, Any] = {
            "minute": minute,
            "seconds": round(time.perf_counter() - started, 1),
            "rc": done.returncode,
        }
        if done.returncode != 0:
            run["stderr"] = done.stderr[-2000:]
        self.runs.append(run)

    def wait(self) -> list[dict[str, Any]]:
        if self.thread is not None:
            self.thread.join(600)
        return self.runs


# ---- checks and projection -----------------------------------------------------------------


def _flat_measures(s: dict[str, Any]) -> dict[str, float | None]:
    tables = s["tables"]

    def meta_kb(name: str) -> float | None:
        return tables[name]["metadata_json_bytes"] / 1e3 if name in tables else None

    return {
        "commit p50 ms": s["commit_ms"]["p50"],
        "commit p99 ms": s["commit_ms"]["p99"],
        "metadata file KB predictions": meta_kb("predictions"),
        "metadata file KB pred_stats": meta_kb("prediction_stats"),
        "metadata file KB all tables": sum(t["metadata_json_bytes"] for t in tables.values()) / 1e3,
        "metadata files": s["metadata_files"],
        "data files": s["data_files"],
        "server RSS MB": s["rss_mb"]["server"],
        "writer RSS MB": s["rss_mb"]["writer"],
        # The online feature state (a spec with derived features): /metrics' and Redis' figures.
        **s.get("online", {}),
    }


def base_index(samples: list[dict[str, Any]]) -> int:
    """The sample the last is compared with: the second minute's (the first is the warm-up),
    the first's in a two-minute run."""
    return 1 if len(samples) >= 3 else 0


def check_flatness(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each measure of the last sample against the base sample's: PASS within FLAT_FACTOR, n/a
    when not measured; and the rows must have grown."""
    second, last = samples[base_index(samples)], samples[-1]
    a, b = _flat_measures(second), _flat_measures(last)
    checks: list[dict[str, Any]] = []
    for measure in a:
        x, y = a[measure], b[measure]
        if x is None or y is None:
            result = "n/a"
        else:
            result = "PASS" if y <= FLAT_FACTOR * x or (x == 0 and y == 0) else "FAIL"
        checks.append({"measure": measure, "second": x, "last": y, "result": result})
    grew = last["rows"] > second["rows"] or len(samples) < 2
    checks.append(
        {
            "measure": "rows grow",
            "second": second["rows"],
            "last": last["rows"],
            "result": "PASS" if grew else "FAIL",
        }
    )
    for check in checks:
        check["minutes"] = [second["minute"], last["minute"]]
    return checks


def _rate(base: dict[str, Any], last: dict[str, Any], measure: str, commits: float) -> float:
    return max(0.0, (last[measure] - base[measure]) / commits) if commits > 0 else 0.0


def project(
    samples: list[dict[str, Any]],
    *,
    default_interval_s: float,
    rate: float,
    days: int = 30,
    free_bytes: float | None = None,
) -> dict[str, Any]:
    """Every table's files and bytes after ``days`` at the default commit interval, from the
    growth per commit measured between the second sample and the last (linear).

    The log's tables (LOG_TABLES) commit once per log commit: ``days`` of
    ``default_interval_s`` commits. The others commit at the soak's own pace (labels, monitoring:
    not compressed), scaled by wall time. The predictions' data grows with the rows, not the
    commits: bytes a row times ``rate`` rows a second. When the metadata is not flat and its
    growth per commit itself grew (every old metadata file kept, each larger than the last), the
    figure at that acceleration is given too. ``free_bytes``: the hours until that much is used.
    """
    base, last = samples[base_index(samples)], samples[-1]
    seconds = days * DAY_S
    log_commits = seconds / default_interval_s
    rows = rate * seconds
    pred_commits = _commits(base, last, "predictions")
    wall = max(1e-9, last["elapsed_s"] - base["elapsed_s"])
    totals = dict.fromkeys(TREE_MEASURES, 0.0)
    per_table: dict[str, dict[str, float]] = {}
    for name, now in last["tables"].items():
        was = base["tables"].get(name, now)
        done = now["commits"] - was["commits"]
        if name in LOG_TABLES:
            ahead = log_commits * done / pred_commits if pred_commits > 0 else 0.0
        else:
            ahead = done / wall * seconds
        table = {
            m: now[m] + _rate(was, now, m, done) * ahead
            for m in (*TREE_MEASURES, "metadata_json_bytes")
        }
        table["commits"] = now["commits"] + ahead
        if name == "predictions":
            grown = last["rows"] - base["rows"]
            per_row = (now["data_bytes"] - was["data_bytes"]) / grown if grown > 0 else 0.0
            table["data_bytes"] = per_row * rows
            table["bytes_per_row"] = per_row
        per_table[name] = table
        for m in TREE_MEASURES:
            totals[m] += table[m]
    speed = _acceleration(samples)
    accelerating = None
    metadata_per_commit = (totals["metadata_bytes"] - last["metadata_bytes"]) / log_commits
    slope = 0.0
    if speed is not None:
        rate_now, slope = speed
        metadata_per_commit = rate_now
        accelerating = last["metadata_bytes"] + rate_now * log_commits + slope * log_commits**2 / 2
    data_per_commit = (totals["data_bytes"] - last["data_bytes"]) / log_commits
    pred = per_table.get("predictions", {})
    fill = None
    if free_bytes is not None:
        commits = _commits_to_fill(free_bytes, metadata_per_commit + data_per_commit, slope)
        fill = None if commits is None else commits * default_interval_s / 3600
    return {
        "days": days,
        "default_interval_s": default_interval_s,
        "log_commits": log_commits,
        "rows": rows,
        **totals,
        "predictions_metadata_json_bytes": pred.get("metadata_json_bytes", 0.0),
        "predictions_bytes_per_row": pred.get("bytes_per_row", 0.0),
        "metadata_bytes_accelerating": accelerating,
        "metadata_growth_per_commit2": slope,
        "free_bytes": free_bytes,
        "hours_to_fill_free_disk": fill,
        "tables": per_table,
    }


def _commits(base: dict[str, Any], last: dict[str, Any], name: str) -> int:
    if name not in last["tables"] or name not in base["tables"]:
        return 0
    return int(last["tables"][name]["commits"] - base["tables"][name]["commits"])


def _acceleration(samples: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The metadata's growth per log commit at the end of the run and how much it grows per
    commit, from the first half of the run (second sample to the middle one) to the second; None
    when the metadata is flat (within FLAT_FACTOR) or its growth per commit did not grow."""
    if len(samples) < 4:
        return None
    base, mid, last = samples[1], samples[(len(samples) + 1) // 2], samples[-1]
    c1, c2 = _commits(base, mid, "predictions"), _commits(mid, last, "predictions")
    if c1 <= 0 or c2 <= 0 or last["metadata_bytes"] <= FLAT_FACTOR * base["metadata_bytes"]:
        return None
    r1 = (mid["metadata_bytes"] - base["metadata_bytes"]) / c1
    r2 = (last["metadata_bytes"] - mid["metadata_bytes"]) / c2
    if r1 <= 0 or r2 <= 1.1 * r1:
        return None
    slope = (r2 - r1) / ((c1 + c2) / 2)  # between the halves' midpoints
    return r2 + slope * c2 / 2, slope


def _commits_to_fill(free: float, per_commit: float, slope: float) -> float | None:
    """Commits until ``free`` bytes are used at ``per_commit`` bytes a commit growing by
    ``slope`` a commit (None if never)."""
    if slope > 0:
        return (-per_commit + math.sqrt(per_commit**2 + 2 * slope * free)) / slope
    return free / per_commit if per_commit > 0 else None
