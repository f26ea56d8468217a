"""Statistics behind Monte Carlo tolerances: quantiles with multiplicity, standard errors, rate fits.

Every Monte Carlo tolerance in ``verification`` is ``z * SE`` with the z-score taken from here, so the
report can state the draws, the degrees of freedom, the number of simultaneous comparisons and the
family-wise false-alarm probability ``alpha`` behind each number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

__all__ = ["critical_value", "SeedMean", "seed_mean", "loglog_slope", "DEFAULT_ALPHA", "median_of_means",
           "robust_variance", "pilot_se"]

#: family-wise false-alarm probability used by the checks unless they state otherwise
DEFAULT_ALPHA = 1e-3


def critical_value(alpha: float = DEFAULT_ALPHA, comparisons: int = 1, dof: float | None = None) -> float:
    """Two-sided critical value with a Bonferroni correction.

    ``P(|T| > z) = alpha / comparisons`` for T ~ Student-t with ``dof`` degrees of freedom (normal when
    ``dof`` is None), so that over ``comparisons`` simultaneous tests the chance of any false alarm is at
    most ``alpha``.
    """
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    if isinstance(comparisons, bool) or int(comparisons) != comparisons or comparisons < 1:
        raise ValueError(f"comparisons must be a positive integer; got {comparisons!r}")
    q = 1.0 - alpha / (2.0 * int(comparisons))
    if dof is None:
        return float(_st.norm.ppf(q))
    if not dof > 0:
        raise ValueError(f"dof must be > 0; got {dof!r}")
    return float(_st.t.ppf(q, dof))


@dataclass
class SeedMean:
    """Mean over independent repetitions (axis 0) with its standard error.

    mean, se: arrays of the repetitions' trailing shape; n: number of repetitions; dof = n - 1.
    """

    mean: np.ndarray
    se: np.ndarray
    n: int

    @property
    def dof(self) -> int:
        return self.n - 1


def seed_mean(samples) -> SeedMean:
    """Mean and standard error (sample std with ddof=1, over sqrt(n)) along axis 0."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError("samples needs at least 2 repetitions along axis 0")
    n = x.shape[0]
    return SeedMean(mean=x.mean(axis=0), se=x.std(axis=0, ddof=1) / np.sqrt(n), n=n)


def loglog_slope(x, y, sd_log_y):
    """Weighted least-squares slope of ``log y`` on ``log x`` and its standard error.

    ``sd_log_y`` is the standard deviation of each ``log y`` (delta method: SE(y)/y). Returns
    ``(slope, se)``; the fit needs at least two distinct x.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(sd_log_y, dtype=np.float64)
    if x.shape != y.shape or x.shape != s.shape or x.ndim != 1:
        raise ValueError("x, y and sd_log_y must be 1-D arrays of the same length")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive for a log-log fit")
    if np.any(~(s > 0)) or not np.all(np.isfinite(s)):
        raise ValueError("sd_log_y must be finite and > 0")
    if np.unique(x).size < 2:
        raise ValueError("x needs at least two distinct values")
    lx, ly, w = np.log(x), np.log(y), 1.0 / s**2
    xm = np.sum(w * lx) / np.sum(w)
    sxx = np.sum(w * (lx - xm) ** 2)
    slope = np.sum(w * (lx - xm) * ly) / sxx
    return float(slope), float(1.0 / np.sqrt(sxx))


def median_of_means(samples, blocks: int):
    """Median over ``blocks`` consecutive equal blocks (axis 0) of the block means: a location estimate that
    a minority of corrupted samples (fewer than blocks/2 blocks touched) cannot move arbitrarily."""
    x = np.asarray(samples, dtype=np.float64)
    if isinstance(blocks, bool) or int(blocks) != blocks or blocks < 1:
        raise ValueError(f"blocks must be a positive integer; got {blocks!r}")
    if x.ndim < 1 or x.shape[0] < blocks:
        raise ValueError(f"need at least blocks = {blocks} samples along axis 0; got {x.shape[:1]}")
    k = x.shape[0] // int(blocks)
    means = x[: k * blocks].reshape((int(blocks), k) + x.shape[1:]).mean(axis=1)
    return np.median(means, axis=0)


def robust_variance(samples, blocks: int):
    """Variance (per trailing element) of Gaussian samples by median of means of squared deviations from the
    median of means, divided by the median of chi^2_k / k (k = samples per block): unbiased-in-median for
    Gaussian samples, and one corrupted sample cannot inflate it by more than one block's share."""
    x = np.asarray(samples, dtype=np.float64)
    centre = median_of_means(x, blocks)
    k = x.shape[0] // int(blocks)
    # each block's mean squared deviation is sigma^2 chi^2_k / k (one less dof from the centring is
    # negligible for a centre estimated from all blocks)
    return median_of_means((x - centre) ** 2, blocks) / (_st.chi2.ppf(0.5, k) / k)


def pilot_se(pilot, n_judged: int, blocks: int = 8):
    """Standard error of the mean of ``n_judged`` new replicates, from an independent ``pilot`` set of
    replicates (axis 0) by :func:`robust_variance`: neither the judged replicates nor a corrupted pilot
    replicate can widen it."""
    if isinstance(n_judged, bool) or int(n_judged) != n_judged or n_judged < 1:
        raise ValueError(f"n_judged must be a positive integer; got {n_judged!r}")
    return np.sqrt(robust_variance(pilot, blocks) / int(n_judged))
