"""The aggregates' fixed histograms, and quantiles read back from them.

- Scores: ``SCORE_BINS`` (20) equal bins over [0, 1], each 0.05 wide; 1.0 falls in the last.
- Latency: ``LATENCY_BINS`` (60) log-spaced bins, 10 per decade from 0.01 ms to 10 s; values
  below fall in the first bin, above in the last. A bin spans a factor 10^0.1 ≈ 1.26, and a
  quantile is read at the geometric middle of its bin, so p50/p95/p99 are within ±12 % of the
  exact value (for latencies between 0.01 ms and 10 s).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fraudops.lake.schemas import LATENCY_BINS, SCORE_BINS

LATENCY_MIN_MS = 0.01
LATENCY_BINS_PER_DECADE = 10
LATENCY_EDGES_MS: npt.NDArray[np.float64] = LATENCY_MIN_MS * 10.0 ** (
    np.arange(LATENCY_BINS + 1) / LATENCY_BINS_PER_DECADE
)
# Where a quantile that falls in a bin is read: the bin's geometric middle.
LATENCY_CENTRES_MS: npt.NDArray[np.float64] = np.sqrt(LATENCY_EDGES_MS[:-1] * LATENCY_EDGES_MS[1:])
SCORE_EDGES: npt.NDArray[np.float64] = np.linspace(0.0, 1.0, SCORE_BINS + 1)


def score_bin(probability: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The score bin of each probability (NaN stays NaN's business: callers drop it)."""
    return np.clip((probability * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)


def latency_bin(latency_ms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.floor(np.log10(np.maximum(latency_ms, 1e-12) / LATENCY_MIN_MS) * 10 + 1e-9)
    return np.clip(steps, 0, LATENCY_BINS - 1).astype(np.int64)


def histogram_quantiles(
    counts: npt.NDArray[np.float64], quantiles: tuple[float, ...]
) -> npt.NDArray[np.float64]:
    """Per row of ``counts`` (rows x LATENCY_BINS), the latency at each quantile, in ms, read at
    its bin's geometric middle; NaN for a row with no count. Shape: rows x len(quantiles)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    total = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    out = np.full((counts.shape[0], len(quantiles)), np.nan)
    for j, q in enumerate(quantiles):
        # The first bin whose cumulative count reaches q of the total.
        index = (cumulative < (q * total)[:, None]).sum(axis=1)
        index = np.minimum(index, counts.shape[1] - 1)
        out[:, j] = np.where(total > 0, LATENCY_CENTRES_MS[index], np.nan)
    return out
