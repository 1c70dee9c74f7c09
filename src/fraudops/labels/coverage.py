"""Label coverage: per prediction day, how many predictions have ground truth as of a time.

A label counts once it is confirmed (``confirmed_at <= as_of``), so coverage can be asked of the
past. Days to confirmation is measured to the *first* confirmation of a prediction (when its
truth became known), the fraud / legitimate split uses the label in force (the latest event).
A day is *mature* once its coverage reaches ``labels.mature_coverage``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from fraudops.labels.store import jsonable, label_events, latest_of
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import PREDICTIONS
from fraudops.timeutil import as_utc


@dataclass
class DayCoverage:
    day: str  # UTC date of the request
    predictions: int
    labelled: int
    unlabelled: int
    coverage_pct: float
    fraud: int
    legitimate: int
    mean_days_to_confirmation: float | None
    mature: bool


@dataclass
class CoverageReport:
    spec: str
    as_of: dt.datetime
    mature_coverage: float
    predictions: int = 0
    labelled: int = 0
    unlabelled: int = 0
    coverage_pct: float | None = None
    mean_days_to_confirmation: float | None = None
    days: list[DayCoverage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))


def label_coverage(
    lake: Lake,
    now: dt.datetime | None = None,
    *,
    since: dt.datetime | None = None,
) -> CoverageReport:
    """Coverage per prediction day (oldest first) of predictions requested by ``now``.

    ``since`` leaves out predictions requested before it.
    """
    as_of = pd.Timestamp(as_utc(now))
    predictions = lake.read_frame(PREDICTIONS, columns=["inference_id", "request_time"])
    events = label_events(lake, None)
    report = CoverageReport(spec=lake.spec.name, as_of=as_of.to_pydatetime(), mature_coverage=0.0)
    report.mature_coverage = lake.settings.labels.mature_coverage
    predictions = predictions.dropna(subset=["request_time"]).drop_duplicates("inference_id")
    predictions["request_time"] = pd.to_datetime(predictions["request_time"], utc=True)
    predictions = predictions[predictions["request_time"] <= as_of]
    if since is not None:
        predictions = predictions[predictions["request_time"] >= pd.Timestamp(as_utc(since))]
    events = events[pd.to_datetime(events["confirmed_at"], utc=True) <= as_of]
    first = (
        events.assign(confirmed_at=pd.to_datetime(events["confirmed_at"], utc=True))
        .groupby("inference_id")["confirmed_at"]
        .min()
        .rename("first_confirmed_at")
    )
    latest = latest_of(events).set_index("inference_id")["label"].rename("label")
    data = predictions.join(first, on="inference_id").join(latest, on="inference_id")
    data["labelled"] = data["label"].notna()
    data["days_to_confirmation"] = (
        data["first_confirmed_at"] - data["request_time"]
    ).dt.total_seconds() / 86_400
    data["day"] = data["request_time"].dt.strftime("%Y-%m-%d")

    for day, part in data.groupby("day", sort=True):
        labelled = int(part["labelled"].sum())
        coverage = 100.0 * labelled / len(part)
        report.days.append(
            DayCoverage(
                day=str(day),
                predictions=len(part),
                labelled=labelled,
                unlabelled=len(part) - labelled,
                coverage_pct=round(coverage, 4),
                fraud=int((part["label"] == 1).sum()),
                legitimate=int((part["label"] == 0).sum()),
                mean_days_to_confirmation=_mean(part.loc[part["labelled"], "days_to_confirmation"]),
                mature=coverage >= 100.0 * report.mature_coverage,
            )
        )
    report.predictions = len(data)
    report.labelled = int(data["labelled"].sum())
    report.unlabelled = report.predictions - report.labelled
    if report.predictions:
        report.coverage_pct = round(100.0 * report.labelled / report.predictions, 4)
    report.mean_days_to_confirmation = _mean(data.loc[data["labelled"], "days_to_confirmation"])
    return report


def _mean(values: pd.Series) -> float | None:
    return round(float(values.mean()), 4) if len(values) else None
