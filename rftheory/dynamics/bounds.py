"""T1-T4 as functions of measured quantities (docs/theory.md §3).

Conventions: t is forward time, the samplers run it from T down to t; integrals ``int_t^T`` are over
recorded grids (decreasing arrays ``times``) with the trapezoid rule.

* T1 (exact, OU): off the affine hull the normal offset ``y = P_N x - a_t c`` obeys a scalar linear ODE;
  :func:`t1_ode` and :func:`t1_sde_mean` / :func:`t1_sde_var` are its solutions (derivations/t1_normal_dynamics.py).
* T2: Groenwall bound on the normal offset from measured ``beta``, ``|P_perp e|``, ``|d_t pi|`` and the
  frame-turning rate ``kappa`` (with or without it).
* T3: Groenwall bound on the tangential deviation from measured ``lambda_1`` and ``|P_par e|``.
* T4: attractors of the learned drift restricted to a traced 1-D ridge; inter-mode ones
  (:mod:`rftheory.dynamics._attractors`, re-exported here).

T1's closed forms live in :mod:`rftheory.dynamics._t1` and are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import short_repr
from ._attractors import Attractor, ridge_attractors  # re-exported
from ._t1 import t1_ode, t1_sde_mean, t1_sde_var, t1_stationary_var  # re-exported

__all__ = ["t1_ode", "t1_sde_mean", "t1_sde_var", "t1_stationary_var", "gronwall_normal", "gronwall_tangent",
           "Attractor", "ridge_attractors"]


# ----------------------------------------------------------------------------- Groenwall bounds
def _check_series(times, *arrays):
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size < 2 or not np.all(np.diff(times) < 0):
        raise ValueError("times must be a strictly decreasing 1-D array (reverse time)")
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.shape[0] != times.size:
            raise ValueError(f"series must have length {times.size} along axis 0; got {a.shape}")
        out.append(a)
    return times, out


def _gronwall(times, rate, forcing, x0):
    """Solve ``dX/ds = -rate X + forcing`` along reverse time s (times decreasing): on each interval rate and
    forcing are replaced by their endpoint means and the linear ODE is solved exactly (exponential
    integrator). Exact for constant coefficients, second order otherwise (callers add the Richardson
    estimate of the error, see :func:`_with_quadrature_error`)."""
    ds = -np.diff(times)
    X = np.empty((times.size,) + np.shape(x0))
    X[0] = x0
    for k in range(times.size - 1):
        r = 0.5 * (rate[k] + rate[k + 1])
        f = 0.5 * (forcing[k] + forcing[k + 1])
        decay = np.exp(-r * ds[k])
        # int_0^ds e^{-r (ds - v)} dv = (1 - e^{-r ds}) / r   (-> ds as r -> 0)
        gain = np.where(np.abs(r * ds[k]) > 1e-12, -np.expm1(-r * ds[k]) / np.where(r == 0, 1, r), ds[k])
        X[k + 1] = decay * X[k] + gain * f
    return X


def gronwall_normal(times, beta, e_perp, ridge_velocity, nu0, kappa=None, sde: bool = False) -> np.ndarray:
    """T2: the Groenwall bound on the normal offset |nu(t)| along one or many trajectories (docs/theory.md §3).

    ODE: ``d|nu|/ds <= -(beta - 1 - kappa)|nu| + |P_perp e| + |d_t pi|``; SDE drift: rate ``2 beta - 1 - kappa``
    and forcing ``2|P_perp e| + |d_t pi|``. The linear ODE is integrated exactly on each interval with the
    endpoint means of rate and forcing (exact for constants, second order otherwise).

    Parameters
    ----------
    times : array_like, shape (k,)
        Recorded times, strictly decreasing (reverse time).
    beta : array_like, shape (k,) or (k, m)
        Normal curvature along each trajectory (1/length^2 in score units: 1/time for OU).
    e_perp : array_like, shape (k,) or (k, m)
        |P_perp e| (1/length).
    ridge_velocity : array_like, shape (k,) or (k, m)
        |P_perp d_t pi| (length/time).
    nu0 : float or array_like, shape (m,)
        Measured offset at ``times[0]`` (length).
    kappa : array_like, shape (k,) or (k, m), optional
        Frame-turning rate; None gives the first-order bound without it.
    sde : bool, default False
        Use the reverse-SDE drift.

    Returns
    -------
    numpy.ndarray, shape (k,) or (k, m)
        The bound at each recorded time (length).

    Raises
    ------
    ValueError
        If times are not strictly decreasing or a series does not have length k along axis 0.
    """
    times, (beta, e_perp, vel) = _check_series(times, beta, e_perp, ridge_velocity)
    kap = np.zeros_like(beta) if kappa is None else _check_series(times, kappa)[1][0]
    if sde:
        rate, forcing = 2.0 * beta - 1.0 - kap, 2.0 * e_perp + vel
    else:
        rate, forcing = beta - 1.0 - kap, e_perp + vel
    return _gronwall(times, rate, forcing, np.asarray(nu0, dtype=np.float64))


def gronwall_tangent(times, lambda1, e_par, sde: bool = False) -> np.ndarray:
    """T3: the bound ``int_t^T exp(int_t^u (1 + lambda_1^+)) |P_par e(u)| du`` on the tangential deviation.

    ``1 + 2 lambda_1^+`` and ``2 |P_par e|`` for the SDE drift; starts from 0 at ``times[0]``
    (docs/theory.md §3).

    Parameters
    ----------
    times : array_like, shape (k,)
        Recorded times, strictly decreasing (reverse time).
    lambda1 : array_like, shape (k,) or (k, m)
        Tangential (largest) Hessian eigenvalue along the path (1/length^2).
    e_par : array_like, shape (k,) or (k, m)
        |P_par e| (1/length).
    sde : bool, default False
        Use the reverse-SDE drift.

    Returns
    -------
    numpy.ndarray, shape (k,) or (k, m)
        The bound (length).

    Raises
    ------
    ValueError
        If times are not strictly decreasing or a series does not have length k along axis 0.
    """
    times, (lam, e_par) = _check_series(times, lambda1, e_par)
    lp = np.maximum(lam, 0.0)
    rate = -(1.0 + (2.0 if sde else 1.0) * lp)
    forcing = (2.0 if sde else 1.0) * e_par
    return _gronwall(times, rate, forcing, np.zeros(e_par.shape[1:]))


# ----------------------------------------------------------------------------- evaluation over trajectories
@dataclass
class BoundReport:
    """Coverage of a bound (T2 or T3) over trajectories.

    Attributes
    ----------
    name : str
        Which bound.
    n_total : int
        Trajectories measured.
    n_tube : int
        Those inside the beta-regular tube from some time on (the bound's assumptions).
    coverage : float
        Fraction of those for which measured <= bound at every recorded time.
    median_ratio : float
        Median over them of the median measured/bound ratio.
    worst_ratio : float
        Largest ratio seen.
    violations : numpy.ndarray of int
        Indices of trajectories that break the bound.
    max_ratios : numpy.ndarray
        Per evaluated trajectory, the largest measured/bound over its recorded times.
    """

    name: str
    n_total: int
    n_tube: int
    coverage: float
    median_ratio: float
    worst_ratio: float
    violations: np.ndarray
    max_ratios: np.ndarray = None

    __repr__ = short_repr


def tube_mask(meas, width: str = "beta"):
    """(k, m) inside the beta-regular tube: converged regular projection, |nu| <= beta^{-1/2} (the normal
    profile's width) and no jump of the projection larger than that width between records."""
    w = 1.0 / np.sqrt(np.maximum(meas.beta, 1e-300))
    jump = np.vstack([np.zeros((1, meas.proj.shape[1])), np.linalg.norm(np.diff(meas.proj, axis=0), axis=2)])
    return meas.regular & (meas.distance <= w) & (jump <= w)


def _tail_start(mask):
    """Index from which mask holds to the end, per column (-1 if it never does)."""
    tail = np.flip(np.cumprod(np.flip(mask, axis=0), axis=0), axis=0).astype(bool)
    return np.where(tail.any(axis=0), np.argmax(tail, axis=0), -1)


def _report(name, ratios_by_traj, n_total):
    n = len(ratios_by_traj)
    if n == 0:
        return BoundReport(name, n_total, 0, float("nan"), float("nan"), float("nan"), np.zeros(0, dtype=int),
                           np.zeros(0))
    ok = np.array([np.all(r <= 1.0 + 1e-9) for _, r in ratios_by_traj])
    med = float(np.median([np.median(r) for _, r in ratios_by_traj]))
    worst = float(max(np.max(r) for _, r in ratios_by_traj))
    viol = np.array([j for (j, _), o in zip(ratios_by_traj, ok) if not o], dtype=int)
    maxr = np.array([float(np.max(r)) if r.size else 0.0 for _, r in ratios_by_traj])
    return BoundReport(name, n_total, n, float(ok.mean()), med, worst, viol, maxr)


def _with_quadrature_error(fn, times, *series):
    """``(bound, tol)``: the bound integrated on the recorded times and its quadrature error, estimated by
    Richardson from the same bound on every other record (the rule is second order, so the difference is
    ~3x the fine grid's error; it is used whole). Odd records take the larger neighbouring estimate."""
    b = fn(times, *series)
    if times.size < 5:
        return b, np.zeros_like(b)
    b2 = fn(times[::2], *(x[::2] for x in series))
    err = np.abs(b[::2] - b2)
    tol = np.empty_like(b)
    tol[::2] = err
    nxt = np.append(err[1:], err[-1])
    tol[1::2] = np.maximum(err, nxt)[: tol[1::2].size]
    return b, tol


def t2_series(meas, use_kappa: bool = True, relative_velocity: bool = False, min_points: int = 3):
    """(k, m) T2 bound for every trajectory of :class:`rftheory.dynamics.motion.PathMeasurements`, NaN before it
    enters the tube for good (and for trajectories in it for fewer than ``min_points`` records): the
    Groenwall bound started at the measured offset, plus its quadrature error (Richardson), so a tight bound
    (T2 is an equality for collinear data with a constant normal error) is not "violated" by the rule's own
    error."""
    start = _tail_start(tube_mask(meas))
    vel = meas.ridge_velocity_rel if relative_velocity else meas.ridge_velocity
    B = np.full(meas.distance.shape, np.nan)
    for j in np.flatnonzero(start >= 0):
        i0 = start[j]
        if meas.times.size - i0 < min_points:
            continue
        sl = slice(i0, None)
        nu0 = meas.distance[i0, j]
        kap = meas.kappa[sl, j] if use_kappa else np.zeros(meas.times[sl].size)
        b, tol = _with_quadrature_error(lambda tt, bb, ee, vv, kk: gronwall_normal(tt, bb, ee, vv, nu0, kappa=kk),
                                        meas.times[sl], meas.beta[sl, j], meas.e_perp[sl, j], vel[sl, j], kap)
        B[sl, j] = b + tol
    return B


def t3_series(meas_learned, meas_exact, min_points: int = 3):
    """``(par, B)``, each (k, m): the tangential deviation |P_par (x_learned - x_exact)| (tangent frame at the
    learned point) and the T3 bound from lambda_1 and |P_par e| along the learned path plus its quadrature
    error, over the stretch from the first record where both paths stay beta-regular; NaN elsewhere."""
    from ..geometry.ridge import frame

    if meas_learned.x.shape != meas_exact.x.shape:
        raise ValueError("learned and exact measurements must have the same shape")
    ok = meas_learned.regular & meas_exact.regular
    par = np.full(ok.shape, np.nan)
    B = np.full(ok.shape, np.nan)
    dens = _density_of(meas_learned)
    for j in range(ok.shape[1]):
        stop = np.flatnonzero(~ok[:, j])
        end = stop[0] if stop.size else ok.shape[0]
        if end < min_points:
            continue
        b, tol = _with_quadrature_error(gronwall_tangent, meas_learned.times[:end], meas_learned.lambda1[:end, j],
                                        meas_learned.e_par[:end, j])
        B[:end, j] = b + tol
        for i in range(end):
            dlt = (meas_learned.x[i, j] - meas_exact.x[i, j])[None]
            fr = frame(dens, meas_learned.x[i, j][None], float(meas_learned.times[i]), meas_learned.d)
            par[i, j] = np.linalg.norm(dlt - fr.project_normal(dlt))
    return par, B


def _ratios(measured, B, zero_tol):
    """Per evaluated column (not all NaN): measured/bound from its second evaluated record on."""
    out = []
    for j in range(B.shape[1]):
        rows = np.flatnonzero(~np.isnan(B[:, j]))
        if rows.size == 0:
            continue
        b, m = B[rows, j], measured[rows, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(b > 0, m / b, np.where(m > zero_tol, np.inf, 0.0))
        out.append((j, r[1:]))
    return out


def evaluate_t2(meas, use_kappa: bool = True, relative_velocity: bool = False, min_points: int = 3):
    """T2 coverage over every trajectory (see :func:`t2_series`): measured distance against the bound."""
    B = t2_series(meas, use_kappa, relative_velocity, min_points)
    name = "T2" + ("+kappa" if use_kappa else "") + (" (relative velocity)" if relative_velocity else "")
    return _report(name, _ratios(meas.distance, B, 0.0), meas.distance.shape[1])


def evaluate_t3(meas_learned, meas_exact, min_points: int = 3):
    """T3 coverage over trajectory pairs from the same starts (see :func:`t3_series`)."""
    par, B = t3_series(meas_learned, meas_exact, min_points)
    return _report("T3", _ratios(par, B, 1e-12), par.shape[1])


def _density_of(meas):
    dens = getattr(meas, "density", None)
    if dens is None:
        raise ValueError("measurements carry no density (use dynamics.measure)")
    return dens
