"""bench/score: `fraudops score` side by side with a plain MLflow pyfunc load + predict + write.

Generates the rows and, without ``--home``, trains a default champion on 284,080 of them in a
fresh home (neither is timed). Then, per file size, it runs each side as a fresh process on the
same file and the same champion, alternating, ``--repeat`` times, and prints the median wall
time of each (start-up included: interpreter, imports, registry lookup, model load), the ratio,
our rows/s end to end, and each side's median CPU time (user + system: what other jobs on the
machine do not inflate). Our first run on each file is timed apart (``first run``): in a fresh
home it compiles the champion's forest (``fraudops.models.compiled``), which later runs load
from the home's cache:

- ours: ``fraudops score --input F --output out.parquet`` (read, validate, score, write ids +
  probability, prediction, risk tier, model name and version);
- MLflow: ``mlflow.pyfunc.load_model("models:/<name>@champion")``, ``pandas.read_parquet`` of the
  spec's features, ``predict``, and a Parquet write of the ids and probabilities.

Usage:

    .venv/bin/python bench/score.py [--rows 284080 1000000] [--home DIR] [--repeat 3]
                                    [--format parquet|csv] [--json] [--predictors]

The figures go to bench/RESULTS.md by hand, with the machine, the date and its load (uptime).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PLAIN_MLFLOW = """
import sys
import mlflow.pyfunc
import pandas as pd

source, target, model_uri, columns, ids = sys.argv[1:6]
model = mlflow.pyfunc.load_model(model_uri)
read = pd.read_csv if source.endswith(".csv") else pd.read_parquet
frame = read(source, columns=[c for c in (ids + "," + columns).split(",") if c])
probabilities = model.predict(frame[columns.split(",")])
out = frame[[c for c in ids.split(",") if c]].copy()
out["probability"] = probabilities
out.to_parquet(target, index=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[284_080, 1_000_000])
    parser.add_argument(
        "--home", type=Path, default=None, help="home with a champion (default: train one)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per side and size")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--predictors",
        action="store_true",
        help="also time the predictors alone (XGBoost's C predictor, the compiled forest) on "
        "the largest file's matrix, in this process",
    )
    args = parser.parse_args()

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MPLBACKEND", "Agg")
    from fraudops.batch.reader import id_columns
    from fraudops.config import load_settings
    from fraudops.data.synthetic import generate_transactions

    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fraudops-bench-score-"))
    home = args.home or work / "home"
    settings = load_settings(home=home)
    spec = settings.feature_spec()
    training_seconds = None
    if args.home is None:
        from fraudops.lake import Lake, load_file
        from fraudops.runtime import Runtime
        from fraudops.training.pipeline import run_training

        t0 = time.perf_counter()
        train_file = work / "train.parquet"
        generate_transactions(
            settings.data, spec, rows=284_080, seed=settings.data.seed
        ).to_parquet(train_file)
        with Lake.open(settings, spec.name) as lake:
            lake.init()
            load_file(lake, train_file)
        with Runtime(settings, spec.name) as runtime:
            run_training(runtime.training_context(), raise_on_gate=False)
        training_seconds = round(time.perf_counter() - t0, 1)

    env = {
        **os.environ,
        "FRAUDOPS_HOME": str(home),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.tracking_uri,
    }
    model_uri = f"models:/{settings.registered_model_name(spec.name)}@champion"
    fraudops = [str(Path(sys.executable).with_name("fraudops"))]
    if not Path(fraudops[0]).exists():
        fraudops = [sys.executable, "-m", "fraudops.cli"]
    results = []
    for rows in args.rows:
        source = work / f"transactions-{rows}.{args.format}"
        frame = generate_transactions(settings.data, spec, rows=rows, seed=settings.data.seed + 1)
        frame = frame.drop(columns=[spec.label_column])
        if args.format == "csv":
            frame.to_csv(source, index=False)
        else:
            frame.to_parquet(source)
        del frame
        ours_cmd = [*fraudops, "score", "-i", str(source), "-o", str(work / "ours.parquet")]
        plain_cmd = [
            sys.executable,
            "-c",
            PLAIN_MLFLOW,
            str(source),
            str(work / "mlflow.parquet"),
            model_uri,
            ",".join(spec.feature_names),
            ",".join(id_columns(spec)),
        ]
        # The first run of a version on a machine compiles its forest (fraudops.models.compiled)
        # unless the home's cache has it already: timed on its own, then the warm runs.
        started = time.perf_counter()
        cold_report = json.loads(_run([*ours_cmd, "--json"], env))
        cold_s = time.perf_counter() - started
        ours, plain = [], []
        ours_cpu: list[float] = []
        plain_cpu: list[float] = []
        for _ in range(args.repeat):
            ours.append(_timed([*ours_cmd, "--json"], env, ours_cpu))
            plain.append(_timed(plain_cmd, env, plain_cpu))
        report = json.loads(_run([*ours_cmd, "--json"], env))
        ours_s, plain_s = statistics.median(ours), statistics.median(plain)
        results.append(
            {
                "rows": rows,
                "fraudops_score_s": round(ours_s, 2),
                "mlflow_pyfunc_s": round(plain_s, 2),
                "ratio": round(plain_s / ours_s, 2),
                "fraudops_rows_per_s": round(rows / ours_s),
                "mlflow_rows_per_s": round(rows / plain_s),
                "fraudops_cpu_s": round(statistics.median(ours_cpu), 2),
                "mlflow_cpu_s": round(statistics.median(plain_cpu), 2),
                "fraudops_runs_s": [round(s, 2) for s in ours],
                "mlflow_runs_s": [round(s, 2) for s in plain],
                "model": f"{report['model_name']} v{report['model_version']}",
                "fraudops_steps_s": {k: round(v, 2) for k, v in report["timings"].items()},
                "predictor": report.get("predictor", "model"),
                "fraudops_first_run_s": round(cold_s, 2),
                "first_run_model_load_s": round(cold_report["timings"]["Loading model"], 2),
            }
        )
    predictors = _predictors(settings, source, args.repeat) if args.predictors else None
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "home": str(home),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "format": args.format,
        "repeat": args.repeat,
        "results": results,
        "training_seconds_untimed": training_seconds,
        "predictors_alone": predictors,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        if key != "results":
            print(f"{key:>24}: {value}")
    for r in results:
        print(
            f"{r['rows']:>9,} rows: fraudops score {r['fraudops_score_s']:.2f} s "
            f"({r['fraudops_rows_per_s']:,} rows/s) · mlflow pyfunc {r['mlflow_pyfunc_s']:.2f} s "
            f"({r['mlflow_rows_per_s']:,} rows/s) · ratio {r['ratio']:.2f}× "
            f"· runs {r['fraudops_runs_s']} vs {r['mlflow_runs_s']} · steps {r['fraudops_steps_s']}"
            f" · CPU {r['fraudops_cpu_s']:.2f} s vs {r['mlflow_cpu_s']:.2f} s"
            f" · predictor {r['predictor']} · first run {r['fraudops_first_run_s']:.2f} s "
            f"(model load {r['first_run_model_load_s']:.2f} s)"
        )


def _predictors(settings: Any, source: Path, repeat: int) -> dict[str, Any]:
    """Each predictor alone on the file's float32 feature matrix, all cores, medians."""
    import numpy as np
    import pyarrow.parquet as pq

    from fraudops.models.compiled import compiled_predictor
    from fraudops.models.portable import XGBoostModel
    from fraudops.registry import load_model

    loaded = load_model(settings)
    model = loaded.model
    assert isinstance(model, XGBoostModel)
    forest = compiled_predictor(model, settings.home_dir / "cache", loaded.name, loaded.version)
    assert forest is not None, "no compiled forest (see the log line above)"
    table = pq.read_table(source, columns=model.manifest.feature_names)
    X = np.empty((table.num_rows, table.num_columns), dtype=np.float32, order="F")
    for j, name in enumerate(model.manifest.feature_names):
        X[:, j] = table.column(name).to_numpy()
    out: dict[str, Any] = {"rows": len(X), "features": X.shape[1], "trees": forest.num_trees}
    results = {}
    for name, predict in (("xgboost", model.predict_proba), ("compiled", forest.predict)):
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            results[name] = predict(X)
            runs.append(time.perf_counter() - started)
        out[f"{name}_s"] = round(statistics.median(runs), 3)
    out["max_abs_diff"] = float(np.max(np.abs(results["compiled"] - results["xgboost"])))
    out["speedup"] = round(out["xgboost_s"] / out["compiled_s"], 2)
    return out


def _timed(command: list[str], env: dict[str, str], cpu: list[float]) -> float:
    """Wall seconds of one run; its CPU seconds (user + system, all threads) go to ``cpu``: the
    figure that other jobs on the machine do not inflate."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    _run(command, env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]}... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


if __name__ == "__main__":
    main()
