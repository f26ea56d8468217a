"""T1 (docs/theory.md §3): exact, OU: off the affine hull the normal offset ``y = P_N x - a_t c`` obeys a scalar
linear ODE; :func:`t1_ode` and :func:`t1_sde_mean` / :func:`t1_sde_var` are its solutions
(derivations/t1_normal_dynamics.py). :mod:`rftheory.dynamics.bounds` re-exports every public name here.
"""
from __future__ import annotations

import numpy as np
from scipy import integrate

from ..density.schedules import OU

__all__ = ["t1_ode", "t1_sde_mean", "t1_sde_var", "t1_stationary_var"]


def _require_ou(schedule):
    if schedule is not None and not isinstance(schedule, OU):
        raise ValueError("T1's closed forms are for the OU schedule (docs/theory.md §3)")


def _integral(f, t, T, quad_pts):
    """``int_t^T f(u) du`` for a callable f by adaptive quadrature, or trapezoid on (times, values)."""
    if callable(f):
        val, _ = integrate.quad(f, t, T, limit=500, epsabs=0.0, epsrel=1e-12, points=quad_pts)
        return val
    raise TypeError("integrand must be callable")


def t1_ode(y_T, T: float, t: float, e_normal=None, schedule=None) -> np.ndarray:
    """T1, PF-ODE: ``y(t) = sqrt(h_t/h_T) y(T) + sqrt(h_t) int_t^T h_u^{-1/2} e_N(u) du`` (OU; docs/theory.md §3).

    Parameters
    ----------
    y_T : array_like, shape (k,)
        Off-hull offset ``P_N x - a_T c`` at time T (length; k = D - dim of the hull).
    T : float
        Start time (> t).
    t : float
        Time at which the offset is predicted (> 0).
    e_normal : None, array_like of shape (k,), or callable
        The normal score error along the path: None (the exact score), a constant, or ``u -> (k,)``. It must not
        depend on x for the formula to be exact (1/length).
    schedule : Schedule, optional
        Must be OU (or None).

    Returns
    -------
    numpy.ndarray, shape (k,)
        The predicted offset y(t) (length). Constant errors use the closed form of the integral, callables
        adaptive quadrature (relative tolerance 1e-12).

    Raises
    ------
    ValueError
        If ``schedule`` is not OU.
    """
    _require_ou(schedule)
    sch = OU()
    y_T = np.asarray(y_T, dtype=np.float64)
    hT, ht = float(sch.h(T)), float(sch.h(t))
    out = np.sqrt(ht / hT) * y_T
    if e_normal is None:
        return out
    if callable(e_normal):
        k = np.asarray(e_normal(T)).shape[0]
        integ = np.array([_integral(lambda u, j=j: np.asarray(e_normal(u))[j] / np.sqrt(sch._h(u)), t, T, None)
                          for j in range(k)])
    else:
        # closed form of int_t^T (1 - e^{-2u})^{-1/2} du = arccosh(e^T) - arccosh(e^t)
        integ = np.asarray(e_normal, dtype=np.float64) * (np.arccosh(np.exp(T)) - np.arccosh(np.exp(t)))
    return out + np.sqrt(ht) * integ


def t1_sde_mean(y_T, T: float, t: float, e_normal=None, schedule=None) -> np.ndarray:
    """T1, reverse SDE mean: ``(h_t/a_t)(a_T/h_T) y(T) + 2 (h_t/a_t) int_t^T (a_u/h_u) e_N du`` (OU).

    Parameters
    ----------
    y_T : array_like, shape (k,)
        Off-hull offset ``P_N x - a_T c`` at time T (length; k = D - dim of the hull).
    T : float
        Start time (> t).
    t : float
        Time at which the offset is predicted (> 0).
    e_normal : None, array_like of shape (k,), or callable
        The normal score error along the path: None (the exact score), a constant, or ``u -> (k,)``. It must not
        depend on x for the formula to be exact (1/length).
    schedule : Schedule, optional
        Must be OU (or None).

    Returns
    -------
    numpy.ndarray, shape (k,)
        The mean offset E[y(t)] (length).

    Raises
    ------
    ValueError
        If ``schedule`` is not OU.
    """
    _require_ou(schedule)
    sch = OU()
    y_T = np.asarray(y_T, dtype=np.float64)
    r = lambda u: float(sch.h(u) / sch.a(u))  # noqa: E731  (= 2 sinh u)
    out = r(t) / r(T) * y_T
    if e_normal is None:
        return out
    if callable(e_normal):
        k = np.asarray(e_normal(T)).shape[0]
        integ = np.array([_integral(lambda u, j=j: np.asarray(e_normal(u))[j] * sch._a(u) / sch._h(u), t, T,
                                    None) for j in range(k)])
    else:
        # int a/h du = int du / (2 sinh u) = (1/2) log(tanh(T/2) / tanh(t/2))
        integ = np.asarray(e_normal, dtype=np.float64) * 0.5 * np.log(np.tanh(T / 2) / np.tanh(t / 2))
    return out + 2.0 * r(t) * integ


def t1_sde_var(T: float, t: float, var_T: float = 0.0, schedule=None) -> float:
    """T1, reverse SDE: per-coordinate variance of y(t) given ``var(y(T)) = var_T`` (OU).

    ``(r_t/r_T)^2 var_T + r_t^2 (1/h_t - 1/h_T)`` with ``r = h/a``; from p_T (``var_T = h_T``) it equals h_t.

    Parameters
    ----------
    T : float
        Start time.
    t : float
        Time of the prediction (0 < t < T).
    var_T : float, default 0.0
        Variance at T (length^2).
    schedule : Schedule, optional
        Must be OU (or None).

    Returns
    -------
    float
        The variance (length^2).

    Raises
    ------
    ValueError
        If ``schedule`` is not OU.
    """
    _require_ou(schedule)
    sch = OU()
    rt, rT = float(sch.h(t) / sch.a(t)), float(sch.h(T) / sch.a(T))
    return (rt / rT) ** 2 * var_T + rt * rt * (1.0 / float(sch.h(t)) - 1.0 / float(sch.h(T)))


def t1_stationary_var(t: float) -> float:
    """Off-hull variance of the exact reverse SDE started from p_T: h_t (OU).

    Parameters
    ----------
    t : float
        Time (> 0).

    Returns
    -------
    float
        ``h_t`` (length^2).
    """
    return float(OU().h(t))
