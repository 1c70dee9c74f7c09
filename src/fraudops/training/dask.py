"""Training's primitives on the Dask engine: those of training/local.py, over partitions, for
data no single process has to hold (the sequence calling them is training/pipeline.py).

- the time split is pushed into the scans (training/dask_split.py): the cut timestamps come from
  the timestamp column alone, then each slice is ``read_dask`` with its own row filter;
- a spec's derived features are computed over the whole table from partitions shuffled by key
  (training/dask_derived.py), then the slices are cut from it;
- features are built per partition (``feature_matrix`` on each, on its worker);
- XGBoost trains with ``xgboost.dask`` on ``DaskQuantileDMatrix`` (validation binned with
  ``ref=train``), early stopping on the validation slice, the local trainer's booster parameters
  (``scale_pos_weight`` from the partitions' counts) and the same portable model and manifest;
- validation and holdout scores are predicted over partitions; only the (score, label) pairs
  are gathered — two numbers a row of the smaller slices — for the pipeline's threshold choice
  and evaluation, exactly as locally;
- the champion scores the same holdout over partitions;
- the drift reference profile comes from merged per-partition value counts
  (training/dask_profile.py).

A retrain (``retrain_as_of``) assembles its data as the local engine does
(training/retrain_data.py, in this process: the labelled window, and the latest
``retrain.base_rows`` lake rows — only those read, the cut found over partitions) and trains and
evaluates it on the cluster. Logistic regression + SMOTE stays local: refused here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.errors import ConfigError
from fraudops.lake.dask_io import read_dask
from fraudops.models.portable import ScoringModel, load_model_dir
from fraudops.progress import Reporter
from fraudops.spec import FeatureSpec
from fraudops.training.dask_derived import derive_dask
from fraudops.training.dask_profile import SummaryReference, summarize_reference
from fraudops.training.dask_split import dask_time_split, latest_rows
from fraudops.training.derived_rows import training_columns
from fraudops.training.evaluation import SliceContext, context_columns, context_of
from fraudops.training.features import feature_matrix, label_vector
from fraudops.training.outcome import SLICES, SplitStats
from fraudops.training.retrain_data import RetrainSummary, build_retrain_data
from fraudops.training.trainers import xgboost_model, xgboost_params

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from fraudops.compute.dask_engine import DaskEngine
    from fraudops.config import Settings
    from fraudops.lake.catalog import Lake

DASK_TRAINERS = ("xgboost",)
LABEL = "__label"
WEIGHT = "__weight"


def check_dask_trainer(trainer: str) -> None:
    if trainer not in DASK_TRAINERS:
        raise ConfigError(
            f"trainer {trainer!r} (logistic regression + SMOTE) runs on the local engine only: "
            "SMOTE needs every fraud row and its neighbours in one process. Use --engine local, "
            "or --trainer xgboost (training.trainer) on the Dask engine"
        )


class DaskTraining:
    """The Dask backend (training/backend.py's ``TrainingBackend``) on ``engine``'s cluster,
    reached or started only when a split is asked for."""

    def __init__(self, engine: DaskEngine, settings: Settings, spec: FeatureSpec, lake: Lake):
        self.engine, self.settings, self.spec, self.lake = engine, settings, spec, lake

    def check_trainer(self, trainer: str) -> None:
        check_dask_trainer(trainer)

    def split(self, retrain_as_of: datetime | None, progress: Reporter) -> DaskSlices:
        client, settings, spec, lake = self.engine.client, self.settings, self.spec, self.lake
        cfg = settings.training
        if retrain_as_of is not None:
            with progress.step("Loading lake rows and labelled predictions"):
                data = build_retrain_data(
                    settings,
                    spec,
                    lake,
                    as_of=retrain_as_of,
                    # The lake rows: only the latest retrain.base_rows are read, not the table.
                    base_rows=lambda limit, columns: latest_rows(
                        client, lake, spec, limit, columns
                    ),
                )
                return DaskSlices(
                    client,
                    settings,
                    spec,
                    _from_frames(client, data.split.slices(), data.train_weight, settings, spec),
                    data.split.stats(spec.label_column),
                    True,
                    data.summary,
                )
        with progress.step("Splitting by time"):
            split = dask_time_split(
                client,
                lake,
                spec,
                validation_fraction=cfg.validation_fraction,
                holdout_fraction=cfg.holdout_fraction,
            )
            columns = training_columns(spec)
            if not spec.derived:
                frames = {
                    name: read_dask(
                        lake,
                        "transactions",
                        columns=columns,
                        row_filter=split.row_filter(name, spec.timestamp_column),
                    )
                    for name in SLICES
                }
                return DaskSlices(client, settings, spec, frames, split.stats, False, None)
        with progress.step("Deriving features"):
            frames = _derived_slices(client, lake, spec, columns, split.cuts)
        return DaskSlices(client, settings, spec, frames, split.stats, False, None)


@dataclass(frozen=True)
class DaskSlices:
    """The three slices as Dask dataframes of raw rows (``WEIGHT`` added in a retrain)."""

    client: Client
    settings: Settings
    spec: FeatureSpec
    frames: dict[str, dd.DataFrame]
    stats: SplitStats
    weighted: bool
    retrain: RetrainSummary | None

    def features(self) -> DaskMatrices:
        matrices = {
            name: frame.map_partitions(
                _features, self.spec, self.weighted, meta=_meta(self.spec, self.weighted)
            )
            for name, frame in self.frames.items()
        }
        return DaskMatrices(self, matrices)


@dataclass(frozen=True)
class DaskMatrices:
    source: DaskSlices
    matrices: dict[str, dd.DataFrame]

    def fit(self, trainer: str) -> ScoringModel:
        check_dask_trainer(trainer)
        s = self.source
        return _train_xgboost(s.client, s.settings, s.spec, self.matrices, s)

    def predict(self, model: ScoringModel, name: str) -> tuple[np.ndarray, np.ndarray]:
        return _scores(self.source.client, model, self.matrices[name], self.source.spec)

    def context(self, name: str) -> SliceContext:
        frame = self.source.frames[name]
        columns = [c for c in context_columns(self.source.spec) if c in frame.columns]
        return context_of(frame[columns].compute(), self.source.spec)

    def champion_scores(self, model: ScoringModel, features: Sequence[str]) -> np.ndarray:
        """The raw holdout scored over its partitions (the other model's own feature list)."""
        scores = (
            self.source.frames["holdout"]
            .map_partitions(
                _score_part, _Shipped.of(model), list(features), meta=pd.Series(dtype=float)
            )
            .compute()
        )
        return np.asarray(scores, dtype=np.float64)

    def reference(self, name: str) -> SummaryReference:
        return summarize_reference(self.source.client, self.source.frames[name], self.source.spec)


def _derived_slices(
    client: Client, lake: Lake, spec: FeatureSpec, columns: list[str], cuts: tuple[Any, Any]
) -> dict[str, dd.DataFrame]:
    """The slices with their derived features, computed over the whole table (a holdout row's
    windows reach into the training rows before it) and persisted once on the workers."""
    whole = derive_dask(read_dask(lake, "transactions", columns=columns), spec)
    whole = client.persist(whole)
    times = whole[spec.timestamp_column]
    first, second = cuts
    return {
        "train": whole[times < first],
        "validation": whole[(times >= first) & (times < second)],
        "holdout": whole[times >= second],
    }


def _from_frames(
    client: Client,
    frames: dict[str, pd.DataFrame],
    weight: np.ndarray | None,
    settings: Settings,
    spec: FeatureSpec,
) -> dict[str, dd.DataFrame]:
    """A retrain's in-memory slices as Dask dataframes: chunks of ``compute.partition_rows``
    rows scattered to the workers (not embedded in the task graph)."""
    import dask.dataframe as dd

    out = {}
    step = settings.compute.partition_rows
    for name, frame in frames.items():
        frame = frame.assign(
            **{WEIGHT: weight if name == "train" and weight is not None else 1.0}
        ).reset_index(drop=True)
        chunks = [frame.iloc[i : i + step] for i in range(0, max(len(frame), 1), step)]
        out[name] = dd.from_delayed(client.scatter(chunks, hash=False), meta=frame.iloc[:0])
    return out


def _meta(spec: FeatureSpec, weighted: bool) -> pd.DataFrame:
    columns: dict[str, Any] = {name: pd.Series(dtype=np.float32) for name in spec.feature_names}
    columns[LABEL] = pd.Series(dtype=np.int8)
    if weighted:
        columns[WEIGHT] = pd.Series(dtype=np.float64)
    return pd.DataFrame(columns)


def _features(frame: pd.DataFrame, spec: FeatureSpec, weighted: bool) -> pd.DataFrame:
    """One partition's model inputs: the feature matrix (validated), the label, the weight.

    float32: what XGBoost stores and splits on anyway (a float64 matrix is cast to it inside),
    at half the memory the workers hold during training."""
    out = pd.DataFrame(
        feature_matrix(frame, spec.feature_names, dtype=np.float32), columns=spec.feature_names
    )
    out[LABEL] = label_vector(frame, spec) if len(frame) else np.zeros(0, dtype=np.int8)
    if weighted:
        out[WEIGHT] = frame[WEIGHT].to_numpy(dtype=np.float64)
    return out


def _train_xgboost(
    client: Client,
    settings: Settings,
    spec: FeatureSpec,
    matrices: dict[str, dd.DataFrame],
    slices: DaskSlices,
) -> ScoringModel:
    import dask
    import xgboost.dask as dxgb

    cfg = settings.training
    names = list(spec.feature_names)
    train, val = matrices["train"], matrices["validation"]
    weight = train[WEIGHT] if slices.weighted else None
    if weight is None:  # the class balance from the split's counts: no extra pass
        s = slices.stats.slices["train"]
        positives, total = float(s.positives), float(s.rows)
    else:  # as the weighted rows see it
        positives, total = dask.compute(weight[train[LABEL] == 1].sum(), weight.sum())
    params = xgboost_params(cfg.xgboost, cfg.seed, positives=float(positives), total=float(total))
    # Each worker trains with its own threads (compute.threads_per_worker), not the client's.
    booster_params = {k: v for k, v in params.items() if k != "nthread"}
    dtrain = dxgb.DaskQuantileDMatrix(client, train[names], train[LABEL], weight=weight)
    dval = dxgb.DaskQuantileDMatrix(client, val[names], val[LABEL], ref=dtrain)
    trained = dxgb.train(
        client,
        booster_params,
        dtrain,
        num_boost_round=cfg.xgboost.n_estimators,
        evals=[(dval, "validation")],
        early_stopping_rounds=cfg.xgboost.early_stopping_rounds or None,
        verbose_eval=False,
    )
    booster = trained["booster"]
    # Trained on named columns; the portable model scores bare matrices in manifest order.
    booster.feature_names = None
    booster.feature_types = None
    return xgboost_model(booster, params, cfg.xgboost, cfg.seed, names, spec.name)


def _scores(
    client: Client, model: ScoringModel, matrix: dd.DataFrame, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """The slice's scores, computed on the workers partition by partition, and its labels."""
    shipped = _Shipped.of(model)
    scores = matrix.map_partitions(
        _score_part, shipped, list(spec.feature_names), meta=pd.Series(dtype=np.float64)
    )
    # Gathered: a (score, label) pair per validation/holdout row is small enough for the
    # threshold choice and the rank metrics, which need all pairs at once.
    s, y = client.compute([scores, matrix[LABEL]], sync=True)
    return np.asarray(s, dtype=np.float64), np.asarray(y).astype(np.int8)


def _score_part(frame: pd.DataFrame, shipped: _Shipped, names: list[str]) -> pd.Series:
    if frame.empty:
        return pd.Series(np.zeros(0), index=frame.index, dtype=np.float64)
    X = feature_matrix(frame, names)
    return pd.Series(shipped.model().predict_proba(X), index=frame.index, dtype=np.float64)


@dataclass(frozen=True)
class _Shipped:
    """A portable model as the files it saves to: pickles to a worker, loads there."""

    files: dict[str, bytes]

    @classmethod
    def of(cls, model: ScoringModel) -> _Shipped:
        with tempfile.TemporaryDirectory(prefix="fraudops-model-") as tmp:
            model.save(Path(tmp))
            return cls({p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()})

    def model(self) -> ScoringModel:
        with tempfile.TemporaryDirectory(prefix="fraudops-model-") as tmp:
            for name, data in self.files.items():
                (Path(tmp) / name).write_bytes(data)
            return load_model_dir(tmp)
