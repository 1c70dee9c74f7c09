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

**Fresh labels** (``retrain.fresh_labels``): the labels already confirmed on the days after the
last mature one — mostly frauds, confirmed within days, and the legitimate rows confirmed early.
After a concept drift they are the only rows that show the new fraud for weeks, so they are split
by a hash of the transaction id: ``retrain.fresh_holdout_share`` joins the holdout (the challenger
must prove it catches the new fraud, and the champion is judged on it too), the rest joins
training weighted ``retrain.fresh_weight`` on top of the recency weight. Those rows hold more
fraud than the traffic (their legitimate labels are still coming): a ranking (ROC-AUC) compares
both models fairly on them, while figures that depend on the fraud rate (PR-AUC, precision) read
higher than on mature days; validation (the threshold, the calibration) stays mature-only.
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
from fraudops.labels.window import label_state, read_window
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
    # the fresh labels: confirmed on days not yet mature (see the module's docstring)
    fresh_rows: int = 0
    fresh_positives: int = 0
    fresh_train_rows: int = 0
    fresh_holdout_rows: int = 0
    effective_fresh_weight: float = 0.0

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
    labelled = labelled_predictions(
        settings, spec, lake, start=as_of - timedelta(days=cfg.window_days), end=as_of
    )
    recent = labelled[labelled["_mature"]]
    if recent.empty:
        raise NotEnoughLabels(
            f"no mature labelled predictions in the {cfg.window_days} days before "
            f"{as_of:%Y-%m-%d %H:%M} (labels.mature_coverage {settings.labels.mature_coverage}): "
            "nothing to judge a challenger on"
        )
    fresh = _fresh(labelled, recent) if cfg.fresh_labels else labelled.iloc[:0]
    fresh_holdout = _held_out(fresh, cfg.fresh_holdout_share)
    fresh_train = fresh[~fresh_holdout].sort_values(spec.timestamp_column, kind="stable")
    fresh_test = fresh[fresh_holdout]
    days = np.sort(recent["_day"].unique())
    holdout_days = set(days[-cfg.holdout_days :])
    in_holdout = recent["_day"].isin(holdout_days).to_numpy()
    holdout, older = recent[in_holdout], recent[~in_holdout]
    if len(fresh_test):
        holdout = pd.concat([holdout, fresh_test]).sort_values(spec.timestamp_column, kind="stable")
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
    # The fresh rows teach, never calibrate: validation keeps the traffic's fraud rate.
    train = pd.concat([train, fresh_train], ignore_index=True)
    fresh_weights = (
        cfg.recent_weight
        * cfg.fresh_weight
        * _decay(settings, _ages(fresh_train[spec.timestamp_column], spec, as_of))
    )
    weights = np.concatenate([weights[: len(pool) - n_val], fresh_weights])
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
        labelled_train_rows=max(0, len(train) - len(base) - len(fresh_train)),
        fresh_rows=len(fresh),
        fresh_positives=int(fresh[spec.label_column].sum()) if len(fresh) else 0,
        fresh_train_rows=len(fresh_train),
        fresh_holdout_rows=len(fresh_test),
        mature_days=len(days),
        holdout_days=len(holdout_days),
        holdout_rows=len(holdout),
        holdout_positives=positives,
        holdout_start=str(min(holdout_days)),
        holdout_end=str(max(holdout_days)),
        recent_weight=cfg.recent_weight,
        half_life_days=cfg.half_life_days,
        effective_lake_weight=round(float(weights[: len(base)].sum()), 1),
        effective_labelled_weight=round(
            float(weights[len(base) : len(train) - len(fresh_train)].sum()), 1
        ),
        effective_fresh_weight=round(float(fresh_weights.sum()), 1),
    )
    return RetrainData(split, train_weight, summary)


def labelled_predictions(
    settings: Settings, spec: FeatureSpec, lake: Lake, *, start: datetime, end: datetime
) -> pd.DataFrame:
    """Predictions of (start, end] with their latest label known at ``end``, in time order,
    shaped like training rows (features, label, timestamp) plus ``_day``, ``_mature`` (the day's
    coverage reached ``labels.mature_coverage``: the rows monitoring measures) and the id."""
    window = read_window(lake, spec, start=start, end=end, columns=["transaction_id"])
    if window.predictions.empty:
        return window.predictions.assign(_day=pd.Series(dtype=str), _mature=pd.Series(dtype=bool))
    _, data = label_state(window.joined(), end)
    coverage = data.groupby("day")["known"].transform("mean")
    keep = data.loc[data["known"]].assign(
        _mature=(coverage >= settings.labels.mature_coverage)[data["known"]]
    )
    keep = keep.rename(columns={"day": "_day"})
    # Requests of one batch share a request time: the transaction id orders them the same way
    # every time (inference ids are random), so a retrain on the same data is the same model.
    out = keep.sort_values(
        ["request_time", "transaction_id", LABELLED_ID], kind="stable", na_position="last"
    ).reset_index(drop=True)
    out[spec.label_column] = out["label"].astype(np.int64)
    out[spec.timestamp_column] = out["request_time"]
    columns = [
        *spec.feature_names,
        spec.label_column,
        spec.timestamp_column,
        "_day",
        "_mature",
        LABELLED_ID,
        "transaction_id",
    ]
    return out[list(dict.fromkeys(columns))]


def _fresh(labelled: pd.DataFrame, mature: pd.DataFrame) -> pd.DataFrame:
    """The labelled rows of the days after the last mature one (an immature day before it is
    a gap in the feed, not news: it stays out)."""
    if mature.empty:
        return labelled[~labelled["_mature"]]
    last = mature["_day"].max()
    return labelled[~labelled["_mature"] & (labelled["_day"] > last)]


def _held_out(fresh: pd.DataFrame, share: float) -> np.ndarray:
    """Which fresh rows the holdout takes: a stable hash of the transaction id (the prediction
    id where there is none: inference ids are random, so a replay of the same traffic would
    split another way), so a retrain on the same data splits the same way."""
    if fresh.empty or share <= 0:
        return np.zeros(len(fresh), dtype=bool)
    ids = fresh["transaction_id"].where(fresh["transaction_id"].notna(), fresh[LABELLED_ID])
    hashed = pd.util.hash_pandas_object(ids.astype(str), index=False)
    return np.asarray(hashed.to_numpy() % 10_000 < round(share * 10_000))


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
