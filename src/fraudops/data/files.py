"""Writing the synthetic data sets to a folder: the training set, and for the default drift and
each named pattern a drifted set and its ground truth (seed 000's three CSVs, per pattern).

Everything is generated in memory first, then written to temporary names and renamed into place
only when every file is complete: a failure leaves the folder as it was.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.config import Settings
from fraudops.data.drift import DEFAULT_PATTERN, drift_rules, generate_drifted_set
from fraudops.data.synthetic import generate_transactions
from fraudops.errors import ConfigError, FraudopsError
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec

Format = Literal["parquet", "csv"]


@dataclass
class DatasetFiles:
    """What ``write_datasets`` wrote. Drifted sets share one base sample, hence one row count
    and one fraud rate."""

    out_dir: Path
    format: Format
    seed: int
    transactions: Path
    rows: int
    customers: int
    fraud_rate: float
    time_start: pd.Timestamp
    time_end: pd.Timestamp
    drift_seed: int
    drift_rows: int
    drift_fraud_rate: float
    drifted: dict[str, Path] = field(default_factory=dict)
    ground_truth: dict[str, Path] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "format": self.format,
            "seed": self.seed,
            "transactions": str(self.transactions),
            "rows": self.rows,
            "customers": self.customers,
            "fraud_rate": round(self.fraud_rate, 6),
            "time_start": self.time_start.isoformat(),
            "time_end": self.time_end.isoformat(),
            "drift_seed": self.drift_seed,
            "drift_rows": self.drift_rows,
            "drift_fraud_rate": round(self.drift_fraud_rate, 6),
            "drifted": {name: str(path) for name, path in self.drifted.items()},
            "ground_truth": {name: str(path) for name, path in self.ground_truth.items()},
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


def write_datasets(
    settings: Settings,
    spec: FeatureSpec,
    out_dir: Path,
    *,
    rows: int | None = None,
    seed: int | None = None,
    patterns: list[str] | None = None,
    fmt: Format = "parquet",
    progress: Reporter | None = None,
) -> DatasetFiles:
    """Write ``transactions.<fmt>`` and, for the default drift and each pattern in ``patterns``
    (default: all of ``data.drift_patterns``), ``drifted_<name>.<fmt>`` and
    ``ground_truth_<name>.<fmt>``. The drifted sets share the training set's customers."""
    started = time.perf_counter()
    progress = progress or Reporter()
    data = settings.data
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"format must be parquet or csv, got {fmt!r}")
    names = _pattern_names(settings, patterns)
    seed = data.seed if seed is None else seed

    frames: dict[str, pd.DataFrame] = {}
    frames["transactions"] = train = generate_transactions(
        data, spec, rows=rows, seed=seed, progress=progress
    )
    with progress.step("Generating drifted sets", total=len(names)) as handle:
        for name in names:
            drifted, truth = generate_drifted_set(data, spec, pattern=name, customer_seed=seed)
            frames[f"drifted_{name}"], frames[f"ground_truth_{name}"] = drifted, truth
            handle.advance()
    with progress.step("Writing files", total=len(frames)) as handle:
        paths = _write_all(frames, out_dir, fmt, handle.advance)

    label = spec.label_column
    stamps = train[spec.timestamp_column]
    truth = frames[f"ground_truth_{DEFAULT_PATTERN}"]
    return DatasetFiles(
        out_dir=out_dir,
        format=fmt,
        seed=seed,
        transactions=paths["transactions"],
        rows=len(train),
        customers=int(train[spec.customer_column or "customer_id"].nunique()),
        fraud_rate=float(train[label].mean()),
        time_start=stamps.min(),
        time_end=stamps.max(),
        drift_seed=data.drift_seed,
        drift_rows=len(truth),
        drift_fraud_rate=float(truth[label].mean()),
        drifted={n: paths[f"drifted_{n}"] for n in names},
        ground_truth={n: paths[f"ground_truth_{n}"] for n in names},
        elapsed_seconds=time.perf_counter() - started,
    )


def _pattern_names(settings: Settings, patterns: list[str] | None) -> list[str]:
    """ "default" first, then the requested patterns (all configured ones by default), checked."""
    requested = list(settings.data.drift_patterns) if patterns is None else patterns
    names = [DEFAULT_PATTERN]
    for name in requested:
        drift_rules(settings.data, name)  # ConfigError naming the known patterns
        if name not in names:
            names.append(name)
    return names


def _write_all(
    frames: dict[str, pd.DataFrame], out_dir: Path, fmt: Format, advance: Callable[[], None]
) -> dict[str, Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out_dir}: {exc}") from None
    with _staging() as staged:
        for stem, frame in frames.items():
            final = out_dir / f"{stem}.{fmt}"
            tmp = out_dir / f".{stem}.{uuid.uuid4().hex[:8]}.tmp"
            staged.append((tmp, final))
            _write_frame(frame, tmp, fmt)
            advance()
    return {stem: out_dir / f"{stem}.{fmt}" for stem in frames}


@contextmanager
def _staging() -> Iterator[list[tuple[Path, Path]]]:
    """Collects (temporary, final) pairs and renames them all once every file is written; on any
    failure the temporary files go and no final file is half written."""
    staged: list[tuple[Path, Path]] = []
    try:
        yield staged
        for tmp, final in staged:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise FraudopsError(f"cannot write {final}: {exc}") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _write_frame(frame: pd.DataFrame, path: Path, fmt: Format) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)  # ~5x faster than DataFrame.to_csv, same values read back
