"""The drift reference profile from partition summaries (the Dask engine).

``build_profile`` (models/profile.py) describes each feature of the reference rows by its
sorted distinct values and their counts: the quantile bin edges (the "lower" rule on the ECDF),
the bin proportions and the ECDF all derive from those two arrays. Per-value counts merge
exactly, so each partition counts its own values (``np.unique`` on its feature matrix, on its
worker) and the counts are summed in a tree of merges; the profile is then built from the merged
counts with ``build_profile``'s rules. What is exact, to the last bit, against a local profile
of the same rows: the bin edges, the bin proportions, the ECDF values and cumulative counts, the
category counts, min, max and the row count. Mean and standard deviation come from the same
counts (a weighted sum instead of NumPy's pairwise sum over the column): equal up to float
rounding (a relative 1e-12 or so); they are descriptive only, no drift statistic reads them.

Memory: the client holds the merged counts, 16 bytes a distinct value and feature — the size
of the stored profile itself, whose ECDF keeps every distinct value (``ecdf_points`` unset, the
default), not the rows times the features that ``build_profile`` needs in one process.

The score profile is built from the validation and holdout scores, which the engine gathers
anyway for the threshold and the evaluation (``numeric_profile`` over them: exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.models.profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
    numeric_profile,
)
from fraudops.spec import FeatureKind, FeatureSpec
from fraudops.training.features import feature_matrix

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

Counts = tuple[np.ndarray, np.ndarray]  # sorted distinct values, their counts (int64)


@dataclass(frozen=True)
class SummaryReference:
    """The reference rows as merged per-feature value counts (see the module's docstring)."""

    counts: dict[str, Counts]  # per feature, in spec order
    rows: int

    def profile(
        self,
        spec: FeatureSpec,
        *,
        scores: np.ndarray,
        baseline_metrics: dict[str, float],
        threshold: float,
        bins: int,
    ) -> ReferenceProfile:
        features: dict[str, FeatureProfile] = {}
        kinds: dict[str, str] = {}
        for feature in spec.model_features:
            values, counts = self.counts[feature.name]
            kinds[feature.name] = feature.kind.value
            if feature.kind is FeatureKind.numeric:
                features[feature.name] = numeric_from_counts(values, counts, bins=bins)
            else:
                features[feature.name] = CategoricalProfile(
                    count=int(counts.sum()),
                    categories=values.astype(np.int64),
                    counts=counts.astype(np.int64),
                )
        return ReferenceProfile(
            spec=spec.name,
            features=features,
            kinds=kinds,
            scores=numeric_profile(np.asarray(scores, dtype=np.float64), bins=bins),
            baseline_metrics={k: float(v) for k, v in baseline_metrics.items()},
            threshold=float(threshold),
            rows=self.rows,
            created_at=datetime.now(UTC).isoformat(),
        )


def numeric_from_counts(values: np.ndarray, counts: np.ndarray, *, bins: int) -> NumericProfile:
    """``numeric_profile`` of the column whose distinct values and counts these are (exact ECDF:
    ``build_profile``'s default)."""
    cumulative = np.cumsum(counts, dtype=np.int64)
    n = int(cumulative[-1])
    ranks = np.ceil(np.linspace(0, n, bins + 1)[1:-1]).astype(np.int64)
    if len(values) <= bins:
        edges = values
    else:
        edges = np.unique(values[np.searchsorted(cumulative, np.maximum(ranks, 1))])
    per_bin = np.bincount(
        np.searchsorted(edges, values, side="right"), weights=counts, minlength=len(edges) + 1
    )
    # Integer counts summed as floats below 2**53: the same numbers a bincount of the rows gives.
    proportions = np.rint(per_bin).astype(np.int64) / n
    mean = float(np.dot(values, counts) / n)
    return NumericProfile(
        count=n,
        edges=edges,
        proportions=proportions,
        ecdf_values=values,
        ecdf_counts=cumulative,
        exact=True,
        stats={
            "mean": mean,
            "std": float(np.sqrt(np.dot(counts, (values - mean) ** 2) / n)),
            "min": float(values[0]),
            "max": float(values[-1]),
        },
    )


def summarize_reference(client: Client, frame: dd.DataFrame, spec: FeatureSpec) -> SummaryReference:
    """Per-feature value counts of ``frame`` (raw slice rows), merged over its partitions."""
    import dask

    names = list(spec.feature_names)
    leaves = [dask.delayed(_part_counts)(part, names) for part in frame.to_delayed()]
    while len(leaves) > 1:  # a tree of pairwise merges, on the workers
        leaves = [
            dask.delayed(_merge)(*leaves[i : i + 2]) if i + 1 < len(leaves) else leaves[i]
            for i in range(0, len(leaves), 2)
        ]
    merged: dict[str, Counts] = client.compute(leaves[0]).result()
    rows = int(merged[names[0]][1].sum()) if names else 0
    return SummaryReference(merged, rows)


def _part_counts(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, Counts]:
    X = feature_matrix(frame, names)  # float64, as build_profile reads the matrix
    out: dict[str, Counts] = {}
    for i, name in enumerate(names):
        values, counts = np.unique(X[:, i], return_counts=True)
        out[name] = (values, counts.astype(np.int64))
    return out


def _merge(a: dict[str, Counts], b: dict[str, Counts]) -> dict[str, Any]:
    out: dict[str, Counts] = {}
    for name in a:
        values = np.concatenate([a[name][0], b[name][0]])
        counts = np.concatenate([a[name][1], b[name][1]])
        merged, inverse = np.unique(values, return_inverse=True)
        summed = np.zeros(len(merged), dtype=np.int64)
        np.add.at(summed, inverse, counts)
        out[name] = (merged, summed)
    return out
