"""bench/pipeline: the whole training pipeline on the default 284,080 synthetic rows.

Runs generate → lake init → load → train → gate → register in one process on a fresh home and
prints the time of each step and the holdout metrics. Usage:

    .venv/bin/python bench/pipeline.py [--rows N] [--home DIR] [--trainer xgboost|logreg] [--json]

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
    parser.add_argument("--rows", type=int, default=None, help="rows (default: data.rows)")
    parser.add_argument("--home", type=Path, default=None, help="home folder (default: a temp dir)")
    parser.add_argument("--trainer", default=None, choices=["xgboost", "logreg"])
    parser.add_argument(
        "--spec-file",
        type=Path,
        default=None,
        help="load this file with the ulb spec instead of generating data",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.perf_counter()
    from fraudops.config import load_settings
    from fraudops.progress import Reporter

    home = args.home or Path(tempfile.mkdtemp(prefix="fraudops-bench-"))
    overrides = {"training": {"trainer": args.trainer}} if args.trainer else {}
    settings = load_settings(home=home, **overrides)
    import_seconds = time.perf_counter() - started

    reporter = Reporter()
    t0 = time.perf_counter()
    if args.spec_file is None:
        from fraudops.runtime import Runtime
        from fraudops.training.first_champion import DEMO_SPEC, prepare_champion

        with Runtime(settings, DEMO_SPEC) as runtime:
            result = prepare_champion(runtime.training_context(), rows=args.rows, progress=reporter)
        training = result.training.to_dict()
        rows = result.rows
    else:
        from fraudops.lake import Lake, load_file
        from fraudops.runtime import Runtime
        from fraudops.training.pipeline import run_training

        lake = Lake.open(settings, "ulb")
        with reporter.step("Creating lake tables"):
            lake.init()
        report = load_file(lake, args.spec_file, mode="replace", progress=reporter)
        rows = report.rows
        with Runtime(settings, "ulb") as runtime:
            training = run_training(
                runtime.training_context(),
                trainer=args.trainer,
                progress=reporter,
                raise_on_gate=False,
            ).to_dict()
    total = time.perf_counter() - t0

    metrics = training["metrics"]
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "import_seconds": round(import_seconds, 2),
        "total_seconds": round(total, 2),
        "steps": {k: round(v, 2) for k, v in reporter.timings.items()},
        "roc_auc": round(metrics["roc_auc"], 4),
        "pr_auc": round(metrics["pr_auc"], 4),
        "recall": round(metrics["recall"], 4),
        "precision": round(metrics["precision"], 4),
        "decision": training["decision"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['machine']}, {summary['date']}")
    print(f"rows: {rows:,}   total: {total:.1f} s (+ {import_seconds:.1f} s imports)")
    for step, seconds in summary["steps"].items():
        print(f"  {step:<40} {seconds:7.2f} s")
    print(
        f"holdout ROC-AUC {summary['roc_auc']}  PR-AUC {summary['pr_auc']}  "
        f"recall {summary['recall']}  precision {summary['precision']}  -> {summary['decision']}"
    )


if __name__ == "__main__":
    main()
