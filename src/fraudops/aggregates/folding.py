"""Predictions into per-(hour, model_version) partial counts, and partials summed together.

A partial is a pandas frame keyed by ``hour`` and ``model_version`` whose other columns are
all additive: the counts of one batch of predictions. Risk tiers are one ``tier:<name>`` column
per tier seen (tier names are settings), stored as a JSON object in the lake. Everything is
vectorised with numpy (bincount over a group code), so folding 10M rows takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudops.aggregates.bins import latency_bin, score_bin
from fraudops.lake.schemas import (
    LATENCY_BINS,
    SCORE_BINS,
    latency_bin_columns,
    score_bin_columns,
)

KEYS = ["hour", "model_version"]
TIER_PREFIX = "tier:"
SUMS = ["n", "flagged", "amount_sum", "flagged_amount_sum", "latency_sum_ms", "probability_sum"]
BIN_COLUMNS = score_bin_columns() + latency_bin_columns()
_US_PER_HOUR = 3_600_000_000


def prediction_columns(amount_column: str | None) -> list[str]:
    """The predictions columns a fold reads."""
    columns = ["request_time", "model_version", "probability", "prediction", "risk_tier"]
    columns.append("latency_ms")
    if amount_column:
        columns.append(amount_column)
    return columns


def empty_partial() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in [*SUMS, *BIN_COLUMNS]})
    frame.insert(0, "model_version", pd.Series(dtype=object))
    frame.insert(0, "hour", pd.Series(dtype="datetime64[us, UTC]"))
    return frame


def _floats(table: pa.Table, name: str | None) -> np.ndarray:
    if name is None or name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes of a string column, null as ""."""
    encoded = pc.fill_null(column.cast(pa.string()), "").combine_chunks().dictionary_encode()
    return (
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        [str(v) for v in encoded.dictionary.to_pylist()],
    )


def fold(table: pa.Table, amount_column: str | None) -> tuple[pd.DataFrame, int]:
    """The partial of one batch of predictions, and how many rows had no request_time (left
    out: an hour is the key)."""
    times = table["request_time"].cast(pa.timestamp("us", tz="UTC"))
    known = pc.is_valid(times)
    skipped = table.num_rows - int(pc.sum(known.cast(pa.int64())).as_py() or 0)
    if skipped:
        table = table.filter(known)
        times = table["request_time"].cast(pa.timestamp("us", tz="UTC"))
    if table.num_rows == 0:
        return empty_partial(), skipped
    hours = times.cast(pa.int64()).to_numpy(zero_copy_only=False) // _US_PER_HOUR
    versions, version_names = _codes(table["model_version"])
    key = hours * len(version_names) + versions
    unique, group = np.unique(key, return_inverse=True)
    groups = len(unique)

    def total(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(group, weights=weights, minlength=groups)

    probability = _floats(table, "probability")
    flagged = np.nan_to_num(_floats(table, "prediction")) == 1
    amount = np.nan_to_num(_floats(table, amount_column))
    latency = _floats(table, "latency_ms")
    frame = pd.DataFrame(
        {
            "hour": pd.to_datetime(
                (unique // len(version_names)) * _US_PER_HOUR, unit="us", utc=True
            ),
            "model_version": [version_names[v] for v in unique % len(version_names)],
            "n": total().astype(np.int64),
            "flagged": total(flagged.astype(np.float64)).astype(np.int64),
            "amount_sum": total(amount),
            "flagged_amount_sum": total(np.where(flagged, amount, 0.0)),
            "latency_sum_ms": total(np.nan_to_num(latency)),
            "probability_sum": total(np.nan_to_num(probability)),
        }
    )
    bins = [
        _histogram(group, groups, probability, score_bin, SCORE_BINS),
        _histogram(group, groups, latency, latency_bin, LATENCY_BINS),
    ]
    tiers, tier_names = _codes(table["risk_tier"])
    tier_counts = np.bincount(group * len(tier_names) + tiers, minlength=groups * len(tier_names))
    tier_frame = pd.DataFrame(
        tier_counts.reshape(groups, len(tier_names)),
        columns=[f"{TIER_PREFIX}{name}" for name in tier_names],
    )
    tier_frame = tier_frame.drop(columns=[f"{TIER_PREFIX}"], errors="ignore")  # no tier logged
    histograms = pd.DataFrame(np.hstack(bins), columns=BIN_COLUMNS)
    return pd.concat([frame, histograms, tier_frame], axis=1), skipped


def _histogram(
    group: np.ndarray,
    groups: int,
    values: np.ndarray,
    binner: Callable[[np.ndarray], np.ndarray],
    bins: int,
) -> np.ndarray:
    known = ~np.isnan(values)
    index = group[known] * bins + binner(values[known])
    return np.bincount(index, minlength=groups * bins).reshape(groups, bins).astype(np.int64)


FLOAT_SUMS = ("amount_sum", "flagged_amount_sum", "latency_sum_ms", "probability_sum")


def merge(
    partials: list[pd.DataFrame],
    keys: Sequence[str] = KEYS,
    floats: Collection[str] = FLOAT_SUMS,
    empty: Callable[[], pd.DataFrame] = empty_partial,
) -> pd.DataFrame:
    """The sum of partials per key (default: hour, model_version), sorted by key; columns
    other than ``floats`` are counts."""
    frames = [p for p in partials if not p.empty]
    if not frames:
        return empty()
    merged = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
    value_columns = [c for c in merged.columns if c not in keys]
    if merged[value_columns].isna().to_numpy().any():  # a column one partial lacks
        merged = merged.fillna({c: 0 for c in value_columns})
    summed = merged.groupby(list(keys), sort=True, as_index=False)[value_columns].sum()
    summed = summed.astype({c: np.int64 for c in value_columns if c not in floats})
    return summed


def tier_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(TIER_PREFIX)]


def pack_json(partial: pd.DataFrame, prefix: str, column: str) -> pd.DataFrame:
    """``partial`` with its ``<prefix><name>`` count columns folded into one JSON column."""
    keys = [c for c in partial.columns if c.startswith(prefix)]
    names = [k[len(prefix) :] for k in keys]
    values = (
        partial[keys].to_numpy(dtype=np.int64) if keys else np.zeros((len(partial), 0), np.int64)
    )
    body = partial.drop(columns=keys).copy()
    body[column] = [
        orjson.dumps({n: int(v) for n, v in zip(names, row, strict=True) if v}).decode()
        for row in values
    ]
    return body


def unpack_json(frame: pd.DataFrame, column: str, prefix: str) -> pd.DataFrame:
    """The JSON count column ``column`` back into ``<prefix><name>`` columns."""
    packed = frame.pop(column).fillna("{}")
    parsed = pd.DataFrame.from_records([orjson.loads(t) for t in packed], index=frame.index)
    parsed = parsed.fillna(0).astype(np.int64).add_prefix(prefix)
    return pd.concat([frame, parsed], axis=1)


def to_rows(partial: pd.DataFrame) -> pa.Table:
    """A partial as ``prediction_stats`` rows (tier columns into the JSON ``tiers``)."""
    return pa.Table.from_pandas(pack_json(partial, TIER_PREFIX, "tiers"), preserve_index=False)


def from_rows(table: pa.Table) -> pd.DataFrame:
    """``prediction_stats`` rows back into a partial (the JSON ``tiers`` into tier columns)."""
    frame = table.to_pandas()
    if frame.empty:
        return empty_partial()
    frame["model_version"] = frame["model_version"].fillna("")
    return unpack_json(frame, "tiers", TIER_PREFIX)
