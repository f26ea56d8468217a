"""Reverse-time grids (docs/theory.md §1): decreasing float64 arrays from ``t_max`` to ``t_min`` (the order
reverse-time samplers walk), geometric, uniform or EDM-spaced. :mod:`rftheory.density.schedules` re-exports
every public name here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["geometric_grid", "uniform_grid", "edm_grid"]


def _check_grid_args(t_max, t_min, n):
    if not (np.isfinite(t_max) and np.isfinite(t_min)):
        raise ValueError("t_max and t_min must be finite")
    if t_min <= 0:
        raise ValueError(f"t_min must be > 0 (got {t_min})")
    if t_max <= t_min:
        raise ValueError(f"t_max must exceed t_min (got t_max={t_max}, t_min={t_min})")
    if int(n) != n or n < 2:
        raise ValueError(f"n (number of grid points) must be an integer >= 2 (got {n})")


def geometric_grid(t_max: float, t_min: float, n: int) -> np.ndarray:
    """``n`` times from ``t_max`` down to ``t_min``, equally spaced in log t ([HQT]'s grid).

    Parameters
    ----------
    t_max : float
        First (largest) time, finite.
    t_min : float
        Last time, 0 < t_min < t_max.
    n : int
        Number of grid points (>= 2).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Strictly decreasing times; the ends are exactly t_max and t_min.

    Raises
    ------
    ValueError
        If the times are not finite, t_min <= 0, t_max <= t_min, or n is not an integer >= 2.
    """
    _check_grid_args(t_max, t_min, n)
    g = np.geomspace(t_max, t_min, int(n))
    g[0], g[-1] = t_max, t_min
    return g


def uniform_grid(t_max: float, t_min: float, n: int) -> np.ndarray:
    """``n`` equally spaced times from ``t_max`` down to ``t_min``.

    Parameters
    ----------
    t_max : float
        First (largest) time, finite.
    t_min : float
        Last time, 0 < t_min < t_max.
    n : int
        Number of grid points (>= 2).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Strictly decreasing times.

    Raises
    ------
    ValueError
        If the times are not finite, t_min <= 0, t_max <= t_min, or n is not an integer >= 2.
    """
    _check_grid_args(t_max, t_min, n)
    return np.linspace(t_max, t_min, int(n))


def edm_grid(t_max: float, t_min: float, n: int, rho: float = 7.0) -> np.ndarray:
    """EDM-style grid in t: ``t_i = (t_max^{1/rho} + i/(n-1) (t_min^{1/rho} - t_max^{1/rho}))^rho``.

    Karras et al. space the noise level this way; here it is applied to the schedule's own time (for VE with
    sigma = t it is exactly the EDM grid). Denser near t_min for rho > 1.

    Parameters
    ----------
    t_max : float
        First (largest) time, finite.
    t_min : float
        Last time, 0 < t_min < t_max.
    n : int
        Number of grid points (>= 2).
    rho : float, default 7.0
        Exponent (> 0).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Strictly decreasing times; the ends are exactly t_max and t_min.

    Raises
    ------
    ValueError
        If the times are not finite, t_min <= 0, t_max <= t_min, n is not an integer >= 2, or rho <= 0.
    """
    _check_grid_args(t_max, t_min, n)
    if not rho > 0:
        raise ValueError(f"rho must be > 0 (got {rho})")
    i = np.arange(int(n), dtype=np.float64) / (int(n) - 1)
    g = (t_max ** (1.0 / rho) + i * (t_min ** (1.0 / rho) - t_max ** (1.0 / rho))) ** rho
    g[0], g[-1] = t_max, t_min
    return g
