"""The distribution statistics a drift check is made of, as scipy computes them, made fast.

- ``kstwo_sf``: the two-sample Kolmogorov-Smirnov p-value (scipy's ``kstwo.sf``), two of whose
  branches are rewritten for speed at the sample sizes a monitoring window has;
- ``chi2_contingency_2xk``: ``scipy.stats.chi2_contingency`` of a 2×K table;
- ``psi`` and ``jensen_shannon`` of two share vectors.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats


def kstwo_sf(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``scipy.stats.kstwo.sf(d, n)``, faster where scipy is slow.

    scipy's ``_kolmogn`` (Simard & L'Ecuyer) picks a method by n and n·d²; for n > 140 two of its
    branches cost ~0.1 s each at n = 74,000 (the bench's size), which would dominate a whole check:

    - moderate drift (2.2 <= n·d² < 370): 2 × ``special.smirnov(n, d)``, an exact sum in
      double-double arithmetic. Here the same Birnbaum–Tingey sum, all terms positive, in log
      space with ``gammaln``: ~10× faster, relative difference ~1e-10.
    - a tiny statistic (n·d^1.5 <= 1.4, n <= 100,000): the Durbin matrix, then n!/n^n in a Python
      loop of n steps. Here the same matrix powered keeping only the row the result needs, and
      n!/n^n from Stirling's series: ~20× faster, relative difference ~1e-12.

    Every other case (and every n <= 140) is scipy's own call.
    """
    d = np.asarray(d, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    out = np.empty(len(d))
    t = n * d
    nxx = t * d
    inner = (n > 140) & (t > 1) & (t < n - 1) & (d < 0.5)
    smirnov = inner & (nxx >= 2.2) & (nxx < 370)
    durbin = inner & (nxx < 2.2) & (n <= 100_000) & (n * d**1.5 <= 1.4)
    for j in np.flatnonzero(smirnov):
        out[j] = 2.0 * _smirnov(int(n[j]), float(d[j]))
    for j in np.flatnonzero(durbin):
        out[j] = 1.0 - _durbin_cdf(int(n[j]), float(d[j]))
    rest = ~(smirnov | durbin)
    if rest.any():
        with np.errstate(over="ignore"):  # scipy's own kstwo overflows harmlessly for large n
            out[rest] = stats.kstwo.sf(d[rest], n[rest])
    return np.clip(out, 0.0, 1.0)


def _smirnov(n: int, d: float) -> float:
    """One-sided Pr(D+_n >= d): Birnbaum & Tingey's sum, every term positive, in log space."""
    j = np.arange(0, math.floor(n * (1 - d)) + 1, dtype=np.float64)
    base = 1.0 - d - j / n
    with np.errstate(divide="ignore", invalid="ignore"):
        log_base = np.where(base > 0, np.log(np.maximum(base, 0.0)), -np.inf)
        terms = (
            special.gammaln(n + 1.0)
            - special.gammaln(j + 1.0)
            - special.gammaln(n - j + 1.0)
            + np.where(n - j > 0, (n - j) * log_base, 0.0)
            + (j - 1) * np.log(d + j / n)
        )
    top = float(terms.max())
    return d * math.exp(top) * float(np.exp(terms - top).sum())


_SCALE_BITS = 128


def _durbin_cdf(n: int, d: float) -> float:
    """Pr(D_n <= d) by Durbin's matrix (Marsaglia, Tsang & Wang 2003), as scipy's _kolmogn_DMTW."""
    nd = n * d
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    intm = np.arange(1, m + 1)
    w = np.empty(m)
    v = 1.0 - h**intm
    fac = 1.0
    for j in range(1, m + 1):  # the same products as scipy, so the same rounding
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    v[-1] = (1.0 + max(2 * h - 1.0, 0) ** m - 2 * h**m) * fac
    H = np.zeros((m, m))
    for i in range(1, m):
        H[i - 1 :, i] = w[: m - i + 1]
    H[:, 0] = v
    H[-1, :] = v[::-1]

    row = np.zeros(m)  # row k-1 of the running power: all the result needs
    row[k - 1] = 1.0
    scale = 0  # both as binary exponents
    h_scale = 0
    big = 2.0**_SCALE_BITS
    remaining = n
    while remaining > 0:
        if remaining % 2:
            row = row @ H
            scale += h_scale
        remaining //= 2
        if remaining == 0:
            break
        H = H @ H
        h_scale *= 2
        if abs(H[k - 1, k - 1]) > big:
            H /= big
            h_scale += _SCALE_BITS
    # p = row[k-1] * n!/n^n * 2^scale, the product taken in logs.
    log_value = math.log(row[k - 1]) if row[k - 1] > 0 else -math.inf
    return math.exp(log_value + _log_nfactorial_over_n_pow_n(n) + scale * math.log(2.0))


def _log_nfactorial_over_n_pow_n(n: int) -> float:
    # Stirling's series with n·log(n) removed analytically (no cancellation); exact to double
    # precision for n > 140, the only use here.
    r = 1.0 / n
    series = r * (1 / 12 - r * r * (1 / 360 - r * r * (1 / 1260 - r * r / 1680)))
    return 0.5 * math.log(n) - n + 0.5 * math.log(2 * math.pi) + series


def chi2_contingency_2xk(table: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.chi2_contingency`` (correction=True) of a 2×K table with no empty column."""
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    observed = table
    if dof == 1:  # Yates: move each cell half a count towards its expectation
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, dof))


def psi(expected: np.ndarray, actual: np.ndarray, floor: float) -> float:
    """Σ (a - e)·ln(a / e) over bins, both shares floored at ``floor``."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen–Shannon distance (natural log) of two share vectors, as scipy's."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    mid = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / mid), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / mid), 0.0).sum()
    return float(np.sqrt(max((left + right) / 2.0, 0.0)))
