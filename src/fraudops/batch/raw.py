"""A raw file to score (a spec with derived features): its rows with the features derived from
the lake's history before them plus the file's own earlier rows.

Unlike a file of ready features it is read whole (a row's windows reach back over its key's
earlier rows, anywhere in the file), validated whole — the time, every key, the plain features,
the id when the file has it: one error lists every problem, nothing is written — then derived
with the offline engine (features/offline.py) over the lake's transactions up to the file's
last time (``emit=False``: history, not output) and the file, and handed to the scorer in
chunks carrying their derived columns.

Labels: a lake row's label counts in ``fraud_rate`` windows as at load (known at its own time,
read after the window's delay); a file row that is also in the lake (same id) is the lake's
row, with its label; a new row's label is not known when it is scored (a label column in the
file is ignored), as a served transaction's label is not until its label event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.batch.reader import id_columns
from fraudops.errors import ValidationError
from fraudops.lake.formats import CSV_SUFFIXES, PARQUET_SUFFIXES
from fraudops.lake.validation import Checker, header_problems, validation_error
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from fraudops.lake import Lake

LAKE_ID = "transaction_id"  # the lake's generated id when a spec declares none


def raw_columns(spec: FeatureSpec) -> list[str]:
    """The columns a raw file to score must have: the time, the keys, the plain features."""
    return list(dict.fromkeys([spec.timestamp_column, *spec.keys, *spec.raw_feature_names]))


class RawSource:
    """A validated raw file with its derived features, served as chunks (``ChunkReader``'s
    interface: ``id_columns``, ``total_rows``, iteration)."""

    def __init__(self, table: pa.Table, id_cols: list[str], chunk_rows: int) -> None:
        self.table = table
        self.id_columns = id_cols
        self.total_rows: int | None = table.num_rows
        self.chunk_rows = chunk_rows

    @classmethod
    def open(
        cls, path: Path, spec: FeatureSpec, chunk_rows: int, lake_factory: Callable[[], Lake]
    ) -> RawSource:
        table = read_raw(path, spec)
        frame = validate_raw(table, spec, str(path))
        history = lake_history(lake_factory, spec, frame)
        derived = derive_rows(frame, history, spec)
        for name, values in derived.items():
            table = table.append_column(name, pa.array(values))
        ids = [c for c in id_columns(spec) if c in table.column_names]
        return cls(table, ids, chunk_rows)

    def __iter__(self) -> Iterator[pa.Table]:
        for start in range(0, self.table.num_rows, self.chunk_rows):
            yield self.table.slice(start, self.chunk_rows)


def read_raw(path: Path, spec: FeatureSpec) -> pa.Table:
    """The file's columns the spec reads (CSV as text: validation reports each bad cell)."""
    name = path.name.lower()
    if not path.is_file():
        raise ValidationError(
            f"cannot read {path}: {'not a file' if path.exists() else 'no such file'}"
        )
    try:
        if name.endswith(PARQUET_SUFFIXES):
            header = pq.ParquetFile(path).schema_arrow.names
        elif name.endswith(CSV_SUFFIXES):
            header = pa_csv.open_csv(path).schema.names
        else:
            known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
            raise ValidationError(f"cannot read {path}: unknown file format (expected {known})")
        issues = header_problems(header, raw_columns(spec), what="raw column")
        if issues:
            raise validation_error(str(path), spec, issues)
        columns = [c for c in dict.fromkeys([*id_columns(spec), *raw_columns(spec)]) if c in header]
        if name.endswith(PARQUET_SUFFIXES):
            return pq.read_table(path, columns=columns)
        convert = pa_csv.ConvertOptions(
            include_columns=columns,
            column_types={n: pa.string() for n in columns},
            strings_can_be_null=True,
        )
        return pa_csv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc} (nothing was written)") from None


def validate_raw(table: pa.Table, spec: FeatureSpec, source: str) -> pd.DataFrame:
    """The columns derive() reads, clean, as a frame; a ValidationError lists every problem
    (column, rows, values) of the whole file."""
    checker = Checker(table)
    columns: dict[str, pa.Array] = {}
    if spec.timestamp_kind == "seconds":
        columns[spec.timestamp_column] = checker.seconds(spec.timestamp_column)
    else:
        columns[spec.timestamp_column] = checker.timestamps(spec.timestamp_column)
    for key in spec.keys:
        ids = checker.ids(key, required=False)
        missing = pc.or_kleene(pc.is_null(ids), pc.equal(ids, ""))
        checker.flag(key, "missing key value", np.asarray(missing.to_numpy(zero_copy_only=False)))
        columns[key] = ids
    for feature in spec.features:
        columns[feature.name] = checker.feature(feature)
    if spec.id_column is not None and spec.id_column in table.column_names:
        columns[spec.id_column] = checker.ids(spec.id_column, required=True)
    issues = [p.describe() for p in checker.problems]
    if table.num_rows == 0:
        issues.append("no data rows")
    if issues:
        raise validation_error(source, spec, issues)
    return pa.table(columns).to_pandas()


def lake_history(
    lake_factory: Callable[[], Lake], spec: FeatureSpec, frame: pd.DataFrame
) -> pd.DataFrame:
    """The lake's transactions a file row's windows may reach: up to the file's last time,
    from its first time less the longest lookback (``history_seconds``)."""
    from fraudops.features import history_seconds, needed_columns
    from fraudops.lake.schemas import TRANSACTIONS, transaction_id_column

    id_column = transaction_id_column(spec)
    wanted = [c for c in needed_columns(spec) if c != id_column]
    wanted = list(dict.fromkeys([id_column, *wanted, spec.label_column]))
    times = frame[spec.timestamp_column]
    lookback = history_seconds(spec)
    parts = [
        f"{spec.timestamp_column} <= {_literal(times.max())}",
        f"{spec.timestamp_column} >= {_literal(_minus(times.min(), lookback))}",
    ]
    with lake_factory() as lake:
        if not lake.exists(TRANSACTIONS):
            return pd.DataFrame(columns=wanted)
        return lake.read_frame(TRANSACTIONS, wanted, " and ".join(parts))


def derive_rows(
    frame: pd.DataFrame, history: pd.DataFrame, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """Every derived feature of each file row (file order), over the history and the file."""
    from fraudops.features import derive_all

    file_ids = spec.id_column if spec.id_column in frame.columns else None
    id_column = spec.id_column or LAKE_ID
    rows = frame.copy()
    in_lake = np.zeros(len(rows), dtype=bool)
    rows[spec.label_column] = 0
    if file_ids is not None and not history.empty:
        # A file row already loaded is the lake's row: its label, known at its own time.
        labels = history.set_index(id_column)[spec.label_column]
        in_lake = rows[file_ids].isin(labels.index).to_numpy()
        rows.loc[in_lake, spec.label_column] = labels.reindex(rows[file_ids][in_lake]).to_numpy()
        history = history[~history[id_column].isin(rows[file_ids])]
    if file_ids is None:
        # No id in the file: its rows follow the lake's at a shared time, in file order.
        rows[id_column] = [f"\uffff{i:012d}" for i in range(len(rows))]
    combined = pd.concat([history.assign(_emit=False), rows.assign(_emit=True)], ignore_index=True)
    emit = combined.pop("_emit").to_numpy(dtype=bool)
    # A lake row's label is known at its own time; a new row's never (NaT/NaN: not known).
    known = np.concatenate([np.ones(len(history), dtype=bool), in_lake])
    label_known_at = combined[spec.timestamp_column].where(known)
    lake_spec = spec if spec.id_column else spec.model_copy(update={"id_column": id_column})
    done = derive_all(combined, lake_spec, label_known_at=label_known_at)
    return {name: values[emit] for name, values in done.values.items()}


def _literal(value: object) -> str:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return f"'{pd.Timestamp(value).tz_convert('UTC').isoformat()}'"
    return repr(float(value))  # type: ignore[arg-type]


def _minus(value: object, seconds: int) -> object:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value) - pd.Timedelta(seconds=seconds)
    return float(value) - seconds  # type: ignore[arg-type]
