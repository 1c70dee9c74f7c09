"""Batch scoring on this process: one CSV or Parquet file, in chunks (the local engine's path).

The file is read in chunks; each chunk is validated against the spec's features with the checks
of ``lake load`` (``fraudops.lake.validation``), scored by the same ``Scorer`` as the online
endpoint, and appended to a temporary file beside the output. The temporary file is renamed over
the output only when the whole input was clean: a bad file writes nothing, and its error lists
every problem of the whole file with file-wide row numbers. Memory stays bounded by two chunks
(the next one is read while this one is scored).

Start-up is most of a file's time at these speeds, so the path here imports neither MLflow nor
the ``xgboost`` package nor pyiceberg's catalog: the version comes from a direct read of the
SQLite registry (``fraudops.registry.store``), and XGBoost scores through its C library
(``fraudops.models.xgboost_native``) or, faster, through its trees compiled for this CPU
(``fraudops.models.compiled``: built on a version's first batch, then cached under the home).
The features go from Arrow to one float matrix without pandas.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.batch.reader import ChunkReader
from fraudops.config import Settings
from fraudops.errors import ConfigError, ValidationError
from fraudops.lake.validation import MAX_SHOWN, Checker, Problem, validation_error
from fraudops.models.compiled import CompiledForest, compiled_predictor
from fraudops.models.portable import XGBoostModel
from fraudops.progress import Reporter
from fraudops.registry.loading import LoadedModel, load_model
from fraudops.scoring import Scorer
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.batch.raw import RawSource
    from fraudops.lake import Lake

CHUNK_ROWS = 131_072
OUTPUT_COLUMNS = ("probability", "prediction", "risk_tier", "model_name", "model_version")
REASONS_COLUMN = "reason_codes"
OUTPUT_SUFFIXES: dict[str, Literal["csv", "parquet"]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

OutputFormat = Literal["csv", "parquet"]


@dataclass
class ScoreReport:
    """What one `fraudops score` did."""

    input: str
    output: str
    spec: str
    model_name: str
    model_version: str
    rows: int
    columns: list[str]
    predicted_fraud: int
    fraud_share: float
    risk_tiers: dict[str, int]
    explain: bool
    seconds: float
    rows_per_s: float
    timings: dict[str, float] = field(default_factory=dict)
    predictor: str = "model"  # "compiled": the compiled forest; "model": the model's own

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_format(path: Path) -> OutputFormat:
    """The output's format from its suffix; a ValidationError names the accepted ones."""
    try:
        return OUTPUT_SUFFIXES[path.suffix.lower()]
    except KeyError:
        known = ", ".join(OUTPUT_SUFFIXES)
        raise ValidationError(
            f"cannot write {path}: unknown output format {path.suffix or '(no suffix)'!r} "
            f"(expected {known})"
        ) from None


def score_file(
    settings: Settings,
    input_path: Path | str,
    output_path: Path | str,
    *,
    registry: Callable[[], MlflowClient],
    spec_name: str | None = None,
    version: str | None = None,
    explain: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    progress: Reporter | None = None,
    lake_factory: Callable[[], Lake] | None = None,
) -> ScoreReport:
    """Score every row of ``input_path`` with a registered version (default: the champion) and
    write ids + probability, prediction, risk tier, model name and version to ``output_path``.

    A spec with derived features reads a raw file (batch/raw.py): its derived features come
    from the lake's history (``lake_factory``) and the file's earlier rows, and the output
    carries them after the ids (what the model saw, to compare with serving's)."""
    started = time.perf_counter()
    reporter = progress or Reporter()
    spec = settings.feature_spec(spec_name)
    source, target = Path(input_path), Path(output_path)
    fmt = output_format(target)  # before any work: a typo in the suffix fails at once
    if target.resolve() == source.resolve():
        raise ValidationError(f"the output {target} is the input: choose another file")
    reader: ChunkReader | RawSource
    if spec.derived:
        if lake_factory is None:
            raise ConfigError(f"spec {spec.name!r} derives features: scoring needs the lake")
        from fraudops.batch.raw import RawSource  # a raw file, read whole and derived

        with reporter.step("Deriving features"):
            reader = RawSource.open(source, spec, chunk_rows, lake_factory)
    else:
        reader = ChunkReader.open(source, spec, chunk_rows)  # the header: features there?
    with reporter.step("Loading model"):
        loaded = with_compiled_forest(
            load_model(settings, spec, version, client=registry), settings
        )
        scorer = Scorer(
            loaded,
            settings.serving.risk_tiers,
            settings.serving.explain_top_k,
            flat_forest=False,  # chunks are far above its size: the compiled or XGBoost's
        )
    check_model_features(scorer, spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    sink = ScoredSink(target, fmt)
    scoring = ChunkScoring(spec, scorer, reader.id_columns, explain)
    try:
        with reporter.step(f"Scoring {source.name}", total=reader.total_rows) as bar:
            for chunk in _read_ahead(reader):
                scored = scoring.process(chunk)
                if scored is not None:
                    with scoring.timer("write"):
                        sink.write(scored)
                bar.advance(chunk.num_rows)
        scoring.raise_problems(str(source))
        with reporter.step("Writing output"):
            sink.commit()
    finally:
        sink.discard()  # a no-op after commit; otherwise nothing is left behind
    seconds = time.perf_counter() - started
    return ScoreReport(
        input=str(source),
        output=str(target),
        spec=spec.name,
        model_name=scorer.name,
        model_version=scorer.version,
        rows=scoring.rows,
        columns=scoring.output_columns(),
        predicted_fraud=scoring.predicted_fraud,
        fraud_share=scoring.predicted_fraud / scoring.rows if scoring.rows else 0.0,
        risk_tiers={
            t.name: scoring.tiers.get(t.name, 0)
            for t in sorted(settings.serving.risk_tiers, key=lambda t: t.min_probability)
        },
        explain=explain,
        predictor=predictor_name(scorer),
        seconds=seconds,
        rows_per_s=scoring.rows / seconds if seconds > 0 else 0.0,
        timings={
            **{k: v for k, v in reporter.timings.items() if k == "Loading model"},
            **scoring.timings,
        },
    )


def _read_ahead(chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """The chunks, the next one read on a thread while this one is scored (Arrow decodes without
    the GIL, on the core that validating and writing leave idle); a reader's error is raised
    here as it would be without the thread."""
    source = iter(chunks)
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, source, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, source, None)
            yield chunk


def with_compiled_forest(loaded: LoadedModel, settings: Settings) -> LoadedModel:
    """An XGBoost version scored by its compiled forest (cached under the home, built on first
    use); as loaded when it cannot be compiled (``compiled_predictor`` logs why)."""
    model = loaded.model
    if not isinstance(model, XGBoostModel):
        return loaded
    forest = compiled_predictor(model, settings.home_dir / "cache", loaded.name, loaded.version)
    if forest is None:
        return loaded
    return replace(loaded, model=model.with_predictor(forest))


def predictor_name(scorer: Scorer) -> str:
    model = scorer.model
    compiled = isinstance(model, XGBoostModel) and isinstance(model.predictor, CompiledForest)
    return "compiled" if compiled else "model"


def check_model_features(scorer: Scorer, spec: FeatureSpec) -> None:
    unknown = [n for n in scorer.feature_names if n not in spec.feature_names]
    if unknown:
        raise ConfigError(
            f"model {scorer.name!r} version {scorer.version} uses features {unknown} that spec "
            f"{spec.name!r} does not declare: score with the spec it was trained on (--spec)"
        )


# ---- validating and scoring --------------------------------------------------------------------


class ChunkScoring:
    """The state of one file's (or one Dask partition's) scoring: problems, counts, timings."""

    def __init__(
        self, spec: FeatureSpec, scorer: Scorer, id_cols: list[str], explain: bool
    ) -> None:
        self.spec = spec
        self.scorer = scorer
        self.id_cols = id_cols
        self.explain = explain
        # Computed before scoring (batch/raw.py): columns of the chunk, echoed to the output.
        self.derived = [d.name for d in spec.derived]
        self.rows = 0
        self.predicted_fraud = 0
        self.tiers: Counter[str] = Counter()
        self.timings: dict[str, float] = {"validate": 0.0, "score": 0.0, "write": 0.0}
        # Problems of the whole file, merged by (column, what), with file-wide row positions.
        self._problems: dict[tuple[str, str], tuple[list[np.ndarray], list[Any]]] = {}
        self._name = pa.scalar(scorer.name, pa.string())
        self._version = pa.scalar(scorer.version, pa.string())
        # XGBoost compares float32 values whatever it is given: same scores, half the copying.
        # Other kinds compute in float64, and reason codes echo the values, as the endpoint does.
        fast = scorer.loaded.manifest.kind == "xgboost" and not explain
        self._dtype: type[np.floating] = np.float32 if fast else np.float64

    @property
    def failed(self) -> bool:
        return bool(self._problems)

    def timer(self, key: str) -> _Timer:
        return _Timer(self.timings, key)

    def process(self, chunk: pa.Table) -> pa.Table | None:
        """The scored chunk, or None once any chunk had a problem (then only validate on)."""
        offset = self.rows
        self.rows += chunk.num_rows
        with self.timer("validate"):
            checker = Checker(chunk)
            features = {f.name: checker.feature(f) for f in self.spec.features}
            derived = {n: chunk.column(n).combine_chunks() for n in self.derived}
            features.update(derived)
            ids = {c: checker.ids(c, required=False) for c in self.id_cols}
            self._collect(checker.problems, offset)
        if self.failed:
            return None
        with self.timer("score"):
            X = _matrix(features, self.scorer.feature_names, self._dtype, chunk.num_rows)
            scored = self.scorer.score(X, explain=self.explain)
            self.predicted_fraud += int(scored.predictions.sum())
            n = chunk.num_rows
            columns: dict[str, pa.Array] = {**ids, **derived}
            columns["probability"] = pa.array(scored.probabilities, pa.float64())
            columns["prediction"] = pa.array(scored.predictions, pa.int8())
            columns["risk_tier"] = tiers = pa.array(scored.tiers, pa.string())
            for count in pc.value_counts(tiers).to_pylist():  # hashing in Arrow, not a sort
                self.tiers[count["values"]] += count["counts"]
            columns["model_name"] = pa.repeat(self._name, n)
            columns["model_version"] = pa.repeat(self._version, n)
            if self.explain:
                reasons = scored.reasons or []
                columns[REASONS_COLUMN] = pa.array(
                    [orjson.dumps(r).decode() for r in reasons], pa.string()
                )
        return pa.table(columns)

    def _collect(self, problems: list[Problem], offset: int) -> None:
        for problem in problems:
            rows, values = self._problems.setdefault((problem.column, problem.what), ([], []))
            rows.append(problem.rows + offset)
            if len(values) < MAX_SHOWN:
                values.extend(list(problem.values)[: MAX_SHOWN - len(values)])

    def problems(self) -> list[Problem]:
        """The problems so far, one per (column, fault), with rows numbered from the first chunk."""
        return [
            Problem(column, what, np.concatenate(rows), values, total=self.rows)
            for (column, what), (rows, values) in self._problems.items()
        ]

    def raise_problems(self, source: str) -> None:
        if not self._problems and self.rows > 0:
            return
        issues = ["no data rows"] if self.rows == 0 else []
        issues += [problem.describe() for problem in self.problems()]
        raise validation_error(source, self.spec, issues)

    def output_columns(self) -> list[str]:
        return [
            *self.id_cols,
            *self.derived,
            *OUTPUT_COLUMNS,
            *([REASONS_COLUMN] if self.explain else []),
        ]


def _matrix(
    columns: dict[str, pa.Array], names: list[str], dtype: type[np.floating], rows: int
) -> np.ndarray:
    """The checked feature columns as one matrix in the model's order: column-major, each
    column written in one contiguous pass (XGBoost makes its own C-ordered copy: no loss)."""
    X = np.empty((rows, len(names)), dtype=dtype, order="F")
    for j, name in enumerate(names):
        X[:, j] = columns[name].to_numpy(zero_copy_only=False)
    return X


class _Timer:
    def __init__(self, timings: dict[str, float], key: str) -> None:
        self.timings, self.key = timings, key

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.key] += time.perf_counter() - self.started


# ---- writing ---------------------------------------------------------------------------------


class ScoredSink:
    """Appends scored chunks to a temporary file beside the output; renamed over it at the end."""

    def __init__(self, target: Path, fmt: OutputFormat) -> None:
        self.target = target
        self.fmt = fmt
        # Same folder as the target, so the final rename is atomic (one filesystem).
        self.temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None
        self._done = False

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = self._open(table.schema)
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter | pa_csv.CSVWriter:
        if self.fmt == "parquet":
            # Dictionary pages only where values repeat (tiers, model name and version): trying
            # them on unique ids and falling back cost a third of the write; the ids are unique
            # text whose min/max statistics prune nothing.
            repeated = [
                n for n in ("risk_tier", "model_name", "model_version") if n in schema.names
            ]
            stats = [f.name for f in schema if f.name in repeated or not pa.types.is_string(f.type)]
            return pq.ParquetWriter(
                self.temp, schema, use_dictionary=repeated, write_statistics=stats
            )
        return pa_csv.CSVWriter(self.temp, schema)

    def commit(self) -> None:
        if self._writer is None:
            raise ValidationError("nothing to write: the input has no data rows")
        self._writer.close()
        self._writer = None
        fd = os.open(self.temp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(self.temp, self.target)
        self._done = True

    def discard(self) -> None:
        if self._done:
            return
        if self._writer is not None:
            with contextlib.suppress(pa.ArrowException, OSError):
                self._writer.close()
            self._writer = None
        self.temp.unlink(missing_ok=True)
