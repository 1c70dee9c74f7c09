"""What `fraudops score --engine dask` reads and writes, planned on the client.

In: a Parquet folder (every ``*.parquet``/``*.pq`` under it, hidden and ``_``-prefixed names
skipped), a glob of Parquet files (``'data/2026-*.parquet'``, ``**`` recursive), one Parquet file,
or a lake table (``lake:transactions``). Out: a Parquet folder (one ``part-NNNNN.parquet`` per
partition) or the lake's ``predictions`` table (``lake:predictions``).

Files are planned from their footers only: each file's header is checked against the spec here,
so a missing feature column fails before a worker starts, and Parquet row groups are grouped
into partitions of about ``compute.partition_rows`` rows. A partition never splits a row group
and keeps the file and first row of each piece, so a bad row is named by its file and its row in
that file, as the local path names it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.batch.reader import id_columns
from fraudops.errors import ValidationError
from fraudops.lake.formats import PARQUET_SUFFIXES
from fraudops.lake.validation import header_problems, validation_error
from fraudops.spec import FeatureSpec

LAKE_PREFIX = "lake:"
LAKE_OUTPUT_TABLE = "predictions"  # the lake's table of scores (the server's log lands there too)
PART_NAME = re.compile(r"part-\d{5}\.parquet")
_GLOB_CHARS = frozenset("*?[")


def lake_table(text: str) -> str | None:
    """``transactions`` for ``lake:transactions``; None for a path."""
    return text[len(LAKE_PREFIX) :] if text.startswith(LAKE_PREFIX) else None


def is_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def check_local_source(source: str, target: str) -> None:
    """The local engine scores one file into one file: anything else names --engine dask."""
    if Path(source).is_file() and lake_table(target) is None:
        return
    what = None
    if lake_table(source) is not None:
        what = f"the lake table {source}"
    elif is_glob(source) and not Path(source).exists():
        what = f"the glob {source!r}"
    elif Path(source).is_dir():
        what = f"the folder {source}"
    elif lake_table(target) is not None:
        what = f"the output {target}"
    if what is not None:
        raise ValidationError(
            f"the local engine scores one CSV or Parquet file into one file: {what} needs "
            "--engine dask (a Parquet folder, a glob or lake:<table> in; a Parquet folder or "
            f"{LAKE_PREFIX}{LAKE_OUTPUT_TABLE} out)"
        )


# ---- Parquet input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Consecutive row groups of one file, read by one task."""

    path: str
    row_groups: tuple[int, ...]
    first_row: int  # the file's row (0-based) its first row is: errors number rows per file
    rows: int


@dataclass(frozen=True)
class ParquetPlan:
    source: str
    files: list[Path]
    file_rows: dict[str, int]
    id_columns: list[str]
    parts: list[tuple[Segment, ...]]

    @property
    def total_rows(self) -> int:
        return sum(self.file_rows.values())


def parquet_files(source: str) -> list[Path]:
    """The files ``source`` names (a glob, a folder or a file), in a stable order."""
    if is_glob(source) and not Path(source).exists():
        found = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not found:
            raise ValidationError(f"cannot read {source!r}: the glob matches no file")
        return found
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValidationError(f"cannot read {source}: no such file or folder")
    found = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name.lower().endswith(PARQUET_SUFFIXES)
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not found:
        known = ", ".join(PARQUET_SUFFIXES)
        raise ValidationError(f"cannot read {source}: the folder holds no Parquet file ({known})")
    return found


def plan_parquet(source: str, spec: FeatureSpec, partition_rows: int) -> ParquetPlan:
    """The files of ``source`` checked against ``spec`` and grouped into partitions."""
    files = parquet_files(source)
    issues: list[str] = []
    ids: list[str] | None = None
    file_rows: dict[str, int] = {}
    row_groups: dict[str, list[int]] = {}
    for path in files:
        try:
            meta = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"cannot read {path} as PARQUET: {exc}") from None
        header = meta.schema_arrow.names
        here = [c for c in id_columns(spec) if c in header]
        if ids is None:
            ids = here  # the first file's ids: every part file gets the same columns
        issues += [
            f"{path}: {issue}"
            for issue in header_problems(header, spec.feature_names, what="feature column")
        ]
        if lacking := [c for c in ids if c not in here]:
            issues.append(
                f"{path}: missing id column(s) {', '.join(map(repr, lacking))} that {files[0]} has"
            )
        file_rows[str(path)] = meta.metadata.num_rows
        row_groups[str(path)] = [
            meta.metadata.row_group(i).num_rows for i in range(meta.metadata.num_row_groups)
        ]
    if issues:
        raise validation_error(source, spec, issues)
    return ParquetPlan(source, files, file_rows, ids or [], _group(row_groups, partition_rows))


def _group(row_groups: dict[str, list[int]], limit: int) -> list[tuple[Segment, ...]]:
    """Row groups, in file order, in partitions of at most ``limit`` rows (a bigger group is a
    partition alone); consecutive groups of one file are one segment."""
    parts: list[tuple[Segment, ...]] = []
    current: list[Segment] = []
    size = 0
    for path, counts in row_groups.items():
        first = 0
        for index, count in enumerate(counts):
            if current and size + count > limit:
                parts.append(tuple(current))
                current, size = [], 0
            last = current[-1] if current else None
            if last is not None and last.path == path:
                current[-1] = Segment(
                    path, (*last.row_groups, index), last.first_row, last.rows + count
                )
            else:
                current.append(Segment(path, (index,), first, count))
            size += count
            first += count
    if current:
        parts.append(tuple(current))
    return parts


# ---- Parquet folder output ---------------------------------------------------------------------


@dataclass(frozen=True)
class FolderOutput:
    """The output folder and the temporary folder beside it that the workers write into."""

    target: Path
    temp: Path

    @classmethod
    def prepare(cls, target: str, inputs: list[Path]) -> FolderOutput:
        """Checks made before any work (``inputs``: the input files and folder); the temporary
        folder is created."""
        path = Path(target)
        if path.suffix.lower() == ".csv":
            raise ValidationError(
                f"cannot write {target}: the Dask engine writes a Parquet folder (one file per "
                f"partition) or {LAKE_PREFIX}{LAKE_OUTPUT_TABLE}, not CSV"
            )
        if path.is_file():
            raise ValidationError(
                f"cannot write {target}: it is a file, and the Dask engine writes a folder of "
                "Parquet files: choose a folder"
            )
        resolved = path.resolve()
        for source in inputs:
            if source.resolve().is_relative_to(resolved):
                raise ValidationError(f"the output {target} holds the input {source}")
            # A folder input is read whole: an output under it would be read by the next run.
            if source.is_dir() and resolved.is_relative_to(source.resolve()):
                raise ValidationError(f"the output {target} is inside the input folder {source}")
        if path.is_dir():
            # Replaced as `score` replaces an output file, but only a previous result: a folder
            # holding anything else is not ours to delete.
            foreign = sorted(p.name for p in path.iterdir() if not PART_NAME.fullmatch(p.name))
            if foreign:
                raise ValidationError(
                    f"cannot write {target}: the folder holds {', '.join(foreign[:5])}, not a "
                    "previous score output (part-NNNNN.parquet files): choose a new or empty "
                    "folder"
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        temp.mkdir()
        return cls(path, temp)

    def part_path(self, index: int) -> str:
        return str(self.temp / f"part-{index:05d}.parquet")

    def commit(self) -> None:
        """The temporary folder renamed into place (a previous output moved away first)."""
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(self.target, old)
        os.replace(self.temp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.temp)
