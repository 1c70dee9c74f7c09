"""The time split on Dask, pushed into the scans: the cut timestamps are found from the timestamp
(and label) columns alone, then each slice is read with its own row filter.

The local rule (training/split.py) sorts the rows by time and cuts at row ``round(n * (1 -
validation - holdout))`` and ``round(n * (1 - holdout))``, each cut moved back to the first row
of its tie group, so rows sharing a timestamp never straddle a cut. Here the timestamp at that
row position is found exactly, without sorting the table in one place: each partition sorts its
own timestamps (8 bytes a row, on its worker), and a selection over the sorted partitions
narrows the candidates a few hundred at a time (each round sends every partition the
candidates and gets back its counts below and at each of them). A cut at timestamp ``t`` then
means ``timestamp < t`` before it and ``timestamp >= t`` after it: the tie rule by construction.
The slices' rows, frauds and time ranges are counted from the same sorted partitions, so they
equal the local split's exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.errors import ValidationError
from fraudops.lake.dask_io import read_dask
from fraudops.training.features import label_vector
from fraudops.training.outcome import SLICES, SliceStats, SplitStats

if TYPE_CHECKING:
    from distributed import Client, Future

    from fraudops.lake.catalog import Lake
    from fraudops.spec import FeatureSpec

_SAMPLES = 128  # candidates each partition proposes per selection round
MIN_ROWS = 100  # as validate_training_frame


@dataclass(frozen=True)
class DaskSplit:
    """Where the cuts fall, and what each slice holds."""

    cuts: tuple[Any, Any]  # the first timestamp of validation and of holdout (column's type)
    stats: SplitStats

    def row_filter(self, name: str, column: str) -> str:
        """The Iceberg row filter that reads slice ``name``."""
        first, second = (_literal(c) for c in self.cuts)
        return {
            "train": f"{column} < {first}",
            "validation": f"{column} >= {first} and {column} < {second}",
            "holdout": f"{column} >= {second}",
        }[name]


def dask_time_split(
    client: Client,
    lake: Lake,
    spec: FeatureSpec,
    *,
    validation_fraction: float,
    holdout_fraction: float,
) -> DaskSplit:
    if not (
        validation_fraction > 0
        and holdout_fraction > 0
        and validation_fraction + holdout_fraction < 1
    ):
        raise ValidationError(
            f"validation_fraction {validation_fraction} + holdout_fraction "
            f"{holdout_fraction} must be positive and below 1"
        )
    column = spec.timestamp_column
    frame = read_dask(lake, "transactions", columns=[column, spec.label_column])
    sorted_parts = client.compute(
        [
            _delayed_sort(part, column, spec)
            for part in frame.to_delayed()  # one sorted (times, labels) pair per partition
        ]
    )
    try:
        sizes = client.gather(client.map(_size, sorted_parts))
        n = int(sum(sizes))
        if n == 0:
            raise ValidationError(
                f"lake table {spec.name}.transactions is empty: load data first "
                f"(`fraudops lake load FILE --spec {spec.name}`)"
            )
        if n < MIN_ROWS:
            raise ValidationError(f"transactions hold {n} rows: training needs at least {MIN_ROWS}")
        positions = (
            round(n * (1 - validation_fraction - holdout_fraction)),
            round(n * (1 - holdout_fraction)),
        )
        for position, name in zip(positions, ("train", "holdout"), strict=True):
            if position <= 0 or position >= n:
                raise ValidationError(
                    f"the {name} slice is empty: too few rows or too few distinct "
                    f"{column!r} values to split by time"
                )
        cuts = tuple(_kth(client, sorted_parts, k) for k in positions)
        stats = _slice_stats(client, sorted_parts, cuts, n, spec)
    finally:
        client.cancel(sorted_parts)
    _check_slices(stats, spec)
    return DaskSplit((_as_column(cuts[0], spec), _as_column(cuts[1], spec)), stats)


def _delayed_sort(part: Any, column: str, spec: FeatureSpec) -> Any:
    import dask

    return dask.delayed(_sort_part)(part, column, spec)


def _sort_part(
    frame: pd.DataFrame, column: str, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    times = frame[column]
    if times.isna().any():
        raise ValidationError(f"timestamp column {column!r} is empty in some rows")
    values = _time_values(times)
    labels = label_vector(frame, spec)
    order = np.argsort(values, kind="stable")
    return values[order], labels[order]


def _time_values(column: pd.Series) -> np.ndarray:
    """Timestamps as sortable numbers: µs since the epoch (UTC) or the column's own seconds."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").to_numpy(dtype="datetime64[us]").view(np.int64)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.to_numpy(dtype="datetime64[us]").view(np.int64)
    return column.to_numpy(dtype=np.float64)


def _as_column(value: Any, spec: FeatureSpec) -> Any:
    if spec.timestamp_kind == "datetime":
        return pd.Timestamp(int(value), unit="us", tz="UTC")
    return np.float64(value)


def _literal(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return f"'{value.isoformat()}'"
    return repr(float(value))


def _size(part: tuple[np.ndarray, np.ndarray]) -> int:
    return len(part[0])


def _segment(part: tuple[np.ndarray, np.ndarray], low: Any, high: Any, samples: int) -> np.ndarray:
    """Up to ``samples`` of the partition's times in (low, high], evenly spaced, ends included."""
    times = part[0]
    i = 0 if low is None else int(np.searchsorted(times, low, side="right"))
    j = len(times) if high is None else int(np.searchsorted(times, high, side="right"))
    if j <= i:
        return times[:0]
    picks = np.unique(np.linspace(i, j - 1, min(samples, j - i)).round().astype(np.int64))
    return times[picks]


def _counts(part: tuple[np.ndarray, np.ndarray], candidates: np.ndarray) -> np.ndarray:
    """Rows below and rows at or below each candidate."""
    times = part[0]
    below = np.searchsorted(times, candidates, side="left")
    upto = np.searchsorted(times, candidates, side="right")
    return np.stack([below, upto])


def _kth(client: Client, parts: list[Future], k: int) -> Any:
    """The time at row position ``k`` (0-based) of all rows in time order, exactly."""
    low: Any = None  # every candidate left is in (low, high]
    high: Any = None
    while True:
        proposed = client.gather(client.map(_segment, parts, low=low, high=high, samples=_SAMPLES))
        candidates = np.unique(np.concatenate(proposed))
        counts = np.sum(client.gather(client.map(_counts, parts, candidates=candidates)), axis=0)
        below, upto = counts
        # The answer is the first candidate with more than k rows at or below it ...
        at = int(np.searchsorted(upto, k + 1, side="left"))
        if below[at] <= k:  # ... and it is it when at most k rows are strictly below it
            return candidates[at]
        high = candidates[at]
        low = candidates[at - 1] if at > 0 else low


def _between(part: tuple[np.ndarray, np.ndarray], cuts: tuple[Any, Any]) -> list[tuple[Any, ...]]:
    """(rows, frauds, first, last) of each slice in this partition."""
    times, labels = part
    bounds = [0, *np.searchsorted(times, np.asarray(cuts), side="left").tolist(), len(times)]
    out = []
    for i, j in itertools.pairwise(bounds):
        if j > i:
            out.append((j - i, int(labels[i:j].sum()), times[i], times[j - 1]))
        else:
            out.append((0, 0, None, None))
    return out


def _slice_stats(
    client: Client, parts: list[Future], cuts: tuple[Any, ...], n: int, spec: FeatureSpec
) -> SplitStats:
    found = client.gather(client.map(_between, parts, cuts=cuts))
    stats: dict[str, SliceStats] = {}
    for index, name in enumerate(SLICES):
        pieces = [p[index] for p in found if p[index][0]]
        rows = sum(p[0] for p in pieces)
        stats[name] = SliceStats(
            rows,
            sum(p[1] for p in pieces),
            _as_column(min(p[2] for p in pieces), spec) if pieces else None,
            _as_column(max(p[3] for p in pieces), spec) if pieces else None,
        )
    assert sum(s.rows for s in stats.values()) == n
    return SplitStats(stats)


def _check_slices(stats: SplitStats, spec: FeatureSpec) -> None:
    """The local split's checks (training/split.py), on the counts."""
    for name in SLICES:
        s = stats.slices[name]
        if s.rows == 0:
            raise ValidationError(
                f"the {name} slice is empty: too few rows or too few distinct "
                f"{spec.timestamp_column!r} values to split by time"
            )
        if s.positives == 0:
            raise ValidationError(
                f"the {name} slice ({s.rows} rows, {s.start} .. {s.end}) has no "
                f"fraud rows ({spec.label_column} = 1): it cannot be "
                f"{'trained' if name == 'train' else 'evaluated'} on"
            )


def latest_rows(
    client: Client, lake: Lake, spec: FeatureSpec, limit: int | None, columns: list[str]
) -> pd.DataFrame:
    """The latest ``limit`` transactions (None: all) in time order, as
    training.retrain_data.latest_lake_rows takes them from a whole local read: the timestamp at
    row position ``n - limit`` is selected over the sorted partitions, only the rows at or after
    it are read (the filter pushed into the scan), and of those the latest ``limit`` are kept
    (ties at the cut in read order, as locally)."""
    from fraudops.training.retrain_data import latest_lake_rows

    column = spec.timestamp_column
    row_filter = None
    if limit is not None:
        frame = read_dask(lake, "transactions", columns=[column, spec.label_column])
        parts = client.compute([_delayed_sort(p, column, spec) for p in frame.to_delayed()])
        try:
            n = int(sum(client.gather(client.map(_size, parts))))
            if n > limit:
                cut = _as_column(_kth(client, parts, n - limit), spec)
                row_filter = f"{column} >= {_literal(cut)}"
        finally:
            client.cancel(parts)
    rows = read_dask(lake, "transactions", columns=columns, row_filter=row_filter).compute()
    return latest_lake_rows(rows, spec, limit)
