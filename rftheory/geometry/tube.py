"""The calibrated tube around the ridge: how many samples sit within the noise's reach of it.

A sample of p_t near a regular d-dimensional ridge is, to first order, a point of the ridge plus Gaussian noise
of variance h_t in each of the D - d normal directions (x = a_t x0 + sqrt(h_t) z). Its distance to the ridge,
in units of the noise's standard deviation, is then chi-distributed with D - d degrees of freedom::

    z(x) = |x - pi(x)| / sqrt(h_t)   ~   chi_{D-d}.

The **tube fraction** at level q is the fraction of samples with z(x) <= chi_{D-d}^{-1}(q). Samples drawn from
the exact p_t score q (exactly for data spread uniformly on a flat d-plane, approximately where the ridge is
curved on the scale sqrt(h_t)); a model whose samples collapse onto the ridge scores above q, one whose
samples miss it scores below. It is a count, so one sample moves it by at most 1/m however far it lies, and it
carries its binomial standard error. Distances are in the units of x at time t (length); z is dimensionless.

This replaces, as the headline, the paper's max-normalised residual (each residual divided by the largest),
which one far sample can move from 0.65 to 0.998; that measure stays available for comparison with [HQT].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi

__all__ = ["TubeFraction", "tube_radius", "tube_fraction", "DEFAULT_LEVEL"]

DEFAULT_LEVEL = 0.9


def tube_radius(D: int, d: int, level: float = DEFAULT_LEVEL) -> float:
    """The tube's radius in noise units, ``chi_{D-d}^{-1}(level)`` (dimensionless).

    Parameters
    ----------
    D : int
        Dimension.
    d : int
        Ridge dimension, 0 <= d < D.
    level : float, default 0.9
        Nominal level, in (0, 1).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If not 0 <= d < D or level is not in (0, 1).
    """
    D, d = int(D), int(d)
    if not (0 <= d < D):
        raise ValueError(f"d (ridge dimension) must satisfy 0 <= d < D = {D}; got {d}")
    lv = float(level)
    if not (0.0 < lv < 1.0):
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    return float(chi.ppf(lv, D - d))


@dataclass
class TubeFraction:
    """Tube fraction of m samples (only the ``counted`` ones enter it).

    Attributes
    ----------
    fraction : float
        Share of counted samples with z <= radius.
    se : float
        Its binomial standard error at the nominal level, ``sqrt(q (1 - q) / n_counted)``.
    level : float
        Nominal level q (what exact samples of p_t score).
    radius : float
        ``chi_{D-d}^{-1}(q)``, in noise units.
    z : numpy.ndarray, shape (m,)
        ``|x - pi(x)| / sqrt(h_t)`` per sample (NaN where not counted).
    inside : numpy.ndarray of bool, shape (m,)
        ``z <= radius`` (False where not counted).
    counted : numpy.ndarray of bool, shape (m,)
        The samples that entered the fraction.
    n_counted : int
    """

    fraction: float
    se: float
    level: float
    radius: float
    z: np.ndarray
    inside: np.ndarray
    counted: np.ndarray
    n_counted: int

    def __repr__(self) -> str:
        return (f"TubeFraction(fraction={self.fraction:.4f} +- {self.se:.4f}, level={self.level}, "
                f"radius={self.radius:.4g}, counted={self.n_counted}/{self.z.size})")


def tube_fraction(distance, h: float, D: int, d: int, level: float = DEFAULT_LEVEL, counted=None) -> TubeFraction:
    """Fraction of samples within the ``level`` chi-quantile tube of the ridge.

    Parameters
    ----------
    distance : (m,) array, |x - pi(x)| per sample (length, in the units of x at time t)
    h : float, the schedule's h_t > 0 (length^2)
    D, d : the ambient and ridge dimensions
    level : the nominal level q in (0, 1)
    counted : optional (m,) bool, the samples to count (e.g. converged, regular projections); the others are
        reported apart by the caller, never mixed in. Uncounted distances may be NaN.

    Returns
    -------
    TubeFraction

    Raises
    ------
    ValueError for non-positive or non-finite h, a counted distance that is negative or not finite, no counted
    sample, or bad d / level.
    """
    radius = tube_radius(D, d, level)
    hh = float(h)
    if not (np.isfinite(hh) and hh > 0):
        raise ValueError(f"h must be a positive finite variance; got {h!r}")
    dist = np.asarray(distance, dtype=np.float64)
    if dist.ndim != 1:
        raise ValueError(f"distance must have shape (m,); got {dist.shape}")
    mask = np.ones(dist.shape, bool) if counted is None else np.asarray(counted, dtype=bool)
    if mask.shape != dist.shape:
        raise ValueError(f"counted must have shape {dist.shape}; got {mask.shape}")
    n = int(mask.sum())
    if n == 0:
        raise ValueError("no sample is counted: the tube fraction is undefined")
    dc = dist[mask]
    if not np.all(np.isfinite(dc)) or np.any(dc < 0):
        raise ValueError("distance must be finite and non-negative for every counted sample")
    z = np.full(dist.shape, np.nan)
    z[mask] = dc / np.sqrt(hh)
    inside = np.zeros(dist.shape, bool)
    inside[mask] = z[mask] <= radius
    q = float(level)
    return TubeFraction(fraction=float(inside.sum() / n), se=float(np.sqrt(q * (1 - q) / n)), level=q,
                        radius=radius, z=z, inside=inside, counted=mask, n_counted=n)
