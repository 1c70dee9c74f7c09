"""bench/drift: our drift check vs Evidently 0.7's DataDriftPreset, same data, same process.

284,080 reference rows × 30 features (seed 000's training set size) against 100,000 current rows,
both from ``fraudops.data.synthetic.generate_transactions`` (same customers, different seed; the
current rows are a random 100,000 of a fresh 284,080-row sample, i.e. the training distribution).
Ours: ``compute_drift`` against the stored reference profile (built once, as at training time; not
timed), every feature and every statistic (PSI, KS + p-value, chi-square, normalised Wasserstein,
Jensen–Shannon, severity, aggregates). Evidently: ``Report([DataDriftPreset()]).run(current,
reference)`` on the same frames with the same numeric/categorical column types. Median of
``--runs`` runs each (one warm-up each first).

    .venv/bin/python bench/drift.py [--reference-rows 284080] [--current-rows 100000] [--runs 7]
                                    [--evidently-runs 3] [--pattern run3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime

import numpy as np

os.environ.setdefault("DO_NOT_TRACK", "1")  # no Evidently usage telemetry from a benchmark

from fraudops.config import load_settings
from fraudops.data.drift import apply_drift, drift_rules
from fraudops.data.synthetic import generate_transactions
from fraudops.models.profile import build_profile
from fraudops.monitoring.drift import compute_drift
from fraudops.spec import TRANSACTIONS30, FeatureKind
from fraudops.training.features import feature_matrix


def _median_time(fn: object, runs: int) -> tuple[float, list[float]]:
    assert callable(fn)
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-rows", type=int, default=284_080)
    parser.add_argument("--current-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--evidently-runs", type=int, default=3)
    parser.add_argument("--pattern", help="drift the current rows by a seed pattern (run1..run6)")
    args = parser.parse_args()

    settings = load_settings()
    spec = TRANSACTIONS30
    names = spec.feature_names
    reference = generate_transactions(settings.data, spec, rows=args.reference_rows, seed=42)
    # The current window: rows of a fresh sample drawn at the training set's size. The generator's
    # velocity features depend on rows per month, so a smaller sample would itself look drifted.
    fresh = generate_transactions(
        settings.data, spec, rows=args.reference_rows, seed=7, customer_seed=42
    )
    rows = np.random.default_rng(7).choice(len(fresh), args.current_rows, replace=False)
    current = fresh.iloc[np.sort(rows)].reset_index(drop=True)
    if args.pattern:
        rules = drift_rules(settings.data, args.pattern)
        current = apply_drift(current, rules, spec, np.random.default_rng(8), pattern=args.pattern)
    reference, current = reference[names], current[names]

    start = time.perf_counter()
    profile = build_profile(
        feature_matrix(reference, names),
        spec,
        scores=np.random.default_rng(0).beta(1, 30, 50_000),
        baseline_metrics={},
        threshold=0.5,
        bins=settings.monitoring.psi_bins,
    )
    profile_s = time.perf_counter() - start

    ours_s, ours_all = _median_time(
        lambda: compute_drift(profile, current, settings.monitoring), args.runs
    )
    report = compute_drift(profile, current, settings.monitoring)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [f.name for f in spec.features if f.kind is FeatureKind.numeric]
    categorical = [f.name for f in spec.features if f.kind is not FeatureKind.numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def evidently_check() -> object:
        ref = Dataset.from_pandas(reference, data_definition=definition)
        cur = Dataset.from_pandas(current, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur, ref)

    theirs_s, theirs_all = _median_time(evidently_check, args.evidently_runs)
    snapshot = evidently_check()
    drifted_count, wasserstein_gap = None, 0.0
    for metric in snapshot.dict()["metrics"]:  # type: ignore[attr-defined]
        name, value = metric["metric_name"], metric["value"]
        if name.startswith("DriftedColumnsCount"):
            drifted_count = int(value["count"])
        elif "Wasserstein" in name:  # the same normed Wasserstein as ours: cross-check it
            ours = report.feature(metric["config"]["column"]).wasserstein
            assert ours is not None
            wasserstein_gap = max(wasserstein_gap, abs(ours - float(value)))

    print(f"bench/drift  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"data: {args.reference_rows:,} reference rows × {len(names)} features, "
        f"{args.current_rows:,} current rows (drift pattern: {args.pattern or 'none'})"
    )
    print(f"profile build (once, at training time): {profile_s:.3f} s")
    print(
        f"ours      compute_drift  median {ours_s * 1000:8.1f} ms   runs "
        + " ".join(f"{t * 1000:.0f}" for t in ours_all)
    )
    print(
        f"evidently DataDriftPreset median {theirs_s * 1000:8.1f} ms   runs "
        + " ".join(f"{t * 1000:.0f}" for t in theirs_all)
    )
    print(f"ratio: ours is {theirs_s / ours_s:.1f}× faster")
    print(
        f"ours: {report.drifted_count} features at p < 0.05 or PSI >= 0.2 "
        f"{report.drifted_features}, max severity {report.max_severity}, data drift "
        f"{report.data_drift_detected}; evidently drifted columns: {drifted_count}"
    )
    print(f"normed Wasserstein, ours vs Evidently's: max |difference| {wasserstein_gap:.2e}")


if __name__ == "__main__":
    main()
