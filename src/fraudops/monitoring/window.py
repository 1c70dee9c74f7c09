"""The local engine's monitoring window: the whole window as pandas frames in this process.

``LocalWindow`` is the ``WindowBackend`` (``fraudops.monitoring.backend``) of the local engine:
one read of the performance window (which holds the data window), reduced to the same slices the
Dask backend builds over partitions; the statistics are the run's (``fraudops.monitoring.run``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from fraudops.labels.window import ID, LabelledWindow, label_state, read_window
from fraudops.lake.catalog import Lake
from fraudops.lake.schemas import predictions_amount_column
from fraudops.models.profile import NumericProfile
from fraudops.monitoring.backend import (
    SHADOW_COLUMNS,
    DataSlice,
    PerformanceSlice,
    WindowRequest,
)
from fraudops.monitoring.drift import SCORE_FEATURE
from fraudops.monitoring.performance import AMOUNT, CARD
from fraudops.monitoring.signals import SCORED_COLUMNS
from fraudops.monitoring.summaries import values_in
from fraudops.spec import FeatureSpec


def context_columns(spec: FeatureSpec) -> tuple[str, str]:
    """The ``predictions`` columns of a row's amount and card (customer), read beside the
    scores for the money figures and card precision@k (``performance.AMOUNT``, ``CARD``)."""
    return (predictions_amount_column(spec), CARD)


class LocalWindow:
    """A monitoring window read whole into this process."""

    def __init__(self, lake: Lake, spec: FeatureSpec, request: WindowRequest) -> None:
        self.lake, self.spec, self.request = lake, spec, request

    @cached_property
    def window(self) -> LabelledWindow:
        start, end = self.request.perf_start, self.request.as_of
        columns = [*SHADOW_COLUMNS, *context_columns(self.spec)]
        return read_window(self.lake, self.spec, start=start, end=end, columns=columns)

    @cached_property
    def current(self) -> pd.DataFrame:
        predictions = self.window.predictions
        return predictions[predictions["request_time"] > pd.Timestamp(self.request.data_start)]

    def performance_slice(self) -> PerformanceSlice:
        return performance_slice(self.window, self.request.champion, self.spec)

    def data_slice(self, min_samples: int) -> DataSlice:
        current = self.current
        return DataSlice(
            rows=len(current),
            current=current,
            html_current=current if self.request.html else None,
        )

    def values_inside(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        profile, current = self.request.profile, self.current
        out = {}
        for name, where in slots.items():
            if name == SCORE_FEATURE:
                out[name] = values_in(
                    profile.scores, current["probability"].to_numpy(np.float64), where
                )
            else:
                feature = profile.features[name]
                assert isinstance(feature, NumericProfile)  # crossings are of numeric features
                out[name] = values_in(feature, current[name].to_numpy(np.float64), where)
        return out


def performance_slice(
    window: LabelledWindow, champion: str | None, spec: FeatureSpec | None = None
) -> PerformanceSlice:
    """A labelled window reduced to the performance slice.

    With ``champion`` (None: every version), only the predictions it answered count: the
    question is whether the model now serving has degraded, and the weeks a replaced model
    answered badly must not call for another retrain right after its successor took over."""
    predictions = window.predictions
    rows, excluded = len(predictions), 0
    shadow_versions = (
        sorted(predictions["shadow_version"].dropna().astype(str).unique())
        if "shadow_version" in predictions.columns
        else []
    )
    if champion is not None and "model_version" in predictions.columns:
        answered = (predictions["model_version"].astype(str) == champion).to_numpy()
        excluded = int((~answered).sum())
        predictions = predictions[answered]
    shadow_columns = [c for c in SHADOW_COLUMNS if c in predictions.columns]
    # The amount and the card, under performance's names, when the window read them.
    names = dict(zip(context_columns(spec), (AMOUNT, CARD), strict=True)) if spec else {}
    context = [c for c in names if c in predictions.columns]
    columns = [ID, "request_time", "probability", "prediction", *shadow_columns, *context]
    joined = predictions[columns].rename(columns=names).merge(window.labels, on=ID, how="left")
    _, data = label_state(joined, window.end)
    return PerformanceSlice(
        rows=rows,
        excluded=excluded,
        day_rows=data.groupby("day", sort=True).size(),
        labelled=data[data["known"]],
        shadow_versions=shadow_versions,
        champion_shadow=len(shadow_columns) == len(SHADOW_COLUMNS)
        and bool(joined["shadow_version"].notna().any()),
        html_labelled=lambda: window.predictions.merge(window.labels, on=ID, how="inner"),
        scored=data[list(SCORED_COLUMNS)],
    )
