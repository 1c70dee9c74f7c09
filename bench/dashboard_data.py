"""bench/dashboard_data: a year of traffic straight into a home's lake, then its aggregates.

``make_lake(home, rows, days, seed)`` fills a fresh home's lake (``lake init`` first) with
``rows`` predictions over ``days`` days ending at midnight UTC today, written as vectorised
Arrow batches straight into ``predictions`` (no server, no spool): a daily and weekly traffic
cycle, four model versions promoted in turn (one rollback) and recorded in ``model_events``,
fraud at ~0.6 % with scores that separate it less under the third version, risk tiers and
decisions as serving computes them, log-normal latencies and amounts (fraud larger). Labels for a
realistic share (90 % of frauds within 1-30 days, 12 % of legitimate ones within 1-45 days;
recent days are immature; 0.5 % of labels later flipped), ``label_ingests`` rows with unknown and
conflicting counts, ~50 weekly ``monitoring_runs`` with their ``feature_drift`` rows and a few
``alerts``. Feature columns are left null (no page reads them). Then it rebuilds the aggregates
and times the Inference and Labels page functions on the lake (cold: first call of a fresh
cache; warm: p95 of 20 calls), a refresh after one more commit of 50,000 predictions, and a
label ingestion's refresh of the days it touches.

    .venv/bin/python bench/dashboard_data.py [--home DIR] [--rows 10000000] [--days 365]
                                             [--seed 7] [--json]

The figures go to bench/RESULTS.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fraudops.config import Settings, load_settings
from fraudops.lake import Lake
from fraudops.lake.schemas import (
    ALERTS,
    FEATURE_DRIFT,
    LABEL_INGESTS,
    LABELS,
    MODEL_EVENTS,
    MONITORING_RUNS,
    PREDICTIONS,
)

CHUNK_ROWS = 500_000
FRAUD_RATE = 0.006
THRESHOLD = 0.5
# (first day as a share of the range, version, event): champion moves over the year.
MOVES = [(0.0, "1", "promoted"), (0.25, "2", "promoted"), (0.55, "3", "promoted")]
MOVES += [(0.57, "2", "rollback"), (0.78, "4", "promoted")]
SOURCES_FRAUD = (["chargeback", "investigation", "customer_report"], [0.55, 0.3, 0.15])
SOURCES_LEGIT = (["investigation", "customer_report", "merchant_report"], [0.6, 0.3, 0.1])
# Traffic by hour of day (UTC): night trough, day plateau, evening peak.
HOUR_WEIGHTS = np.array(
    [3, 2, 1.5, 1, 1, 1.5, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 10, 10, 9, 7, 5, 4]
)


@dataclass
class LakeFigures:
    home: str
    rows: int
    days: int
    labels: int = 0
    model_events: int = 0
    monitoring_runs: int = 0
    feature_drift: int = 0
    generate_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def _uuid7_ids(rng: np.random.Generator, times_us: np.ndarray) -> pa.Array:
    """UUIDv7 ids (32 hex digits) minted at ``times_us``, as the server mints them."""
    n = len(times_us)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    millis = (times_us // 1000).astype(np.uint64)
    shifts = np.arange(44, -1, -4, dtype=np.uint64)  # 12 hex digits of the 48-bit timestamp
    head = digits[((millis[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)]
    raw = digits[rng.integers(0, 16, size=(n, 20), dtype=np.uint8)]
    raw[:, 0] = ord("7")  # version
    raw[:, 4] = digits[8 + rng.integers(0, 4, size=n)]  # variant 10xx
    chars = np.ascontiguousarray(np.hstack([head, raw]))
    offsets = np.arange(0, (n + 1) * 32, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars.tobytes())
    )


def _hex_ids(rng: np.random.Generator, n: int, prefix: bytes = b"") -> pa.Array:
    """``n`` random 32-hex-digit ids (uuid4-like), built straight as an Arrow string array."""
    raw = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[raw]
    width = 32 + len(prefix)
    if prefix:
        head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (n, len(prefix)))
        digits = np.hstack([head, digits])
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(np.ascontiguousarray(digits).tobytes())
    )


def _champions(days: int) -> np.ndarray:
    """The champion version of each day of the range."""
    out = np.empty(days, dtype=object)
    for share, version, _ in MOVES:
        out[int(share * days) :] = version
    return out


def _chunk(
    rng: np.random.Generator,
    start: dt.datetime,
    day0: int,
    day1: int,
    n: int,
    champions: np.ndarray,
) -> tuple[pa.Table, np.ndarray]:
    """``n`` predictions on days [day0, day1) of the range, and whether each is a fraud."""
    weekday = np.array([(start + dt.timedelta(days=d)).weekday() for d in range(day0, day1)])
    day_weights = np.where(weekday >= 5, 0.8, 1.0)
    day = rng.choice(np.arange(day0, day1), size=n, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, size=n)
    order = np.argsort(seconds, kind="stable")
    day, seconds = day[order], seconds[order]
    start_us = int(start.timestamp() * 1_000_000)
    times = pa.array(start_us + seconds * 1_000_000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    version = champions[day]
    fraud = rng.random(n) < FRAUD_RATE
    weak = version == "3"  # the version that was rolled back separates fraud less
    probability = np.where(
        fraud,
        np.where(weak, rng.beta(2.0, 3.0, n), rng.beta(5.0, 1.6, n)),
        rng.beta(0.6, 28.0, n),
    )
    tiers = np.array(["low", "medium", "high", "critical"])[
        np.searchsorted([0.3, 0.7, 0.9], probability, side="right")
    ]
    latency = rng.lognormal(np.log(2.4), 0.45, n) + np.where(rng.random(n) < 0.01, 20.0, 0.0)
    amount = np.round(rng.lognormal(np.log(45.0), 1.0, n) * np.where(fraud, 3.0, 1.0), 2)
    table = pa.table(
        {
            "inference_id": _uuid7_ids(rng, start_us + seconds * 1_000_000),
            "request_time": times,
            "model_name": pa.array(np.full(n, "fraudops-transactions30")),
            "model_version": pa.array(version.astype(str)),
            "transaction_id": _hex_ids(rng, n, b"tx-"),
            "amount": amount,
            "probability": probability,
            "prediction": (probability >= THRESHOLD).astype(np.int32),
            "threshold": np.full(n, THRESHOLD),
            "risk_tier": pa.array(tiers),
            "latency_ms": np.round(latency, 3),
            "model_latency_ms": np.round(latency * 0.35, 3),
        }
    )
    return table, fraud


def _labels(
    rng: np.random.Generator, table: pa.Table, fraud: np.ndarray, end: dt.datetime, seq: int
) -> pa.Table:
    """Label events of one chunk: the confirmed share, as of ``end`` (later ones are immature)."""
    n = table.num_rows
    chosen = np.where(fraud, rng.random(n) < 0.9, rng.random(n) < 0.12)
    delay_days = np.where(fraud, rng.uniform(1, 30, n), rng.uniform(1, 45, n))
    request_us = table["request_time"].cast(pa.int64()).to_numpy()
    confirmed_us = request_us + (delay_days * 86_400e6).astype(np.int64)
    keep = chosen & (confirmed_us <= int(end.timestamp() * 1e6))
    index = np.flatnonzero(keep)
    # A few labels flip later: a second event with the other label, confirmed a week after.
    flips = index[rng.random(len(index)) < 0.005]
    rows = np.concatenate([index, flips])
    label = np.concatenate([fraud[index], ~fraud[flips]]).astype(np.int32)
    confirmed = np.concatenate([confirmed_us[index], confirmed_us[flips] + 7 * 86_400_000_000])
    fraud_src = rng.choice(SOURCES_FRAUD[0], size=len(rows), p=SOURCES_FRAUD[1])
    legit_src = rng.choice(SOURCES_LEGIT[0], size=len(rows), p=SOURCES_LEGIT[1])
    times = pa.array(confirmed, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    ids = pa.array([f"bench-{seq:04d}-{i:08d}" for i in range(len(rows))])
    return pa.table(
        {
            "event_id": ids,
            "inference_id": table["inference_id"].take(pa.array(rows)),
            "transaction_id": table["transaction_id"].take(pa.array(rows)),
            "label": label,
            "confirmed_at": times,
            "source": pa.array(np.where(label == 1, fraud_src, legit_src)),
            "ingested_at": times,
        }
    )


def _small_tables(
    lake: Lake, rng: np.random.Generator, start: dt.datetime, days: int
) -> dict[str, int]:
    spec = lake.spec
    model = f"fraudops-{spec.name}"
    events, champion = [], None
    for share, version, kind in MOVES:
        at = start + dt.timedelta(days=int(share * days), hours=2)
        if kind == "promoted":
            events.append(_event(spec.name, model, version, "registered", None, None, at))
        events.append(
            _event(spec.name, model, version, kind, champion, version, at + dt.timedelta(minutes=5))
        )
        champion = version
    lake.append(MODEL_EVENTS, events)
    runs, drift, alerts = [], [], []
    features = spec.feature_names
    for week in range(days // 7):
        at = start + dt.timedelta(days=7 * (week + 1), hours=2)
        run_id = uuid.uuid4().hex
        shift = 0.05 + (0.25 if 0.3 < week / (days / 7) < 0.6 else 0.0)
        psi = np.abs(rng.normal(shift, 0.06, len(features)))
        drifted = psi > 0.2
        share = float(drifted.mean())
        runs.append(
            {
                "run_id": run_id,
                "started_at": at,
                "finished_at": at + dt.timedelta(seconds=40),
                "as_of": at,
                "model_name": model,
                "model_version": _champions(days)[min(7 * (week + 1), days - 1)],
                "window_start": at - dt.timedelta(days=7),
                "window_end": at,
                "n_current": int(rng.integers(150_000, 250_000)),
                "n_labelled": int(rng.integers(15_000, 30_000)),
                "drifted_count": int(drifted.sum()),
                "drifted_share": share,
                "mean_psi": float(psi.mean()),
                "max_psi": float(psi.max()),
                "median_psi": float(np.median(psi)),
                "score_psi": float(abs(rng.normal(shift / 2, 0.03))),
                "roc_auc": float(0.95 - shift * 0.3 + rng.normal(0, 0.005)),
                "pr_auc": float(0.8 - shift + rng.normal(0, 0.01)),
                "precision": float(0.85 - shift / 2),
                "recall": float(0.8 - shift),
                "f1": float(0.82 - shift * 0.7),
                "roc_auc_degradation_pct": float(shift * 30),
                "data_drift_detected": share >= 0.3,
                "model_drift_detected": shift > 0.2,
                "status": "ok",
                "summary": "{}",
            }
        )
        for name, value, flag in zip(features, psi, drifted, strict=True):
            drift.append(
                {
                    "run_id": run_id,
                    "feature": name,
                    "kind": "numeric",
                    "psi": float(value),
                    "ks_statistic": float(min(1.0, value / 2)),
                    "ks_pvalue": float(np.exp(-value * 40)),
                    "severity": "significant" if flag else ("moderate" if value > 0.1 else "none"),
                    "drifted": bool(flag),
                    "as_of": at,
                }
            )
        if share >= 0.3:
            alerts.append(
                {
                    "alert_id": uuid.uuid4().hex,
                    "run_id": run_id,
                    "created_at": at + dt.timedelta(minutes=1),
                    "channel": "log",
                    "severity": "warning",
                    "subject": f"[fraudops] data drift: {int(drifted.sum())} features",
                    "body": "bench",
                    "delivered": True,
                    "attempts": 1,
                }
            )
    lake.append(MONITORING_RUNS, runs)
    lake.append(FEATURE_DRIFT, drift)
    if alerts:
        lake.append(ALERTS, alerts)
    ingests = [
        {
            "batch": f"bench-{d:04d}",
            "ingested_at": start + dt.timedelta(days=d, hours=3),
            "origin": "bench",
            "received": int(rng.integers(2_000, 4_000)),
            "written": int(rng.integers(2_000, 4_000)),
            "unknown": int(rng.poisson(2)),
            "duplicates": int(rng.poisson(1)),
            "conflicts": int(rng.poisson(3)),
        }
        for d in range(1, days)
    ]
    lake.append(LABEL_INGESTS, ingests)
    return {"model_events": len(events), "monitoring_runs": len(runs), "feature_drift": len(drift)}


def _event(
    spec: str,
    model: str,
    version: str,
    kind: str,
    before: str | None,
    after: str | None,
    at: dt.datetime,
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "event_time": at,
        "spec": spec,
        "model_name": model,
        "version": version,
        "event_type": kind,
        "trigger": "rollback" if kind == "rollback" else ("train" if version == "1" else "retrain"),
        "champion_before": before,
        "champion_after": after,
        "reason": "bench: " + kind,
        "metrics": "{}",
    }


def make_lake(
    home: Path, rows: int, days: int, seed: int, *, aggregates: bool = True
) -> LakeFigures:
    """Fill a fresh home's lake (see the module docstring) and, with ``aggregates``, rebuild
    the dashboard's aggregates (timed in ``timings``); returns what was written."""
    settings = load_settings(home=home)
    rng = np.random.default_rng(seed)
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    figures = LakeFigures(home=str(home), rows=rows, days=days)
    started = time.perf_counter()
    champions = _champions(days)
    with Lake(settings, settings.feature_spec(None)) as lake:
        lake.init()
        chunks = max(1, -(-rows // CHUNK_ROWS))
        edges = np.linspace(0, days, chunks + 1).round().astype(int)
        for i in range(chunks):
            n = rows // chunks + (1 if i < rows % chunks else 0)
            day0, day1 = int(edges[i]), max(int(edges[i + 1]), int(edges[i]) + 1)
            table, fraud = _chunk(rng, start, day0, min(day1, days), n, champions)
            lake.append(PREDICTIONS, table)
            figures.labels += lake.append(LABELS, _labels(rng, table, fraud, end, i))
        small = _small_tables(lake, rng, start, days)
        figures.model_events = small["model_events"]
        figures.monitoring_runs = small["monitoring_runs"]
        figures.feature_drift = small["feature_drift"]
    figures.generate_s = round(time.perf_counter() - started, 2)
    if aggregates:
        build_aggregates(settings, figures)
    return figures


def build_aggregates(settings: Settings, figures: LakeFigures) -> None:
    """Rebuild prediction_stats and label_stats from the generated rows, timed."""
    from fraudops.aggregates import labels as label_aggregates
    from fraudops.aggregates import predictions as prediction_aggregates

    t = figures.timings
    with Lake(settings, settings.feature_spec(None)) as lake:
        report = prediction_aggregates.rebuild(lake)
        t["rebuild_prediction_stats_s"] = report.seconds
        t["prediction_stats_rows"] = report.rows_written
        report = label_aggregates.rebuild(lake)
        t["rebuild_label_stats_s"] = report.seconds
        t["label_stats_rows"] = report.rows_written


def _p95(values: list[float]) -> float:
    return round(float(np.percentile(values, 95)) * 1000, 1)


def measure(settings: Settings, figures: LakeFigures, calls: int = 20) -> None:
    """Time the two page functions, a refresh after one more commit, a label ingestion."""
    from fraudops.aggregates import labels as label_aggregates
    from fraudops.aggregates import predictions as prediction_aggregates
    from fraudops.aggregates import read
    from fraudops.dashboard.contracts import Filters
    from fraudops.dashboard.pages import inference, labels
    from fraudops.labels.ingest import LabelEvent, ingest_events
    from fraudops.runtime import Runtime

    t = figures.timings
    with Runtime(settings) as runtime:
        lake = runtime.lake()
        year = Filters()
        last_week = Filters(
            start=dt.datetime.now(dt.UTC) - dt.timedelta(days=7), end=dt.datetime.now(dt.UTC)
        )
        for name, module in (("inference", inference), ("labels", labels)):
            for label, filters in (("year", year), ("week", last_week)):
                read.clear_cache()
                began = time.perf_counter()
                page = module.build(runtime, filters)
                cold = time.perf_counter() - began
                assert all(c.has_data for c in page.charts), [c.key for c in page.charts]
                warm = []
                for _ in range(calls):
                    began = time.perf_counter()
                    module.build(runtime, filters).to_dict()
                    warm.append(time.perf_counter() - began)
                t[f"page_{name}_{label}_cold_ms"] = round(cold * 1000, 1)
                t[f"page_{name}_{label}_warm_p95_ms"] = _p95(warm)
                t[f"page_{name}_{label}_warm_median_ms"] = round(statistics.median(warm) * 1000, 1)
        # One more log commit: the incremental refresh reads only its file.
        rng = np.random.default_rng(1)
        start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        table, _ = _chunk(rng, start - dt.timedelta(days=1), 0, 1, 50_000, np.array(["4"]))
        lake.append(PREDICTIONS, table)
        report = prediction_aggregates.refresh(lake)
        t["refresh_after_50k_commit_s"] = report.seconds
        began = time.perf_counter()
        inference.build(runtime, year)
        t["page_inference_year_after_refresh_ms"] = round((time.perf_counter() - began) * 1000, 1)
        label_aggregates.refresh(lake)  # folds the new day in first
        sample = table.slice(0, 500)
        events = [
            LabelEvent(inference_id=i, label=0, source="investigation")
            for i in sample["inference_id"].to_pylist()
        ]
        began = time.perf_counter()
        ingest_events(
            lake, events, now=dt.datetime.now(dt.UTC), origin="bench", listeners=runtime.commits
        )
        t["label_ingest_500_with_refresh_s"] = round(time.perf_counter() - began, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a fresh home (default: temp)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    figures = make_lake(home, args.rows, args.days, args.seed)
    print(
        f"generated {figures.rows:,} predictions, {figures.labels:,} labels "
        f"in {figures.generate_s} s",
        flush=True,
    )
    measure(load_settings(home=home), figures)
    result = {
        **asdict(figures),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key != "timings":
                print(f"{key}: {value}")
        for key, value in figures.timings.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
