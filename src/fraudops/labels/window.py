"""Predictions in a time window joined with the labels known at its end, and the maturity rule.

A monitoring run measures performance on these rows and a retrain trains and judges on them:
both read them here, so the two never disagree on which predictions count.

A label counts for an evaluation at ``as_of`` only once it was confirmed (``confirmed_at <=
as_of``). Every prediction day is a cohort; its coverage is the share of its predictions with a
label known at ``as_of``, and a day is *mature* once that reaches ``labels.mature_coverage``: an
immature day holds mostly the quick fraud confirmations (fraud is confirmed in 1-7 days,
legitimate transactions in 1-30), so its labelled rows show a fraud rate several times the real
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from fraudops.labels.store import latest_labels
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import PREDICTIONS
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

ID = "inference_id"
LABEL_COLUMNS = (ID, "label", "confirmed_at")
# What the maturity rule needs of each row: when it was served and its latest label.
REQUIRED_COLUMNS = ("request_time", "probability", "prediction", "label", "confirmed_at")


@dataclass(frozen=True)
class LabelledWindow:
    """The predictions of ``start < request_time <= end`` and the labels known at ``end``."""

    start: datetime
    end: datetime
    predictions: pd.DataFrame  # one row per inference_id, request_time in UTC
    labels: pd.DataFrame  # LABEL_COLUMNS: each prediction's latest label confirmed by ``end``

    def joined(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Each prediction (``columns`` of it, default all) with its label, null when none yet."""
        frame = self.predictions if columns is None else self.predictions[list(columns)]
        return frame.merge(self.labels, on=ID, how="left")


def read_window(
    lake: Lake,
    spec: FeatureSpec,
    *,
    start: datetime,
    end: datetime,
    columns: Sequence[str] = (),
) -> LabelledWindow:
    """The window's predictions (inference_id, request_time, probability, prediction, the
    spec's features and ``columns``), the window pushed into the Iceberg scan (files and rows
    outside it are not read), and the latest label of each known at ``end``."""
    start, end = as_utc(start), as_utc(end)
    wanted = [ID, "request_time", "probability", "prediction", *columns, *spec.feature_names]
    frame = lake.read_frame(
        PREDICTIONS,
        columns=list(dict.fromkeys(wanted)),
        row_filter=f"request_time > '{start.isoformat()}' and request_time <= '{end.isoformat()}'",
    )
    frame = frame.drop_duplicates(ID)
    frame["request_time"] = pd.to_datetime(frame["request_time"], utc=True)
    frame = frame.reset_index(drop=True)
    # Labels of predictions made after ``start`` can only be confirmed after it: a pushed filter.
    labels = latest_labels(lake, as_of=end, inference_ids=frame[ID], confirmed_after=start)
    labels = (
        labels[list(LABEL_COLUMNS)].reset_index(drop=True)
        if len(labels)
        else pd.DataFrame(columns=list(LABEL_COLUMNS))
    )
    return LabelledWindow(start, end, frame, labels)


def label_state(frame: pd.DataFrame, as_of: datetime) -> tuple[pd.Timestamp, pd.DataFrame]:
    """``as_of`` as a UTC timestamp, and the rows served by then with ``known`` (a label
    confirmed by ``as_of``) and ``day`` (their cohort) added."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"performance frame lacks columns {missing}")
    as_of_ts = pd.Timestamp(as_of)
    as_of_ts = as_of_ts.tz_localize("UTC") if as_of_ts.tzinfo is None else as_of_ts
    data = frame.loc[pd.to_datetime(frame["request_time"], utc=True) <= as_of_ts].copy()
    confirmed = pd.to_datetime(data["confirmed_at"], utc=True)
    # A label exists for this evaluation only once it was confirmed.
    known = data["label"].notna() & confirmed.notna() & (confirmed <= as_of_ts)
    data["known"] = known.to_numpy()
    data["day"] = pd.to_datetime(data["request_time"], utc=True).dt.strftime("%Y-%m-%d")
    return as_of_ts, data


def mature_labelled(frame: pd.DataFrame, *, as_of: datetime, min_coverage: float) -> pd.DataFrame:
    """The labelled rows of the mature cohorts: exactly those a performance report measures."""
    _, data = label_state(frame, as_of)
    if data.empty:
        return data
    coverage = data.groupby("day")["known"].transform("mean")
    return data.loc[data["known"] & (coverage >= min_coverage)]
