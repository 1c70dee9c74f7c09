"""Load a CSV or Parquet file into ``transactions``: read, validate all of it, then one commit.

Nothing partial lands: the whole file is validated (and its ids checked against the table) before
the single Iceberg append or overwrite; a refused file leaves the table as it was.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.errors import ValidationError
from fraudops.lake.formats import CSV_SUFFIXES, PARQUET_SUFFIXES
from fraudops.lake.schemas import (
    BATCH_ID_COLUMN,
    LOADED_AT_COLUMN,
    TRANSACTIONS,
    transaction_id_column,
)
from fraudops.lake.validation import validate_frame
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.timeutil import utc_now

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

LoadMode = Literal["append", "replace"]
MODES: tuple[LoadMode, ...] = ("append", "replace")
IDS_SHOWN = 5


@dataclass
class LoadReport:
    """What one `lake load` did."""

    path: str
    spec: str
    rows: int
    columns_ignored: list[str]
    mode: str
    batch_id: str
    seconds: float
    fraud_rate: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_file(
    lake: Lake, path: Path | str, *, mode: LoadMode = "append", progress: Reporter | None = None
) -> LoadReport:
    """Validate ``path`` against the lake's spec and append it to (or replace) ``transactions``."""
    started = time.perf_counter()
    if mode not in MODES:
        raise ValidationError(f"unknown load mode {mode!r}: use one of {', '.join(MODES)}")
    path = Path(path)
    reporter = progress or Reporter()
    lake.table(TRANSACTIONS)  # before reading a large file: is the lake initialised?
    with reporter.step("Reading"):
        raw = read_input(path)
        digest = file_sha256(path)
    with reporter.step("Validating"):
        clean = validate_frame(raw, lake.spec, source=str(path))
    batch_id = f"{digest[:8]}-{uuid.uuid4().hex[:8]}"
    rows = with_lineage(clean, lake.spec, digest, batch_id)
    if mode == "append":
        with reporter.step("Checking ids"):
            check_new_ids(lake, rows, path)
    properties = {
        "fraudops.batch-id": batch_id,
        "fraudops.source": str(path),
        "fraudops.sha256": digest,
    }
    with reporter.step("Writing"):
        write = lake.append if mode == "append" else lake.replace
        written = write(TRANSACTIONS, rows, snapshot_properties=properties)
    label = clean[lake.spec.label_column]
    return LoadReport(
        path=str(path),
        spec=lake.spec.name,
        rows=written,
        columns_ignored=[c for c in raw.column_names if c not in lake.spec.required_columns],
        mode=mode,
        batch_id=batch_id,
        seconds=time.perf_counter() - started,
        fraud_rate=float(pc.mean(label).as_py() or 0.0),
        timings={
            k: v
            for k, v in reporter.timings.items()
            if k in ("Reading", "Validating", "Checking ids", "Writing")
        },
    )


def read_input(path: Path) -> pa.Table:
    """The file's rows as Arrow (CSV: every column as text, parsed by validation)."""
    name = path.name.lower()
    if not path.exists():
        raise ValidationError(f"cannot read {path}: no such file")
    if not path.is_file():
        raise ValidationError(f"cannot read {path}: not a file")
    try:
        if name.endswith(CSV_SUFFIXES):
            return _read_csv(path)
        if name.endswith(PARQUET_SUFFIXES):
            return pq.read_table(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        kind = "CSV" if name.endswith(CSV_SUFFIXES) else "Parquet"
        raise ValidationError(f"cannot read {path} as {kind}: {exc}") from None
    known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise ValidationError(f"cannot read {path}: unknown file format (expected {known})")


def _read_csv(path: Path) -> pa.Table:
    # Text first, so that one bad cell deep in a column is reported with its row by validation
    # rather than failing the reader's type inference with a bare conversion error.
    header = pa_csv.open_csv(path).schema.names
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=True,
    )
    return pa_csv.read_csv(path, convert_options=convert)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def with_lineage(clean: pa.Table, spec: FeatureSpec, digest: str, batch_id: str) -> pa.Table:
    """Add the batch columns and, for a spec without ids, ``<sha8>-<data row>`` ids."""
    n = clean.num_rows
    if spec.id_column is None:
        rows = pa.array(range(1, n + 1), pa.int64()).cast(pa.string())
        ids = pc.binary_join_element_wise(f"{digest[:8]}-", rows, "")
        clean = clean.add_column(0, transaction_id_column(spec), ids)
    loaded_at = pa.scalar(utc_now(), pa.timestamp("us", tz="UTC"))
    clean = clean.append_column(BATCH_ID_COLUMN, pa.repeat(pa.scalar(batch_id), n))
    return clean.append_column(LOADED_AT_COLUMN, pa.repeat(loaded_at, n))


def check_new_ids(lake: Lake, rows: pa.Table, path: Path) -> None:
    """Refuse a file whose ids are already in ``transactions`` (loaded before?)."""
    column = transaction_id_column(lake.spec)
    existing = lake.read(TRANSACTIONS, columns=[column])[column]
    if len(existing) == 0:
        return
    new = rows[column].cast(pa.string())
    present = pc.is_in(new, value_set=existing.combine_chunks().cast(pa.string()))
    clashes = pc.filter(new, present)
    if len(clashes) == 0:
        return
    shown = ", ".join(repr(v) for v in clashes.slice(0, IDS_SHOWN).to_pylist())
    raise ValidationError(
        f"{path}: {len(clashes)} of its {len(new)} ids are already in "
        f"{lake.namespace}.{TRANSACTIONS} (e.g. {shown}); was the file loaded before? "
        "Load it in replace mode to overwrite the table. Nothing was written."
    )
