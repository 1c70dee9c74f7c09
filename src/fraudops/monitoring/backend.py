"""What a monitoring run asks of an engine: the ``WindowBackend`` primitives and their slices.

The run's sequence (``fraudops.monitoring.run``) computes every statistic once, from what a
backend reads: the performance window reduced to predictions per cohort day and the labelled
rows (``PerformanceSlice``), and the data window as its rows or as partition summaries merged
into one (``DataSlice``). Two backends: ``monitoring.window.LocalWindow`` (the whole window as
pandas frames in this process) and ``monitoring.dask_window.DaskWindow`` (partitions on a Dask
cluster, no process holding the window).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from fraudops.models.profile import ReferenceProfile
from fraudops.monitoring.drift import DriftReport
from fraudops.monitoring.performance import PerformanceReport
from fraudops.monitoring.summaries import WindowSummary

# The served version and the shadow challenger's score: what shadow scoring compares.
SHADOW_COLUMNS = ("model_version", "shadow_version", "shadow_probability")


@dataclass(frozen=True)
class WindowRequest:
    """What to check: the champion's profile and version, and the two windows (``start <
    request_time <= as_of``)."""

    profile: ReferenceProfile
    champion: str
    data_start: datetime
    perf_start: datetime
    as_of: datetime
    html: bool = False  # keep what the Evidently reports need (a bounded sample on Dask)


@dataclass
class PerformanceSlice:
    """The performance window reduced to what ``cohort_performance`` and the shadow comparison
    need, the same from every backend."""

    rows: int  # predictions in the window (each once, every version)
    excluded: int  # of them, answered by another version than the champion
    day_rows: pd.Series  # the champion's predictions per cohort day ("%Y-%m-%d")
    labelled: pd.DataFrame  # the champion's rows with a label known at as_of (with "day")
    shadow_versions: list[str]  # shadow challengers that scored in the window
    champion_shadow: bool  # some champion row carries a shadow score
    # The labelled rows of every version for the HTML reports, joined only when one is made.
    html_labelled: Callable[[], pd.DataFrame] | None = None
    # Every champion row (``monitoring.signals.SCORED_COLUMNS``: the fast signals need the
    # unlabelled ones too); None: the backend does not gather them.
    scored: pd.DataFrame | None = None


@dataclass
class DataSlice:
    """The data window: its rows (``current``) when the backend holds them or the window is
    small enough for scipy's exact KS, else the partitions' summaries merged into one."""

    rows: int
    current: pd.DataFrame | None = None  # id, score and features of each prediction
    summary: WindowSummary | None = None
    html_current: pd.DataFrame | None = None  # the rows, or a uniform sample, for HTML
    notes: list[str] = field(default_factory=list)


class WindowBackend(Protocol):
    """An engine's reads of one monitoring window (the request it was opened for)."""

    request: WindowRequest

    def performance_slice(self) -> PerformanceSlice:
        """The performance window: predictions and their latest labels known at ``as_of``."""
        ...

    def data_slice(self, min_samples: int) -> DataSlice:
        """The data window's rows or merged summary (no statistics under ``min_samples``
        rows: the caller reports insufficient data). Called after ``performance_slice``."""
        ...

    def values_inside(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each feature's data-window values inside its ``slots`` (reference intervals where
        the ECDFs cross: ``summaries.crossings``), to make the Wasserstein exact."""
        ...


@dataclass
class WindowChecks:
    """Data drift over the data window and performance over the performance window."""

    current_rows: int  # predictions in the data window
    window_rows: int  # predictions in the performance window (every version)
    drift: DriftReport | None  # None: fewer than monitoring.min_samples predictions
    performance: PerformanceReport  # the champion's; its ``shadow`` is left to the caller
    shadow_versions: list[str]  # shadow challengers that scored in the performance window
    shadow_rows: pd.DataFrame | None  # mature labelled champion rows with a shadow score
    # For the HTML reports (only with ``WindowRequest.html``): the data window's rows, or a
    # uniform sample of them, and the labelled rows, joined when asked (``labelled_for_html``).
    html_current: pd.DataFrame | None = None
    html_labelled: Callable[[], pd.DataFrame] | None = None
    scored: pd.DataFrame | None = None  # PerformanceSlice.scored, for the fast signals
    # Normalised Wasserstein values that are estimates: feature -> largest possible error.
    wasserstein_bounds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def labelled_for_html(self) -> pd.DataFrame:
        if self.html_labelled is not None:
            return self.html_labelled()
        return pd.DataFrame({"label": pd.Series(dtype=int), "probability": pd.Series(dtype=float)})
