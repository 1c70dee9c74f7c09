"""The reference profile: what a drift check needs from the training data, computed once.

Stored with the model version as ``reference_profile.npz`` (arrays only, loads with
``allow_pickle=False``) plus ``reference_profile.json`` (the same without the long arrays, for
people). A drift check then costs O(current window) and never rescans the training data.

Per numeric feature: the cut points of ``bins`` quantile bins (one bin per value when a feature has
no more distinct values than bins) and the training proportions per bin (PSI), and the ECDF as
sorted distinct values with cumulative counts (KS, Wasserstein). By default the ECDF is exact (every
distinct value), so a drift check reproduces scipy's two-sample statistics to the last digit; the
file stores per-value counts in the smallest unsigned type, which compress to almost nothing
(transactions30, 284K rows: about 2 MB). ``ecdf_points`` caps it for very wide continuous data:
above the cap it keeps that many values, evenly spaced in rank, with their exact cumulative counts,
so the reference CDF is off by at most 1/ecdf_points between kept points. Per
binary/categorical feature: category codes and counts. Plus the model's score distribution on the
validation and holdout slices, and the baseline metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.errors import FraudopsError
from fraudops.spec import FeatureKind, FeatureSpec

PROFILE_NPZ = "reference_profile.npz"
PROFILE_JSON = "reference_profile.json"
PROFILE_VERSION = 1
DEFAULT_ECDF_POINTS: int | None = None  # None: exact ECDF (all distinct values)


@dataclass(frozen=True)
class NumericProfile:
    """Quantile bins and ECDF of one numeric column of the reference data."""

    count: int
    edges: np.ndarray  # cut points: bin k holds edges[k-1] <= x < edges[k] (open at both ends)
    proportions: np.ndarray  # len(edges) + 1 training shares, summing to 1
    ecdf_values: np.ndarray  # sorted distinct values (all of them when `exact`)
    ecdf_counts: np.ndarray  # reference rows <= each value
    exact: bool
    stats: dict[str, float]

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(values, dtype=np.float64), side="right")

    def bin_proportions(self, values: np.ndarray) -> np.ndarray:
        """Shares of ``values`` in the reference bins: the "actual" side of a PSI."""
        counts = np.bincount(self.bin_of(values), minlength=len(self.edges) + 1)
        return counts / max(len(values), 1)

    def cdf(self, values: np.ndarray) -> np.ndarray:
        """The reference ECDF at ``values``: share of reference rows <= each value."""
        idx = np.searchsorted(self.ecdf_values, np.asarray(values, dtype=np.float64), side="right")
        counts = np.r_[0, self.ecdf_counts]
        return counts[idx] / self.count


@dataclass(frozen=True)
class CategoricalProfile:
    count: int
    categories: np.ndarray  # distinct codes, sorted
    counts: np.ndarray

    @property
    def proportions(self) -> np.ndarray:
        return self.counts / self.count


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    spec: str
    features: dict[str, FeatureProfile]
    kinds: dict[str, str]
    scores: NumericProfile
    baseline_metrics: dict[str, float]
    threshold: float
    rows: int
    created_at: str

    def summary(self) -> dict[str, Any]:
        """Everything but the ECDF arrays, JSON-ready."""
        return {
            "profile_version": PROFILE_VERSION,
            "spec": self.spec,
            "rows": self.rows,
            "created_at": self.created_at,
            "threshold": self.threshold,
            "baseline_metrics": self.baseline_metrics,
            "features": {name: _summary(self.kinds[name], p) for name, p in self.features.items()},
            "scores": _summary("numeric", self.scores),
        }


def build_profile(
    X_train: np.ndarray,
    spec: FeatureSpec,
    *,
    scores: np.ndarray,
    baseline_metrics: dict[str, float],
    threshold: float,
    bins: int = 10,
    ecdf_points: int | None = DEFAULT_ECDF_POINTS,
) -> ReferenceProfile:
    """Profile the training matrix (columns in ``spec.feature_names`` order) and the scores."""
    features: dict[str, FeatureProfile] = {}
    kinds: dict[str, str] = {}
    for i, feature in enumerate(spec.model_features):
        column = np.asarray(X_train[:, i], dtype=np.float64)
        kinds[feature.name] = feature.kind.value
        if feature.kind is FeatureKind.numeric:
            features[feature.name] = numeric_profile(column, bins=bins, ecdf_points=ecdf_points)
        else:
            features[feature.name] = categorical_profile(column)
    return ReferenceProfile(
        spec=spec.name,
        features=features,
        kinds=kinds,
        scores=numeric_profile(
            np.asarray(scores, dtype=np.float64), bins=bins, ecdf_points=ecdf_points
        ),
        baseline_metrics={k: float(v) for k, v in baseline_metrics.items()},
        threshold=float(threshold),
        rows=int(X_train.shape[0]),
        created_at=datetime.now(UTC).isoformat(),
    )


def numeric_profile(
    column: np.ndarray, *, bins: int = 10, ecdf_points: int | None = DEFAULT_ECDF_POINTS
) -> NumericProfile:
    values, counts = np.unique(column, return_counts=True)  # sorted: one sort serves all
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    # Interior quantiles from the ECDF itself (the "lower" rule), no second sort of the column.
    ranks = np.ceil(np.linspace(0, n, bins + 1)[1:-1]).astype(np.int64)
    if len(values) <= bins:  # few distinct values: one bin each, or quantiles would merge them
        edges = values
    else:
        edges = np.unique(values[np.searchsorted(cumulative, np.maximum(ranks, 1))])
    # The same rule a drift check applies to the current window (NumericProfile.bin_of).
    proportions = (
        np.bincount(np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1) / n
    )
    keep = _ecdf_subset(cumulative, ecdf_points)
    return NumericProfile(
        count=n,
        edges=edges,
        proportions=proportions,
        ecdf_values=values[keep],
        ecdf_counts=cumulative[keep],
        exact=len(keep) == len(values),
        stats={
            "mean": float(column.mean()),
            "std": float(column.std()),
            "min": float(values[0]),
            "max": float(values[-1]),
        },
    )


def categorical_profile(column: np.ndarray) -> CategoricalProfile:
    categories, counts = np.unique(column, return_counts=True)
    return CategoricalProfile(
        count=int(counts.sum()),
        categories=categories.astype(np.int64),
        counts=counts.astype(np.int64),
    )


def _ecdf_subset(cumulative: np.ndarray, points: int | None) -> np.ndarray:
    if points is None or len(cumulative) <= points:
        return np.arange(len(cumulative))
    targets = np.linspace(1, cumulative[-1], points)
    return np.unique(np.r_[np.searchsorted(cumulative, targets, side="left"), len(cumulative) - 1])


def _summary(kind: str, profile: FeatureProfile) -> dict[str, Any]:
    if isinstance(profile, NumericProfile):
        return {
            "kind": kind,
            "count": profile.count,
            "edges": profile.edges.tolist(),
            "proportions": profile.proportions.tolist(),
            "ecdf_points": len(profile.ecdf_values),
            "ecdf_exact": profile.exact,
            **profile.stats,
        }
    return {
        "kind": kind,
        "count": profile.count,
        "categories": profile.categories.tolist(),
        "proportions": profile.proportions.tolist(),
    }


# ---- files -------------------------------------------------------------------------------------


def save_profile(profile: ReferenceProfile, directory: Path) -> Path:
    """Write the .npz and .json files into ``directory``; returns the .npz path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    names = list(profile.features)
    for i, name in enumerate(names):
        arrays.update(_arrays(f"f{i}", profile.features[name]))
    arrays.update(_arrays("score", profile.scores))
    meta = {**profile.summary(), "feature_order": names, "kinds": profile.kinds}
    meta.pop("features")
    meta.pop("scores")
    meta["stats"] = {
        name: p.stats for name, p in profile.features.items() if isinstance(p, NumericProfile)
    }
    meta["score_stats"] = profile.scores.stats
    arrays["meta"] = np.array(json.dumps(meta))  # a unicode scalar: no pickle needed to read it
    path = directory / PROFILE_NPZ
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    (directory / PROFILE_JSON).write_text(json.dumps(profile.summary(), indent=1))
    return path


def load_profile(path: Path | str) -> ReferenceProfile:
    """Read a profile back from its .npz file (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROFILE_NPZ
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise FraudopsError(f"cannot read reference profile {path}: {exc}") from None
    meta = json.loads(str(arrays["meta"]))
    if meta.get("profile_version") != PROFILE_VERSION:
        raise FraudopsError(
            f"reference profile {path} has version {meta.get('profile_version')}; "
            f"this fraudops reads {PROFILE_VERSION}"
        )
    features: dict[str, FeatureProfile] = {}
    for i, name in enumerate(meta["feature_order"]):
        features[name] = _from_arrays(arrays, f"f{i}", meta["stats"].get(name))
    scores = _from_arrays(arrays, "score", meta["score_stats"])
    assert isinstance(scores, NumericProfile)
    return ReferenceProfile(
        spec=meta["spec"],
        features=features,
        kinds=meta["kinds"],
        scores=scores,
        baseline_metrics=meta["baseline_metrics"],
        threshold=meta["threshold"],
        rows=meta["rows"],
        created_at=meta["created_at"],
    )


def _arrays(prefix: str, profile: FeatureProfile) -> dict[str, np.ndarray]:
    if isinstance(profile, NumericProfile):
        return {
            f"{prefix}_edges": profile.edges,
            f"{prefix}_proportions": profile.proportions,
            f"{prefix}_ecdf_values": profile.ecdf_values,
            # Per-value counts, not cumulative: mostly tiny numbers that compress to little.
            f"{prefix}_ecdf_steps": _smallest_uint(np.diff(profile.ecdf_counts, prepend=0)),
            f"{prefix}_info": np.array([profile.count, int(profile.exact)], dtype=np.int64),
        }
    return {f"{prefix}_categories": profile.categories, f"{prefix}_counts": profile.counts}


def _from_arrays(
    arrays: dict[str, np.ndarray], prefix: str, stats: dict[str, float] | None
) -> FeatureProfile:
    if f"{prefix}_categories" in arrays:
        counts = arrays[f"{prefix}_counts"]
        return CategoricalProfile(
            count=int(counts.sum()), categories=arrays[f"{prefix}_categories"], counts=counts
        )
    count, exact = arrays[f"{prefix}_info"].tolist()
    if f"{prefix}_ecdf_steps" in arrays:
        ecdf_counts = np.cumsum(arrays[f"{prefix}_ecdf_steps"], dtype=np.int64)
    else:  # written before the counts were stored as steps
        ecdf_counts = arrays[f"{prefix}_ecdf_counts"]
    return NumericProfile(
        count=int(count),
        edges=arrays[f"{prefix}_edges"],
        proportions=arrays[f"{prefix}_proportions"],
        ecdf_values=arrays[f"{prefix}_ecdf_values"],
        ecdf_counts=ecdf_counts,
        exact=bool(exact),
        stats=stats or {},
    )


def _smallest_uint(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if len(values) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.uint64)
