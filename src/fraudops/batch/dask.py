"""Batch scoring on a Dask cluster: `fraudops score --engine dask`.

The client plans the input (batch/sources.py: Parquet footers or the lake's scan plan), loads the
version once to check it, and broadcasts its saved bytes to every worker; each worker builds the
scorer once per version (a cache keyed by name, version and the model's hash: the XGBoost path
through its compiled forest, as locally, else XGBoost's predictor) and scores its partitions with
the local path's own code (``fraudops.batch.local.ChunkScoring``), so the numbers, the checks and
the output columns are the local path's.

Nothing partial appears. A Parquet folder is written by the workers into a temporary folder beside
the output, renamed into place once every partition was clean. The lake output (``predictions``)
takes two passes: the first validates, scores and counts without writing; only a clean input is
scored again into ``append_dask``'s single commit (twice the scoring, no staging area the workers
would have to share).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.batch.local import (
    CHUNK_ROWS,
    OUTPUT_COLUMNS,
    REASONS_COLUMN,
    ChunkScoring,
    ScoredSink,
    ScoreReport,
    check_model_features,
    predictor_name,
    with_compiled_forest,
)
from fraudops.batch.reader import id_columns
from fraudops.batch.sources import (
    LAKE_OUTPUT_TABLE,
    LAKE_PREFIX,
    FolderOutput,
    Segment,
    lake_table,
    plan_parquet,
)
from fraudops.batch.worker_models import ModelShipment, worker_scorer
from fraudops.config import Settings
from fraudops.errors import ValidationError
from fraudops.ids import uuid7
from fraudops.lake.validation import MAX_SHOWN, Problem, header_problems, validation_error
from fraudops.progress import Reporter
from fraudops.registry.loading import load_model
from fraudops.scoring import Scorer
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from dask.delayed import Delayed
    from distributed import Client

    from fraudops.lake import Lake

log = logging.getLogger(__name__)


# ---- one partition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreJob:
    spec: FeatureSpec
    id_columns: list[str]
    explain: bool
    chunk_rows: int = CHUNK_ROWS

    @property
    def columns(self) -> list[str]:
        return [*self.id_columns, *self.spec.feature_names]

    def output_columns(self) -> list[str]:
        reasons = [REASONS_COLUMN] if self.explain else []
        return [*self.id_columns, *OUTPUT_COLUMNS, *reasons]


@dataclass(frozen=True)
class Found:
    """A problem of one piece of input: ``source`` a file (None: the lake scan), ``offset`` the
    row of that source the piece starts at (None: the partition's, known once all are counted)."""

    source: str | None
    offset: int | None
    problem: Problem


@dataclass
class PartResult:
    index: int
    rows: int = 0
    predicted_fraud: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    found: list[Found] = field(default_factory=list)
    predictor: str = "model"
    timings: dict[str, float] = field(default_factory=dict)


def _pieces(
    data: Sequence[Segment] | pd.DataFrame, job: ScoreJob
) -> list[tuple[str | None, int | None, pa.Table]]:
    """The partition's input as tables, each with the source and row its rows count from."""
    if isinstance(data, pd.DataFrame):
        return [(None, None, pa.Table.from_pandas(data, preserve_index=False))]
    pieces: list[tuple[str | None, int | None, pa.Table]] = []
    for seg in data:
        try:
            table = pq.ParquetFile(seg.path).read_row_groups(
                list(seg.row_groups), columns=job.columns
            )
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(
                f"cannot read {seg.path} as PARQUET: {exc} (nothing was written)"
            ) from None
        pieces.append((seg.path, seg.first_row, table))
    return pieces


Emit = Callable[[pa.Table, pa.Table], None]


def _score_pieces(
    ship: ModelShipment,
    job: ScoreJob,
    data: Sequence[Segment] | pd.DataFrame,
    index: int,
    emit: Emit | None = None,
) -> PartResult:
    """The partition's counts and problems; each (input chunk, scored chunk) is handed to
    ``emit`` as it is scored, until the first problem (memory: a chunk, not the partition)."""
    scorer = worker_scorer(ship)
    result = PartResult(index, predictor=predictor_name(scorer))
    for path, offset, table in _pieces(data, job):
        run = ChunkScoring(job.spec, scorer, job.id_columns, job.explain)
        for start in range(0, table.num_rows, job.chunk_rows):
            chunk = table.slice(start, job.chunk_rows)
            out = run.process(chunk)
            if out is not None and not result.found and emit is not None:
                emit(chunk, out)
        result.rows += run.rows
        result.predicted_fraud += run.predicted_fraud
        result.tiers.update(run.tiers)
        for key, value in run.timings.items():
            result.timings[key] = result.timings.get(key, 0.0) + value
        result.found += [Found(path, offset, p) for p in run.problems()]
    return result


def score_to_folder(
    ship: ModelShipment,
    job: ScoreJob,
    data: Sequence[Segment] | pd.DataFrame,
    index: int,
    path: str,
) -> PartResult:
    """Score one partition into ``path`` (a file of the temporary folder): no file when the
    partition has a problem or no row."""
    sink = ScoredSink(Path(path), "parquet")
    written = 0.0

    def write(_: pa.Table, scored: pa.Table) -> None:
        nonlocal written
        started = time.perf_counter()
        sink.write(scored)
        written += time.perf_counter() - started

    try:
        result = _score_pieces(ship, job, data, index, write)
        if not result.found and result.rows:
            sink.commit()
        result.timings["write"] = result.timings.get("write", 0.0) + written
    finally:
        sink.discard()  # a no-op after the commit
    return result


def count_only(
    ship: ModelShipment, job: ScoreJob, data: Sequence[Segment] | pd.DataFrame, index: int
) -> PartResult:
    """The first pass of the lake output: checks and counts, nothing written."""
    return _score_pieces(ship, job, data, index)


def predictions_frame(
    ship: ModelShipment,
    job: ScoreJob,
    data: Sequence[Segment] | pd.DataFrame,
    index: int,
    request_time: dt.datetime,
) -> pd.DataFrame:
    """One clean partition as rows of ``predictions`` (its features, its scores, new ids)."""
    frames: list[pd.DataFrame] = []

    def collect(chunk: pa.Table, scored: pa.Table) -> None:
        frame = scored.to_pandas()
        for name in job.spec.feature_names:
            frame[name] = chunk.column(name).to_numpy(zero_copy_only=False)
        frames.append(frame)

    if _score_pieces(ship, job, data, index, collect).found:
        # The first pass saw none: the input changed between the passes.
        raise ValidationError(f"partition {index} no longer validates: nothing was written")
    if not frames:
        return pd.DataFrame()
    from fraudops.lake.schemas import AMOUNT, amount_copied

    scorer = worker_scorer(ship)
    frame = pd.concat(frames, ignore_index=True)
    renames = {job.spec.id_column: "transaction_id", job.spec.customer_column: "customer_id"}
    frame = frame.rename(columns={k: v for k, v in renames.items() if k and k in frame})
    frame.insert(0, "inference_id", [uuid7(request_time) for _ in range(len(frame))])
    frame["request_time"] = pd.Timestamp(request_time)
    frame["run_id"] = scorer.run_id
    frame["threshold"] = scorer.threshold
    # As the server logs it: the spec's amount feature copied to `amount` (ULB has none).
    if job.spec.amount_column and amount_copied(job.spec):
        frame[AMOUNT] = frame[job.spec.amount_column]
    return frame


# ---- the job ---------------------------------------------------------------------------------


@dataclass
class _Totals:
    rows: int = 0
    predicted_fraud: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    predictors: set[str] = field(default_factory=set)
    results: list[PartResult] = field(default_factory=list)

    def add(self, result: PartResult) -> None:
        self.results.append(result)
        self.rows += result.rows
        self.predicted_fraud += result.predicted_fraud
        self.tiers.update(result.tiers)
        self.predictors.add(result.predictor)
        for key, value in result.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value


def score_dask(
    client: Client,
    settings: Settings,
    spec: FeatureSpec,
    source: str,
    target: str,
    *,
    lake_factory: Callable[[], Lake],
    version: str | None = None,
    explain: bool = False,
    progress: Reporter | None = None,
) -> ScoreReport:
    """Score ``source`` (a Parquet folder, a glob, a file or ``lake:<table>``) into ``target``
    (a Parquet folder or ``lake:predictions``) on the cluster of ``client``; a lake read or
    written is opened by ``lake_factory`` and closed here."""
    started = time.perf_counter()
    reporter = progress or Reporter()
    out_table = lake_table(target)
    if out_table is not None and out_table != LAKE_OUTPUT_TABLE:
        raise ValidationError(
            f"cannot write {target}: the lake output is the table of scores, "
            f"{LAKE_PREFIX}{LAKE_OUTPUT_TABLE}"
        )
    import dask

    lake: Lake | None = None
    folder: FolderOutput | None = None
    try:
        lake, job, parts, total, inputs = _plan(
            lake_factory, settings, spec, source, out_table, explain
        )
        folder = None if out_table is not None else FolderOutput.prepare(target, inputs)
        predictions_columns = lake.column_names(LAKE_OUTPUT_TABLE) if lake and out_table else []
        with reporter.step("Loading model"):
            loaded = with_compiled_forest(load_model(settings, spec, version), settings)
            check_model_features(Scorer(loaded, (), flat_forest=False), spec)
            ship = client.scatter(ModelShipment.of(loaded, settings), broadcast=True, hash=False)
        if folder is not None:
            tasks = [
                dask.delayed(score_to_folder, pure=False)(ship, job, p, i, folder.part_path(i))
                for i, p in enumerate(parts)
            ]
        else:
            tasks = [
                dask.delayed(count_only, pure=False)(ship, job, p, i) for i, p in enumerate(parts)
            ]
        totals = _run(client, tasks, reporter, f"Scoring {source}", total)
        # A table's rows have no file order: numbered as the scan reads them.
        label = f"{source} (rows in scan order)" if lake_table(source) else source
        _raise_problems(label, spec, totals, parts)
        if folder is not None:
            with reporter.step("Writing output"):
                folder.commit()
        else:
            assert lake is not None
            with reporter.step(f"Appending to {lake.namespace}.{LAKE_OUTPUT_TABLE}"):
                _append_predictions(lake, ship, job, parts)
    finally:
        if folder is not None:
            folder.discard()  # a no-op after the commit
        if lake is not None:
            lake.close()
    seconds = time.perf_counter() - started
    return ScoreReport(
        input=source,
        output=target,
        spec=spec.name,
        model_name=loaded.name,
        model_version=loaded.version,
        rows=totals.rows,
        columns=job.output_columns() if out_table is None else predictions_columns,
        predicted_fraud=totals.predicted_fraud,
        fraud_share=totals.predicted_fraud / totals.rows if totals.rows else 0.0,
        risk_tiers={
            t.name: totals.tiers.get(t.name, 0)
            for t in sorted(settings.serving.risk_tiers, key=lambda t: t.min_probability)
        },
        explain=explain,
        predictor="compiled" if totals.predictors == {"compiled"} else "model",
        seconds=seconds,
        rows_per_s=totals.rows / seconds if seconds > 0 else 0.0,
        timings={
            **{k: v for k, v in reporter.timings.items() if k == "Loading model"},
            **totals.timings,  # summed over the workers' partitions
        },
    )


def _plan(
    lake_factory: Callable[[], Lake],
    settings: Settings,
    spec: FeatureSpec,
    source: str,
    out_table: str | None,
    explain: bool,
) -> tuple[Lake | None, ScoreJob, list[Any], int | None, list[Path]]:
    """(the lake when one is read or written, the job, one item per partition, the rows to
    score when known, the input files)."""
    table = lake_table(source)
    limit = settings.compute.partition_rows
    if table is None:
        plan = plan_parquet(source, spec, limit)
        job = ScoreJob(spec, plan.id_columns, explain)
        lake = lake_factory() if out_table is not None else None
        folders = [Path(source)] if Path(source).is_dir() else []
        return lake, job, list(plan.parts), plan.total_rows, [*plan.files, *folders]
    from fraudops.lake.dask_io import read_dask
    from fraudops.lake.schemas import transaction_id_column

    lake = lake_factory()
    try:
        columns = lake.column_names(table)
        if issues := header_problems(columns, spec.feature_names, what="feature column"):
            raise validation_error(f"{LAKE_PREFIX}{table}", spec, issues)
        # The lake's key (generated when the spec has none) and the customer, as stored.
        keys = dict.fromkeys([transaction_id_column(spec), *id_columns(spec)])
        job = ScoreJob(spec, [c for c in keys if c in columns], explain)
        frame = read_dask(lake, table, columns=job.columns, partition_rows=limit)
        return lake, job, list(frame.to_delayed()), lake.count(table), []
    except BaseException:
        lake.close()
        raise


def _run(
    client: Client, tasks: list[Delayed], reporter: Reporter, label: str, total: int | None
) -> _Totals:
    from distributed import as_completed

    totals = _Totals()
    futures = client.compute(tasks)
    try:
        with reporter.step(label, total=total) as bar:
            for future in as_completed(futures):
                result = future.result()
                totals.add(result)
                bar.advance(result.rows)
    except BaseException:
        client.cancel(futures)
        raise
    totals.results.sort(key=lambda r: r.index)
    return totals


def _raise_problems(source: str, spec: FeatureSpec, totals: _Totals, parts: list[Any]) -> None:
    """Every problem of the whole input, merged per (file, column, fault) with the file's row
    numbers (a lake table's: rows in scan order), as the local path reports a file's."""
    if totals.rows == 0:
        raise validation_error(source, spec, ["no data rows"])
    if not any(r.found for r in totals.results):
        return
    merged: dict[tuple[str | None, str, str], tuple[list[np.ndarray], list[Any]]] = {}
    start = 0
    for result in totals.results:
        for found in result.found:
            offset = found.offset if found.offset is not None else start
            p = found.problem
            rows, values = merged.setdefault((found.source, p.column, p.what), ([], []))
            rows.append(p.rows + offset)
            if len(values) < MAX_SHOWN:
                values.extend(list(p.values)[: MAX_SHOWN - len(values)])
        start += result.rows
    sizes = _source_rows(parts, totals.rows)
    issues = []
    for (where, column, what), (rows, values) in merged.items():
        rows_all = np.sort(np.concatenate(rows))
        problem = Problem(column, what, rows_all, values, total=sizes.get(where, totals.rows))
        issues.append(f"{where}: {problem.describe()}" if where else problem.describe())
    raise validation_error(source, spec, issues)


def _source_rows(parts: list[Any], total: int) -> dict[str | None, int]:
    sizes: dict[str | None, int] = {None: total}
    for part in parts:
        if isinstance(part, tuple):
            for seg in part:
                sizes[seg.path] = sizes.get(seg.path, 0) + seg.rows
    return sizes


def _append_predictions(lake: Lake, ship: Any, job: ScoreJob, parts: list[Any]) -> None:
    """The second pass: the clean input scored again into ``predictions``, one commit."""
    import dask
    import dask.dataframe as dd

    from fraudops.lake.dask_io import append_dask

    request_time = dt.datetime.now(dt.UTC)
    frames = [
        dask.delayed(predictions_frame, pure=False)(ship, job, part, i, request_time)
        for i, part in enumerate(parts)
    ]
    # Each partition is conformed to the table by append_dask's writer: no meta to agree on.
    meta = pd.DataFrame({"inference_id": pd.Series(dtype=object)})
    scored = dd.from_delayed(frames, meta=meta, verify_meta=False)
    written = append_dask(lake, LAKE_OUTPUT_TABLE, scored)
    log.info("appended %d scored rows to %s.%s", written, lake.namespace, LAKE_OUTPUT_TABLE)
