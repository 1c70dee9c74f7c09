"""bench/score: batch scoring (`fraudops score`) of 284,080 synthetic rows with the champion.

Generates the rows and, without ``--home``, trains a default champion on them in a fresh home
(neither is timed), then scores the file and prints rows/s: end to end (read, validate, score,
write, model load included) and without the model load. Usage:

    .venv/bin/python bench/score.py [--rows N] [--home DIR] [--format parquet|csv] [--explain]
                                    [--json]

The figures go to bench/RESULTS.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=284_080)
    parser.add_argument(
        "--home", type=Path, default=None, help="home with a champion (default: train one)"
    )
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--explain", action="store_true", help="add reason codes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MPLBACKEND", "Agg")
    from fraudops.batch.score import score_file
    from fraudops.config import load_settings
    from fraudops.data.synthetic import generate_transactions

    work = Path(tempfile.mkdtemp(prefix="fraudops-bench-score-"))
    home = args.home or work / "home"
    settings = load_settings(home=home)
    spec = settings.feature_spec()
    frame = generate_transactions(settings.data, spec, rows=args.rows, seed=settings.data.seed)
    source = work / f"transactions.{args.format}"
    if args.format == "csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source)
    training_seconds = None
    if args.home is None:
        from fraudops.lake import Lake
        from fraudops.orchestration.training_pipeline import run_training

        t0 = time.perf_counter()
        with Lake.open(settings, spec.name) as lake:
            lake.init()
            lake.load_file(source)
        run_training(settings, raise_on_gate=False)
        training_seconds = round(time.perf_counter() - t0, 1)

    report = score_file(settings, source, work / f"scored.{args.format}", explain=args.explain)
    model_load = report.timings.get("Loading model", 0.0)
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "rows": report.rows,
        "format": args.format,
        "explain": args.explain,
        "model": f"{report.model_name} v{report.model_version}",
        "seconds": round(report.seconds, 2),
        "rows_per_s": round(report.rows_per_s),
        "rows_per_s_without_model_load": round(report.rows / (report.seconds - model_load)),
        "steps": {k: round(v, 2) for k, v in report.timings.items()},
        "training_seconds_untimed": training_seconds,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:>32}: {value}")


if __name__ == "__main__":
    main()
