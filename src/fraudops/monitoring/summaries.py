"""Drift of a window too large for one process: mergeable per-partition summaries against the
reference profile, finished into the same ``DriftReport`` that ``compute_drift`` returns.

Each partition of the window is summarised on its own (``summarize``), summaries add up
(``WindowSummary.merge``: counts and sums, so any split and any merge order give the same
totals), and ``finish_drift`` turns the total into the report. Per numeric feature (and the score)
a summary holds, against the profile's PSI edges and ECDF points r_0 < … < r_k:

- rows per PSI bin;
- rows equal to each r_j, rows strictly between r_{j-1} and r_j (below r_0, above r_k), and the
  sums of their distances to both ends of that interval.

Exact (the figures ``compute_drift`` gives, to rounding; equal to 1e-9 and tested so):

- **PSI** and **Jensen–Shannon**: from the bin counts, the same integers as ``compute_drift``.
- **KS** statistic: F_ref is a step function constant on each [r_j, r_{j+1}) and F_cur is
  monotone, so |F_ref - F_cur| is largest at the ends of each interval: at r_j (rows <= r_j)
  and just before r_{j+1} (rows < r_{j+1}) — the same integer counts ``compute_drift`` evaluates
  at the distinct values of both samples. Exact whether the reference ECDF is exact or capped (it
  is the same step function in both computations).
- **KS p-value**: scipy's asymptotic ``kstwo.sf(D, round(n·m/(n+m)))`` needs only D, n and m. When
  ``compute_drift`` would use scipy's exact small-sample distribution instead (both samples at
  most 10,000 rows, ``needs_rows``), the caller gathers the (small) window and calls
  ``compute_drift`` itself.
- **chi-square** statistic and p-value, **total variation**: from the category counts.
- severities, drifted flags and the report's aggregates follow from the above, by the same code.

**Wasserstein** (normalised): on an interval [r_j, r_{j+1}) where F_cur stays on one side of
F_ref the integral ∫|F_ref - F_cur| follows exactly from the interval's row count and distance
sums (as below r_0 and above r_k). Where F_cur crosses F_ref inside an interval the crossing
point is not in the summary. Exact when the window's values inside those intervals are given
(``crossings`` names them, ``values_in`` picks a partition's share, ``finish_drift(...,
inside=...)`` integrates them: the Dask path's second pass, when they are few enough to gather).
Otherwise an estimate within a stated bound: the integral lies between |D| = |∫(F_ref - F_cur)|
and the largest value the parts on each side of the crossing can take given D (each at most its
CDF gap at the interval's end times its length, F_cur being monotone from F_lo to F_hi); the
estimate is the middle of that range and the bound its half-width, summed over such intervals
and normalised like the distance (``DriftSummaryResult.wasserstein_bounds``; 0 where exact).

NaN/inf and empty windows raise the ``ValidationError`` ``compute_drift`` raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudops.config import MonitoringSettings
from fraudops.errors import ValidationError
from fraudops.models.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from fraudops.monitoring.drift import (
    _KS_EXACT_MAX_N,
    _STD_FLOOR,
    SCORE_FEATURE,
    DriftReport,
    FeatureDrift,
    _aggregate,
    _row,
)
from fraudops.monitoring.statistics import chi2_contingency_2xk, jensen_shannon, kstwo_sf, psi


@dataclass
class NumericSummary:
    """One numeric column of a window against a ``NumericProfile`` (k ECDF points)."""

    bins: np.ndarray  # int64, len(edges) + 1: rows per PSI bin
    at: np.ndarray  # int64, k: rows equal to each ECDF point
    inside: np.ndarray  # int64, k + 1: rows strictly before point j (and after it, last slot)
    to_next: np.ndarray  # float64, k + 1: Σ (r_j - x) of those rows (last slot: Σ (x - r_k))
    from_prev: np.ndarray  # float64, k + 1: Σ (x - r_{j-1}) (first slot: Σ (r_0 - x))

    def merge(self, other: NumericSummary) -> NumericSummary:
        return NumericSummary(
            self.bins + other.bins,
            self.at + other.at,
            self.inside + other.inside,
            self.to_next + other.to_next,
            self.from_prev + other.from_prev,
        )


@dataclass
class CategoricalSummary:
    values: np.ndarray  # float64, sorted distinct codes seen
    counts: np.ndarray  # int64

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        values = np.concatenate([self.values, other.values])
        counts = np.concatenate([self.counts, other.counts])
        merged, where = np.unique(values, return_inverse=True)
        return CategoricalSummary(merged, np.bincount(where, weights=counts).astype(np.int64))


@dataclass
class WindowSummary:
    rows: int
    features: dict[str, NumericSummary | CategoricalSummary]
    scores: NumericSummary | None
    nonfinite: dict[str, int] = field(default_factory=dict)  # feature -> NaN/inf rows
    nonfinite_scores: int = 0

    def merge(self, other: WindowSummary) -> WindowSummary:
        features: dict[str, NumericSummary | CategoricalSummary] = {}
        for name, mine in self.features.items():
            theirs = other.features[name]
            features[name] = mine.merge(theirs)  # type: ignore[arg-type]
        scores = None
        if self.scores is not None and other.scores is not None:
            scores = self.scores.merge(other.scores)
        elif (self.scores is None) != (other.scores is None):
            raise ValueError("cannot merge a window summary with scores and one without")
        bad = {k: self.nonfinite.get(k, 0) + other.nonfinite.get(k, 0) for k in self.features}
        return WindowSummary(
            self.rows + other.rows,
            features,
            scores,
            {k: v for k, v in bad.items() if v},
            self.nonfinite_scores + other.nonfinite_scores,
        )


@dataclass
class DriftSummaryResult:
    report: DriftReport
    # feature (and SCORE_FEATURE) -> the largest possible |reported - exact| normalised Wasserstein
    wasserstein_bounds: dict[str, float]


# ---- summarising a partition ---------------------------------------------------------------------


def summarize(
    profile: ReferenceProfile, matrix: np.ndarray, scores: np.ndarray | None = None
) -> WindowSummary:
    """The summary of one partition: ``matrix`` has the profile's features as columns, in order."""
    names = list(profile.features)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ValidationError(
            f"the current matrix must have {len(names)} columns (the profile's features "
            f"{names[:5]}...), got shape {matrix.shape}"
        )
    features: dict[str, NumericSummary | CategoricalSummary] = {}
    nonfinite: dict[str, int] = {}
    for i, name in enumerate(names):
        column = matrix[:, i]
        finite = np.isfinite(column)
        if not finite.all():
            nonfinite[name] = int((~finite).sum())
            column = column[finite]  # the check fails anyway; keep the summary well-formed
        feature = profile.features[name]
        if isinstance(feature, NumericProfile):
            features[name] = numeric_summary(feature, column)
        else:
            values, counts = np.unique(column, return_counts=True)
            features[name] = CategoricalSummary(values, counts.astype(np.int64))
    score_summary, bad_scores = None, 0
    if scores is not None:
        vector = np.asarray(scores, dtype=np.float64).ravel()
        finite = np.isfinite(vector)
        bad_scores = int((~finite).sum())
        score_summary = numeric_summary(profile.scores, vector[finite])
    return WindowSummary(matrix.shape[0], features, score_summary, nonfinite, bad_scores)


def numeric_summary(ref: NumericProfile, column: np.ndarray) -> NumericSummary:
    r = ref.ecdf_values
    k = len(r)
    bins = np.bincount(ref.bin_of(column), minlength=len(ref.edges) + 1).astype(np.int64)
    idx = np.searchsorted(r, column, side="right")  # points <= x: x is after point idx - 1
    equal = (idx > 0) & (r[np.maximum(idx - 1, 0)] == column)
    at = np.bincount(idx[equal] - 1, minlength=k).astype(np.int64)
    slot, x = idx[~equal], column[~equal]  # strictly between r[slot - 1] and r[slot]
    inside = np.bincount(slot, minlength=k + 1).astype(np.int64)
    nxt = r[np.minimum(slot, k - 1)]
    prv = r[np.maximum(slot - 1, 0)]
    # Slot 0 (below r_0) and slot k (above r_k) have one end only: both sums hold its distance.
    to_next = np.where(slot < k, nxt - x, x - nxt)
    from_prev = np.where(slot > 0, x - prv, prv - x)
    return NumericSummary(
        bins=bins,
        at=at,
        inside=inside,
        to_next=np.bincount(slot, weights=to_next, minlength=k + 1),
        from_prev=np.bincount(slot, weights=from_prev, minlength=k + 1),
    )


def merge_all(parts: list[WindowSummary]) -> WindowSummary:
    """Pairwise merge (a tree, as Dask reduces): the order changes only float rounding."""
    if not parts:
        raise ValidationError("the current window has no rows: nothing to compare")
    while len(parts) > 1:
        parts = [a.merge(b) for a, b in zip(parts[::2], parts[1::2], strict=False)] + (
            [parts[-1]] if len(parts) % 2 else []
        )
    return parts[0]


def needs_rows(profile: ReferenceProfile, rows: int) -> bool:
    """True when ``compute_drift`` would use scipy's exact small-sample KS distribution for some
    feature (both samples <= 10,000 rows): the window is then small enough to check whole."""
    numeric = [p for p in profile.features.values() if isinstance(p, NumericProfile)]
    return any(
        max(p.count, rows) <= _KS_EXACT_MAX_N and p.exact for p in [*numeric, profile.scores]
    )


# ---- finishing -----------------------------------------------------------------------------------


@dataclass
class _Numeric:
    name: str
    kind: str
    ref: NumericProfile
    m: int
    ks: float
    psi: float
    js: float
    wasserstein: float
    bound: float


def finish_drift(
    profile: ReferenceProfile,
    summary: WindowSummary,
    settings: MonitoringSettings,
    inside: dict[str, np.ndarray] | None = None,
) -> DriftSummaryResult:
    """The ``DriftReport`` of a whole window from its merged summary. ``inside``: per numeric
    feature (and SCORE_FEATURE), the window's values that fall inside its crossing intervals
    (``crossings``, gathered by a second pass): those intervals are then integrated exactly."""
    inside = inside or {}
    if summary.nonfinite:
        parts = [f"{name!r} ({count} rows)" for name, count in summary.nonfinite.items()]
        raise ValidationError("missing or infinite feature values in " + ", ".join(parts))
    if summary.rows == 0:
        raise ValidationError("the current window has no rows: nothing to compare")
    if summary.nonfinite_scores:
        raise ValidationError(f"scores: {summary.nonfinite_scores} non-finite values")
    if needs_rows(profile, summary.rows):
        raise ValueError(
            f"a window of {summary.rows} rows takes scipy's exact KS distribution: check it with "
            "compute_drift on the rows themselves"
        )
    floor = settings.psi_floor
    numeric: list[_Numeric] = []
    results: dict[str, FeatureDrift] = {}
    for name, feature in profile.features.items():
        part = summary.features[name]
        if isinstance(feature, NumericProfile):
            assert isinstance(part, NumericSummary)
            numeric.append(
                _numeric(
                    name, profile.kinds[name], feature, part, summary.rows, floor, inside.get(name)
                )
            )
        else:
            assert isinstance(part, CategoricalSummary)
            results[name] = _categorical(name, profile.kinds[name], feature, part, settings)
    if summary.scores is not None:
        numeric.append(
            _numeric(
                SCORE_FEATURE,
                "score",
                profile.scores,
                summary.scores,
                summary.rows,
                floor,
                inside.get(SCORE_FEATURE),
            )
        )
    d = np.array([p.ks for p in numeric])
    big = np.array([max(p.ref.count, p.m) for p in numeric], float)
    small = np.array([min(p.ref.count, p.m) for p in numeric], float)
    pvalues = kstwo_sf(d, np.round(big * small / (big + small))) if numeric else np.array([])
    score = None
    for p, pvalue in zip(numeric, pvalues, strict=True):
        row = _row(
            p.name,
            p.kind,
            settings,
            psi_value=p.psi,
            ks=(p.ks, float(pvalue)),
            chi2=None,
            wasserstein=p.wasserstein,
            js=p.js,
            effect=p.ks,
        )
        if p.name == SCORE_FEATURE:
            score = row
        else:
            results[p.name] = row
    features = [results[name] for name in profile.features]
    exact = all(p.ref.exact for p in numeric)
    report = _aggregate(profile, summary.rows, features, score, exact, settings)
    return DriftSummaryResult(report, {p.name: p.bound for p in numeric})


def _numeric(
    name: str,
    kind: str,
    ref: NumericProfile,
    s: NumericSummary,
    m: int,
    floor: float,
    inside: np.ndarray | None = None,
) -> _Numeric:
    n = ref.count
    cum_r = ref.ecdf_counts.astype(np.int64)
    le = np.cumsum(s.inside[:-1] + s.at)  # current rows <= r_j
    lt = le - s.at  # current rows < r_j
    pad_r = np.r_[0, cum_r]
    # At r_j and just before r_j (where F_ref is still its value at r_{j-1}): the two ends of
    # every interval, where |F_ref - F_cur| is largest.
    ks = max(
        float(np.max(np.abs(cum_r / n - le / m))),
        float(np.max(np.abs(pad_r[:-1] / n - lt / m))),
    )
    distance, bound = _wasserstein(ref, s, le, lt, m, inside)
    std = max(ref.stats.get("std", 0.0), _STD_FLOOR)
    actual = s.bins / m
    return _Numeric(
        name=name,
        kind=kind,
        ref=ref,
        m=m,
        ks=ks,
        psi=psi(ref.proportions, actual, floor),
        js=jensen_shannon(ref.proportions, actual),
        wasserstein=distance / std,
        bound=bound / std,
    )


def _wasserstein(
    ref: NumericProfile,
    s: NumericSummary,
    le: np.ndarray,
    lt: np.ndarray,
    m: int,
    inside: np.ndarray | None = None,
) -> tuple[float, float]:
    """∫|F_ref - F_cur| (estimate) and the largest possible error of the estimate; exact when
    ``inside`` holds the values in the crossing intervals."""
    n = ref.count
    r = ref.ecdf_values
    cum_r = ref.ecdf_counts.astype(np.int64)
    # Below r_0 F_ref = 0, above r_k it is 1: F_cur stays on one side, exact from the sums.
    outer = (s.from_prev[0] + s.to_next[-1]) / m
    if len(r) < 2:
        return float(outer), 0.0
    length = np.diff(r)  # interval j = [r_j, r_{j+1})
    c, lo, hi = cum_r[:-1], le[:-1], lt[1:]  # F_ref·n; F_cur·m at r_j and just before r_{j+1}
    inside_next = s.to_next[1:-1]  # Σ (r_{j+1} - x) of the rows inside interval j
    inside_prev = s.from_prev[1:-1]  # Σ (x - r_j)
    # F_cur >= F_ref on the whole interval: ∫(F_cur - F_ref) = (F_lo - F_ref)·L + Σ(r_{j+1} - x)/m
    above = lo * n >= c * m
    above_area = (lo * n - c * m) / (n * m) * length + inside_next / m
    # F_cur <= F_ref on the whole interval: ∫(F_ref - F_cur) = (F_ref - F_hi)·L + Σ(x - r_j)/m
    below = hi * n <= c * m
    below_area = (c * m - hi * n) / (n * m) * length + inside_prev / m
    crossing = ~(above | below)
    # Crossing at an unknown t: A = ∫(F_ref - F_cur)+ <= α·(t - r_j) and B = ∫(F_cur - F_ref)+
    # <= β·(r_{j+1} - t), with α = F_ref - F_lo, β = F_hi - F_ref, and A - B = D known: the
    # largest A + B over t is where both bounds meet.
    d = -np.where(crossing, above_area, 0.0)  # D = ∫(F_ref - F_cur)
    alpha = (c * m - lo * n) / (n * m)
    beta = (hi * n - c * m) / (n * m)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((d + beta * length) / (alpha + beta), 0.0, length)
    lower = np.abs(d)
    upper = np.where(crossing, np.maximum(2 * alpha * t - d, lower), 0.0)
    areas = np.where(above, above_area, np.where(below, below_area, (lower + upper) / 2))
    bounds = np.where(crossing, (upper - lower) / 2, 0.0)
    if inside is not None and crossing.any():
        js = np.flatnonzero(crossing)
        areas[js] = _crossing_areas(r, js, c[js], lo[js], n, m, inside)
        bounds[js] = 0.0
    return float(outer + areas.sum()), float(bounds.sum())


def crossings(profile: ReferenceProfile, summary: WindowSummary) -> dict[str, np.ndarray]:
    """Per numeric feature (and SCORE_FEATURE), the summary slots (``numeric_summary``'s
    ``inside`` index: j + 1 for the interval [r_j, r_{j+1})) where F_cur crosses F_ref, and the
    window rows inside them: ``crossing_rows`` — what an exact Wasserstein needs gathered."""
    out: dict[str, np.ndarray] = {}
    pairs = [(n, p, summary.features[n]) for n, p in profile.features.items()]
    if summary.scores is not None:
        pairs.append((SCORE_FEATURE, profile.scores, summary.scores))
    for name, ref, s in pairs:
        if not isinstance(ref, NumericProfile) or not isinstance(s, NumericSummary):
            continue
        if len(ref.ecdf_values) < 2:
            continue
        n, m = ref.count, summary.rows
        le = np.cumsum(s.inside[:-1] + s.at)
        lt = le - s.at
        c, lo, hi = ref.ecdf_counts[:-1].astype(np.int64), le[:-1], lt[1:]
        crossing = ~((lo * n >= c * m) | (hi * n <= c * m))
        slots = np.flatnonzero(crossing) + 1
        if len(slots):
            out[name] = slots
    return out


def crossing_rows(summary: WindowSummary, slots: dict[str, np.ndarray]) -> int:
    total = 0
    for name, where in slots.items():
        s = summary.scores if name == SCORE_FEATURE else summary.features[name]
        assert isinstance(s, NumericSummary)
        total += int(s.inside[where].sum())
    return total


def values_in(ref: NumericProfile, column: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """The values of ``column`` strictly inside the summary slots ``slots`` (one partition's
    share of what ``finish_drift``'s ``inside`` takes)."""
    r = ref.ecdf_values
    idx = np.searchsorted(r, column, side="right")
    equal = (idx > 0) & (r[np.maximum(idx - 1, 0)] == column)
    return column[~equal & np.isin(idx, slots)]


def _crossing_areas(
    r: np.ndarray,
    js: np.ndarray,
    c: np.ndarray,
    lo: np.ndarray,
    n: int,
    m: int,
    values: np.ndarray,
) -> np.ndarray:
    """∫|F_ref - F_cur| over each interval [r_j, r_{j+1}) of ``js`` from its own values: F_cur
    steps up by 1/m at each, from lo/m at r_j."""
    values = np.sort(values[np.isfinite(values)])
    slot = np.searchsorted(r, values, side="right") - 1  # the interval j each value is in
    out = np.empty(len(js))
    for k, j in enumerate(js):
        x = values[np.searchsorted(slot, j, "left") : np.searchsorted(slot, j, "right")]
        points = np.r_[r[j], x, r[j + 1]]
        levels = lo[k] + np.arange(len(x) + 1)  # current rows <= each segment's start
        out[k] = float(np.sum(np.abs(c[k] * m - levels * n) / (n * m) * np.diff(points)))
    return out


def _categorical(
    name: str,
    kind: str,
    ref: CategoricalProfile,
    s: CategoricalSummary,
    settings: MonitoringSettings,
) -> FeatureDrift:
    # compute_drift's own steps on the same (values, counts).
    categories = np.union1d(ref.categories.astype(np.float64), s.values)
    table = np.zeros((2, len(categories)))
    table[0, np.searchsorted(categories, ref.categories)] = ref.counts
    table[1, np.searchsorted(categories, s.values)] = s.counts
    expected, actual = table[0] / table[0].sum(), table[1] / table[1].sum()
    return _row(
        name,
        kind,
        settings,
        psi_value=psi(expected, actual, settings.psi_floor),
        ks=None,
        chi2=chi2_contingency_2xk(table),
        wasserstein=None,
        js=jensen_shannon(expected, actual),
        effect=0.5 * float(np.abs(expected - actual).sum()),
    )
