"""Label events from a file: CSV, Parquet or JSON lines, one event per row / line."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from fraudops.errors import ValidationError
from fraudops.labels.ingest import IngestReport, LabelsValidationError, ingest_labels
from fraudops.lake.catalog import Lake
from fraudops.lake.commits import CommitListeners

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_label_file(
    path: Path, label_column: str | None = None
) -> tuple[list[dict[str, Any]], Callable[[int], str]]:
    """The file's entries, and how to name entry ``i`` in an error (its row or line).

    CSV cells are read as text (ids keep their leading zeros; the event model types them).
    ``label_column`` (the spec's, e.g. ``is_fraud``) is read as ``label`` when the file has no
    ``label`` column, so `fraudops data generate`'s ground-truth files load as they are.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"label file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            return _read_jsonl(path)
        if suffix in CSV_SUFFIXES:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            raise ValidationError(
                f"{path}: unknown label file type {suffix!r} (use .csv, .parquet or .jsonl)"
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValidationError(f"cannot read label file {path}: {exc}") from None
    if label_column and "label" not in frame.columns and label_column in frame.columns:
        frame = frame.rename(columns={label_column: "label"})
    rows = [{str(k): _cell(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    if suffix in CSV_SUFFIXES:
        return rows, lambda i: f"row {i + 1} (line {i + 2})"
    return rows, lambda i: f"row {i + 1}"


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], Callable[[int], str]]:
    rows: list[Any] = []
    lines: list[int] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ValidationError(
                    f"label file {path}, line {number}: not JSON ({exc.msg}); nothing written"
                ) from None
            lines.append(number)
    return rows, lambda i: f"line {lines[i]}" if 0 <= i < len(lines) else f"entry {i}"


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    return value


def load_label_file(
    lake: Lake,
    path: Path,
    *,
    now: dt.datetime | None = None,
    listeners: CommitListeners | None = None,
) -> IngestReport:
    """`fraudops labels load`: the file's events ingested as one batch, all or nothing on form.
    ``listeners``: told what was committed (``Runtime.commits``).

    A malformed row refuses the file with the row (CSV: and line) named; nothing is written.
    """
    rows, entry_name = read_label_file(path, lake.spec.label_column)
    try:
        return ingest_labels(lake, rows, now=now, origin="file", listeners=listeners)
    except LabelsValidationError as exc:
        raise exc.renamed(lambda i: f"{path.name} {entry_name(i)}") from None
