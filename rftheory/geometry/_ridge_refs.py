"""Closed-form reference ridges (re-exported by :mod:`rftheory.geometry.ridge`): the radius of the ridge of a
blurred circle, and the affine hull of a data set (the ridge of p_t at small t lies near it)."""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

_EPS = np.finfo(np.float64).eps

__all__ = ["blurred_circle_radius", "affine_hull"]


def blurred_circle_radius(h: float, a: float = 1.0, rho: float = 1.0) -> float:
    """P3: radius of the 1-D ridge of a uniform circle blurred to (a, h) (docs/theory.md §2).

    Parameters
    ----------
    h : float
        Noise variance h_t (> 0, length^2).
    a : float, default 1.0
        Signal scale a_t (> 0).
    rho : float, default 1.0
        Radius of the circle (> 0, length).

    Returns
    -------
    float
        The positive root r of ``r = a rho I_1(a rho r/h)/I_0(a rho r/h)`` (length); NaN when
        ``a^2 rho^2/(2h) <= 1`` (the ridge has collapsed to the centre).

    Raises
    ------
    ValueError
        If h, a or rho is not positive.
    """
    if not (h > 0 and a > 0 and rho > 0):
        raise ValueError("h, a and rho must be positive")
    k = a * rho / h
    if a * a * rho * rho / (2 * h) <= 1.0:
        return float("nan")

    def f(r):  # ratio of scaled Bessel functions: no overflow at large arguments
        return r - a * rho * special.i1e(k * r) / special.i0e(k * r)

    lo = 1e-300
    # f(r) < 0 just above 0 when the slope a rho k/2 of the ratio exceeds 1; f(a rho) > 0
    r_small = min(a * rho, 1e-6 * h / (a * rho))
    lo = r_small if f(r_small) < 0 else lo
    return float(optimize.brentq(f, lo, a * rho, xtol=1e-15, rtol=4 * _EPS, maxiter=500))


def affine_hull(data, rtol: float = 1e-10):
    """P2 geometry of a training set: its affine hull and the common normal component (docs/theory.md §2).

    Parameters
    ----------
    data : array_like, shape (n, D)
        Training set.
    rtol : float, default 1e-10
        Singular values above ``rtol`` times the largest span the hull.

    Returns
    -------
    origin : numpy.ndarray, shape (D,)
        The data mean.
    basis : numpy.ndarray, shape (D, k)
        Orthonormal basis of the hull's direction space.
    normal_basis : numpy.ndarray, shape (D, D - k)
        Orthonormal basis of its complement N.
    c : numpy.ndarray, shape (D - k,)
        The common N-component of every x_i (coordinates in ``normal_basis``).
    """
    X = np.asarray(data, dtype=np.float64)
    origin = X.mean(axis=0)
    u, sv, vt = np.linalg.svd(X - origin, full_matrices=True)
    k = int(np.sum(sv > rtol * max(sv.max() if sv.size else 0.0, _EPS))) if sv.size else 0
    basis = vt[:k].T
    normal = vt[k:].T
    c = normal.T @ origin
    return origin, basis, normal, c
