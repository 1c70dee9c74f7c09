"""bench/scale: training and batch scoring at 1M, 5M and 20M rows, local engine vs Dask.

Per size it builds a home (not timed): ``--rows`` synthetic transactions generated a million at a
time (seeded per chunk), appended to the lake's ``transactions`` (one commit, one data file per
chunk) and written as a Parquet folder (one file per chunk) and one Parquet file (one row group
per chunk), the same rows. Then each job runs as a fresh ``fraudops`` process while a sampler
reads every 0.2 s the resident memory of that process and of each of its descendants (Dask's
nanny and worker processes):

- ``train``: ``fraudops train --engine E --json`` on the lake (XGBoost, ``--trees`` rounds at
  most, early stopping as configured); the local path trains the first ``train`` of a size and the
  Dask path then trains a second version on the same rows;
- ``score``: ``fraudops score --engine E`` with the champion: local reads the one file, Dask the
  folder (a partition per file); both write Parquet.

Dask runs a ``LocalCluster`` of ``--workers`` workers × 1 thread with ``--worker-memory`` each.
Printed per job (stderr): wall seconds, the driver's peak RSS, the largest child process's peak
RSS (on Dask: a worker; locally: the compiler building the forest) and, for training, the holdout
ROC-AUC and PR-AUC; with ``--json`` the whole table on stdout. Needs free disk: ~0.11 GB per
million rows.

    .venv/bin/python bench/scale.py [--rows 1000000 5000000 20000000] [--engines local dask]
                                    [--jobs train score] [--workers 2] [--worker-memory 4GiB]
                                    [--trees 100] [--root DIR] [--json]

The figures go to bench/RESULTS.md by hand, with the machine, the date and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHUNK = 1_000_000


@dataclass
class Peak:
    """Peak resident memory of a process tree, sampled."""

    driver_mb: float = 0.0
    workers_mb: dict[int, float] = field(default_factory=dict)

    @property
    def worst_worker_mb(self) -> float:
        return max(self.workers_mb.values(), default=0.0)


def sample(proc: psutil.Process, peak: Peak, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            peak.driver_mb = max(peak.driver_mb, proc.memory_info().rss / 2**20)
            for child in proc.children(recursive=True):
                try:
                    rss = child.memory_info().rss / 2**20
                    # The Dask worker processes (the nannies are small and count too).
                    peak.workers_mb[child.pid] = max(peak.workers_mb.get(child.pid, 0.0), rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            return
        stop.wait(0.2)


@dataclass
class JobResult:
    rows: int
    engine: str
    job: str
    seconds: float
    driver_peak_mb: float
    worker_peak_mb: float
    worker_limit: str
    ok: bool
    detail: dict[str, Any]


def run_job(argv: list[str], env: dict[str, str]) -> tuple[float, Peak, int, str]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = Peak()
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(psutil.Process(proc.pid), peak, stop))
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(err.decode()[-3000:])
    return seconds, peak, proc.returncode, out.decode()


def build_home(root: Path, rows: int, trees: int, workers: int, memory: str) -> Path:
    home = root / f"scale-{rows}"
    done = home / ".built"
    config = home / "fraudops.yaml"
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(
        json.dumps(
            {
                "home": str(home),
                "training": {"xgboost": {"n_estimators": trees}},
                "compute": {
                    "workers": workers,
                    "threads_per_worker": 1,
                    "memory_limit": memory,
                    "partition_rows": CHUNK,
                },
            }
        )
    )
    if done.exists():
        return home
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraudops.config import load_settings
    from fraudops.data.synthetic import generate_transactions
    from fraudops.lake import Lake

    settings = load_settings(home=home)
    folder = home / "input"
    folder.mkdir(exist_ok=True)
    writer: pq.ParquetWriter | None = None
    with Lake.open(settings) as lake:
        lake.init()
        for i in range(0, rows, CHUNK):
            n = min(CHUNK, rows - i)
            frame = generate_transactions(
                settings.data,
                lake.spec,
                rows=n,
                seed=1000 + i // CHUNK,
                id_prefix=f"t{i // CHUNK}-",
            )
            lake.append("transactions", frame)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(table, folder / f"part-{i // CHUNK:05d}.parquet")
            if writer is None:
                writer = pq.ParquetWriter(home / "input.parquet", table.schema)
            writer.write_table(table, row_group_size=CHUNK)
            print(f"  {min(i + n, rows):,} / {rows:,} rows", file=sys.stderr, flush=True)
    if writer is not None:
        writer.close()
    done.touch()
    return home


def _detail(out: dict[str, Any]) -> dict[str, Any]:
    """What a job's --json says that the table needs: the holdout figures, the throughput."""
    metrics = out.get("metrics") or {}
    picked = {k: round(float(metrics[k]), 4) for k in ("roc_auc", "pr_auc") if k in metrics}
    for key in ("version", "decision", "rows_per_s", "timings"):
        if key in out:
            picked[key] = out[key]
    return picked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--engines", nargs="+", default=["local", "dask"])
    parser.add_argument("--jobs", nargs="+", default=["train", "score"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="4GiB")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--root", type=Path, default=None, help="where the homes go (kept)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = args.root or Path(tempfile.gettempdir()) / "fraudops-bench-scale"
    results: list[JobResult] = []
    for rows in args.rows:
        print(f"{rows:,} rows: building the home", file=sys.stderr, flush=True)
        home = build_home(root, rows, args.trees, args.workers, args.worker_memory)
        env = {**os.environ, "FRAUDOPS_CONFIG": str(home / "fraudops.yaml")}
        for job in args.jobs:
            for engine in args.engines:
                fraudops = [str(BIN / "fraudops")]
                if job == "train":
                    argv = [*fraudops, "train", "--engine", engine, "--json"]
                else:
                    source = home / ("input" if engine == "dask" else "input.parquet")
                    target = home / f"scored-{engine}"
                    target_file = target if engine == "dask" else target.with_suffix(".parquet")
                    argv = [*fraudops, "score", "--engine", engine, "--input", str(source)]
                    argv += ["--output", str(target_file), "--json"]
                seconds, peak, code, out = run_job(argv, env)
                try:
                    detail = json.loads(out) if out.strip() else {}
                except json.JSONDecodeError:
                    detail = {"stdout": out[-500:]}
                result = JobResult(
                    rows,
                    engine,
                    job,
                    round(seconds, 1),
                    round(peak.driver_mb),
                    round(peak.worst_worker_mb),
                    args.worker_memory if engine == "dask" else "",
                    code in (0, 3, 4),  # a gate verdict is an answer, not a failure
                    _detail(detail),
                )
                results.append(result)
                auc = result.detail.get("roc_auc")
                print(
                    f"{rows:>11,} {engine:5} {job:5} {result.seconds:8.1f} s  driver "
                    f"{result.driver_peak_mb:>6,} MB  largest child {result.worker_peak_mb:>6,} MB"
                    + (f"  ROC-AUC {auc}  PR-AUC {result.detail.get('pr_auc')}" if auc else "")
                    + ("" if result.ok else f"  FAILED (exit {code})"),
                    file=sys.stderr,
                    flush=True,
                )
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": os.getloadavg(),
        "workers": args.workers,
        "worker_memory": args.worker_memory,
        "trees": args.trees,
        "results": [asdict(r) for r in results],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
