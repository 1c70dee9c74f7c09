"""Reading the file to score: its header checked against the spec, then large Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.errors import ValidationError
from fraudops.lake.formats import CSV_SUFFIXES, PARQUET_SUFFIXES
from fraudops.lake.validation import header_problems, validation_error
from fraudops.spec import FeatureSpec

CSV_BLOCK_BYTES = 16 << 20


def id_columns(spec: FeatureSpec) -> list[str]:
    """The key columns carried from input to output when the input has them."""
    return [c for c in (spec.id_column, spec.customer_column) if c is not None]


class ChunkReader:
    """The needed columns of a CSV or Parquet file, ``chunk_rows`` rows at a time."""

    def __init__(
        self,
        path: Path,
        kind: Literal["csv", "parquet"],
        columns: list[str],
        id_cols: list[str],
        total_rows: int | None,
        chunk_rows: int,
    ) -> None:
        self.path = path
        self.kind = kind
        self.columns = columns
        self.id_columns = id_cols
        self.total_rows = total_rows
        self.chunk_rows = chunk_rows

    @classmethod
    def open(cls, path: Path, spec: FeatureSpec, chunk_rows: int) -> ChunkReader:
        name = path.name.lower()
        if not path.is_file():
            raise ValidationError(
                f"cannot read {path}: {'not a file' if path.exists() else 'no such file'}"
            )
        if name.endswith(CSV_SUFFIXES):
            kind: Literal["csv", "parquet"] = "csv"
        elif name.endswith(PARQUET_SUFFIXES):
            kind = "parquet"
        else:
            known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
            raise ValidationError(f"cannot read {path}: unknown file format (expected {known})")
        try:
            if kind == "csv":
                header = pa_csv.open_csv(path).schema.names
                total = _count_csv_rows(path) if name.endswith(".csv") else None
            else:
                meta = pq.ParquetFile(path)
                header, total = meta.schema_arrow.names, meta.metadata.num_rows
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read {path} as {kind.upper()}: {exc}") from None
        _check_header(path, header, spec)
        ids = [c for c in id_columns(spec) if c in header]
        return cls(path, kind, ids + spec.feature_names, ids, total, chunk_rows)

    def __iter__(self) -> Iterator[pa.Table]:
        try:
            yield from self._csv() if self.kind == "csv" else self._parquet()
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"cannot read {self.path} as {self.kind.upper()}: {exc} (nothing was written)"
            ) from None

    def _parquet(self) -> Iterator[pa.Table]:
        handle = pq.ParquetFile(self.path)
        for batch in handle.iter_batches(batch_size=self.chunk_rows, columns=self.columns):
            yield pa.Table.from_batches([batch])

    def _csv(self) -> Iterator[pa.Table]:
        # Text first, as `lake load` does: one bad cell is reported with its row by validation
        # instead of failing the reader's type inference.
        convert = pa_csv.ConvertOptions(
            include_columns=self.columns,
            column_types={n: pa.string() for n in self.columns},
            strings_can_be_null=True,
        )
        stream = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=convert,
        )
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in stream:
            pending.append(batch)
            size += batch.num_rows
            if size >= self.chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, size = [], 0
        if pending:
            yield pa.Table.from_batches(pending)


def _count_csv_rows(path: Path) -> int:
    # For the progress bar only: newlines minus the header (a quoted newline would overcount).
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines - 1 + (last != b"\n"), 0)


def _check_header(path: Path, header: list[str], spec: FeatureSpec) -> None:
    issues = header_problems(header, spec.feature_names, what="feature column")
    if issues:
        raise validation_error(str(path), spec, issues)
