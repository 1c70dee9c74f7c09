"""The data of a retrain: the lake's training rows plus the labelled predictions of a recent window.

Labels are joined on read (the latest label of each prediction known at ``as_of``), and only
*mature* prediction days count — days whose label coverage reached ``labels.mature_coverage``.
An immature day holds mostly the quick fraud confirmations (fraud is confirmed in 1-7 days,
legitimate transactions in 1-30), so its labelled rows would teach and judge a model on a fraud
rate several times the real one.

The slices, oldest first:
- train: the lake's rows (the latest ``retrain.base_rows``, or all) then the older mature
  labelled predictions, weighted ``retrain.recent_weight`` against a lake row;
- validation (threshold, early stopping): the latest ``training.validation_fraction`` of those;
- holdout: the mature labelled predictions of the latest ``retrain.holdout_days`` mature days —
  the recent traffic on which the challenger and the champion are both judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.labels.window import mature_labelled, read_window
from fraudops.lake.catalog import Lake
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc
from fraudops.training.derived_rows import training_columns, with_derived_features
from fraudops.training.split import TimeSplit

LABELLED_ID = "inference_id"


class NotEnoughLabels(FraudopsError):
    """Too few mature labelled predictions to retrain on (or to judge a challenger with)."""

    exit_code = 5


@dataclass(frozen=True)
class RetrainSummary:
    """What a retrain trained and was judged on (MLflow params ``retrain.*``, model_events)."""

    as_of: str
    window_days: int
    lake_rows: int
    labelled_rows: int
    labelled_train_rows: int
    mature_days: int
    holdout_days: int
    holdout_rows: int
    holdout_positives: int
    holdout_start: str  # the first mature day of the holdout (YYYY-MM-DD)
    holdout_end: str
    recent_weight: float
    half_life_days: float | None
    effective_lake_weight: float
    effective_labelled_weight: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RetrainData:
    split: TimeSplit
    train_weight: np.ndarray | None
    summary: RetrainSummary


def build_retrain_data(
    settings: Settings,
    spec: FeatureSpec,
    lake: Lake,
    *,
    as_of: datetime,
    base_rows: Callable[[int | None, list[str]], pd.DataFrame] | None = None,
) -> RetrainData:
    """``base_rows(limit, columns)`` reads the latest ``limit`` lake rows (None: all) in time
    order, as ``latest_lake_rows`` does (an engine may read them its own way)."""
    cfg = settings.retrain
    recent = mature_labelled_predictions(
        settings, spec, lake, start=as_of - timedelta(days=cfg.window_days), end=as_of
    )
    if recent.empty:
        raise NotEnoughLabels(
            f"no mature labelled predictions in the {cfg.window_days} days before "
            f"{as_of:%Y-%m-%d %H:%M} (labels.mature_coverage {settings.labels.mature_coverage}): "
            "nothing to judge a challenger on"
        )
    days = np.sort(recent["_day"].unique())
    holdout_days = set(days[-cfg.holdout_days :])
    in_holdout = recent["_day"].isin(holdout_days).to_numpy()
    holdout, older = recent[in_holdout], recent[~in_holdout]
    positives = int(holdout[spec.label_column].sum())
    if positives < cfg.min_holdout_positives:
        raise NotEnoughLabels(
            f"the recent holdout ({len(holdout)} mature labelled predictions of "
            f"{len(holdout_days)} days) holds {positives} frauds, fewer than "
            f"retrain.min_holdout_positives = {cfg.min_holdout_positives}"
        )
    base = _base_rows(settings, spec, lake, base_rows)
    pool = pd.concat([base, older], ignore_index=True)
    weights = np.concatenate(
        [
            _decay(settings, _ages(base[spec.timestamp_column], spec, as_of)),
            cfg.recent_weight * _decay(settings, _ages(older[spec.timestamp_column], spec, as_of)),
        ]
    )
    n_val = max(1, round(len(pool) * settings.training.validation_fraction))
    if len(pool) - n_val < 1:
        raise NotEnoughLabels(f"only {len(pool)} training rows: nothing left after validation")
    train, validation = pool.iloc[:-n_val], pool.iloc[-n_val:]
    for name, part in (("train", train), ("validation", validation), ("holdout", holdout)):
        if part[spec.label_column].nunique() < 2:
            raise NotEnoughLabels(f"the retrain's {name} slice holds one class only")
    columns = list(dict.fromkeys([*spec.feature_names, spec.label_column, spec.timestamp_column]))
    split = TimeSplit(
        train=train[columns].reset_index(drop=True),
        validation=validation[columns].reset_index(drop=True),
        holdout=holdout[columns].reset_index(drop=True),
        timestamp_column=spec.timestamp_column,
    )
    train_weight = weights[: len(train)]
    summary = RetrainSummary(
        as_of=as_of.isoformat(),
        window_days=cfg.window_days,
        lake_rows=len(base),
        labelled_rows=len(recent),
        labelled_train_rows=max(0, len(train) - len(base)),
        mature_days=len(days),
        holdout_days=len(holdout_days),
        holdout_rows=len(holdout),
        holdout_positives=positives,
        holdout_start=str(min(holdout_days)),
        holdout_end=str(max(holdout_days)),
        recent_weight=cfg.recent_weight,
        half_life_days=cfg.half_life_days,
        effective_lake_weight=round(float(weights[: len(base)].sum()), 1),
        effective_labelled_weight=round(float(weights[len(base) : len(train)].sum()), 1),
    )
    return RetrainData(split, train_weight, summary)


def mature_labelled_predictions(
    settings: Settings, spec: FeatureSpec, lake: Lake, *, start: datetime, end: datetime
) -> pd.DataFrame:
    """Predictions of (start, end] with their latest label known at ``end``, mature days only,
    in time order, shaped like training rows (features, label, timestamp) plus ``_day``."""
    window = read_window(lake, spec, start=start, end=end, columns=["transaction_id"])
    if window.predictions.empty:
        return window.predictions.assign(_day=pd.Series(dtype=str))
    # The rows monitoring measures: labelled, in prediction days whose coverage is mature.
    keep = mature_labelled(window.joined(), as_of=end, min_coverage=settings.labels.mature_coverage)
    keep = keep.rename(columns={"day": "_day"})
    # Requests of one batch share a request time: the transaction id orders them the same way
    # every time (inference ids are random), so a retrain on the same data is the same model.
    out = keep.sort_values(
        ["request_time", "transaction_id", LABELLED_ID], kind="stable", na_position="last"
    ).reset_index(drop=True)
    out[spec.label_column] = out["label"].astype(np.int64)
    out[spec.timestamp_column] = out["request_time"]
    columns = [*spec.feature_names, spec.label_column, spec.timestamp_column, "_day"]
    return out[list(dict.fromkeys(columns))]


def _ages(times: pd.Series, spec: FeatureSpec, as_of: datetime) -> np.ndarray:
    """Age in days of each row at ``as_of``; unknown (infinite) for a spec whose timestamps are
    seconds from the data's own start, like ULB's."""
    if spec.timestamp_kind != "datetime" or times.empty:
        return np.full(len(times), np.inf)
    stamps = pd.to_datetime(times, utc=True)
    return np.asarray((pd.Timestamp(as_utc(as_of)) - stamps).dt.total_seconds() / 86_400.0)


def _decay(settings: Settings, ages: np.ndarray) -> np.ndarray:
    """Recency weights: a row ``half_life_days`` old weighs half, never below ``min_weight``
    (the lake's history stays a prior while recent labels are few)."""
    cfg = settings.retrain
    if cfg.half_life_days is None:
        return np.ones(len(ages))
    return np.maximum(cfg.min_weight, 0.5 ** (np.maximum(ages, 0.0) / cfg.half_life_days))


def _base_rows(
    settings: Settings,
    spec: FeatureSpec,
    lake: Lake,
    reader: Callable[[int | None, list[str]], pd.DataFrame] | None,
) -> pd.DataFrame:
    limit = settings.retrain.base_rows
    columns = list(dict.fromkeys([*spec.feature_names, spec.label_column, spec.timestamp_column]))
    if limit == 0:
        return pd.DataFrame(columns=columns)
    if spec.derived:
        # The derived features of the latest rows read the history before them: every row is
        # read and derived here, on any engine, then the latest kept.
        raw = lake.read_frame("transactions", columns=training_columns(spec))
        return latest_lake_rows(with_derived_features(raw, spec)[columns], spec, limit)
    if reader is not None:
        return reader(limit, columns)
    return latest_lake_rows(lake.read_frame("transactions", columns=columns), spec, limit)


def latest_lake_rows(frame: pd.DataFrame, spec: FeatureSpec, limit: int | None) -> pd.DataFrame:
    """The latest ``limit`` rows of ``frame`` (None: all) in time order (ties in read order)."""
    frame = frame.sort_values(spec.timestamp_column, kind="stable")
    if limit is not None:
        frame = frame.iloc[-limit:]
    return frame.reset_index(drop=True)
