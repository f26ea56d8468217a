"""Reach -> align -> slide along recorded trajectories, for ``rftheory analyze --trajectories``: the
measurements of :func:`rftheory.dynamics.motion.measure` (without velocity and kappa) over pooled densities.

At each recorded time t_k the states are measured by chunks of ``CHUNK`` over the same pools as
:func:`rftheory.apps.analyze.analyze_samples` (:class:`rftheory.apps.analyze_pools.Pools`): the union of each
state's K nearest training rows, checked to carry all but ``rtol`` of the posterior weight at the states and at
their projections (grown x4, re-measured when a projection leaves the pool's reach), the dense chunked
EmpiricalDensity once 4 K >= n (large t_k). Memory beyond the inputs (states (k, m, D)) and outputs: O(chunk K D)
plus the dense density's streaming block; time per state O(K) instead of O(n) where pools hold (small t_k).
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .._checks import as_data, check_ridge_dim
from ..density.schedules import get_schedule
from ..geometry import ridge
from ..geometry.tube import DEFAULT_LEVEL
from .analyze_pools import Pools, RowIndex

__all__ = ["measure_pooled", "trajectory_phases", "CHUNK", "TRUNC_RTOL", "POOL_K0"]

CHUNK = 256  # states per chunk
TRUNC_RTOL = 1e-12  # weight a pool may drop (relative), as in analyze
POOL_K0 = 64  # first neighbours per state in a pool


def _stats(v) -> dict:
    from ._analysis import _stats as s

    return s(v)


def _check(X, states, times, schedule):
    st = np.asarray(states, dtype=np.float64)
    tm = np.asarray(times, dtype=np.float64)
    if st.ndim != 3 or st.shape[2] != X.shape[1] or tm.shape != (st.shape[0],) or st.shape[0] < 2:
        raise ValueError(f"trajectories need states (k >= 2, m, D = {X.shape[1]}) and times (k,); got states "
                         f"{st.shape} and times {tm.shape}")
    if not (np.all(np.isfinite(st)) and np.all(np.isfinite(tm)) and np.all(np.diff(tm) < 0)):
        raise ValueError("trajectories: states must be finite and times finite and strictly decreasing")
    sched = get_schedule(schedule)
    sched.check_t(tm, "times")
    return st, tm, sched


def measure_pooled(train, states, times, d: int, schedule="ou", model=None, tol: float = 1e-9,
                   progress: bool = False):
    """:func:`rftheory.dynamics.motion.measure` (``velocity=False, kappa=False``) of recorded states against
    the d-ridge of the training set's p_t, over pooled densities (module doc).

    Parameters
    ----------
    train : array_like, shape (n, D)
        Training set X.
    states : array_like, shape (k, m, D)
        Recorded states of m trajectories at k >= 2 times; finite.
    times : array_like, shape (k,)
        The recording times, finite and strictly decreasing.
    d : int
        Ridge dimension (0 <= d < D).
    schedule : str, default "ou"
        Noise schedule name.
    model : score field or None, default None
        With it, the normal and tangent parts of its score error at the states (1/length); else zeros.
    tol : float, default 1e-9
        Projection tolerance (1/length), as ``measure``'s.
    progress : bool, default False
        Show a progress bar over the recorded times.

    Returns
    -------
    meas : rftheory.dynamics.motion.PathMeasurements
        ``distance``, ``proj``, ``status``, ``beta``, ``eigengap``, ``lambda1``, ``regular``, ``e_perp``,
        ``e_par`` filled; ``ridge_velocity``, ``ridge_velocity_rel`` and ``kappa`` NaN.
    usage : dict
        Per recorded time (as a string), the states measured per pool size (``"K=<K>"`` or ``"dense"``).

    Raises
    ------
    ValueError
        If the shapes do not match, states or times are not finite, times do not strictly decrease, or the
        times or ``d`` are invalid.
    """
    from ..dynamics.motion import PathMeasurements

    X = as_data(train, "train")
    st, tm, sched = _check(X, states, times, schedule)
    d = check_ridge_dim(d, X.shape[1], "d")
    k, m, D = st.shape
    out = {name: np.full((k, m), np.nan) for name in ("distance", "beta", "eigengap", "lambda1", "e_perp",
                                                       "e_par", "ridge_velocity", "ridge_velocity_rel", "kappa")}
    status = np.zeros((k, m), dtype=np.int64)
    proj = np.empty_like(st)
    usage = {}
    index = RowIndex(X)  # one k-d tree for every recorded time
    for i in tqdm(range(k), disable=not progress, desc="measuring trajectories", leave=False):
        t = float(tm[i])
        pools = Pools(X, sched, t, rtol=TRUNC_RTOL, k0=POOL_K0, index=index)
        for c0 in range(0, m, CHUNK):
            todo, kk = np.arange(c0, min(m, c0 + CHUNK)), None
            while todo.size:
                x = st[i, todo]
                dens, pool, reach, K = pools.build(x, kk)
                pr = ridge.project(dens, x, t, d, tol=tol)
                fin = np.all(np.isfinite(pr.points), axis=1)
                ok = pools.covered(pool, np.where(fin[:, None], pr.points, x), x, reach)
                proj[i, todo], status[i, todo] = pr.points, pr.status
                out["distance"][i, todo] = np.linalg.norm(x - pr.points, axis=1)
                out["beta"][i, todo], out["eigengap"][i, todo] = pr.beta, pr.eigengap
                fx = ridge.frame(dens, x, t, d)
                out["lambda1"][i, todo] = fx.eigenvalues[:, 0]
                if model is not None:
                    err = np.asarray(model.score(x, t), dtype=np.float64) - fx.score
                    en = fx.project_normal(err)
                    out["e_perp"][i, todo] = np.linalg.norm(en, axis=1)
                    out["e_par"][i, todo] = np.linalg.norm(err - en, axis=1)
                else:
                    out["e_perp"][i, todo] = out["e_par"][i, todo] = 0.0
                pools.count(K, int(ok.sum()))
                todo, kk = todo[~ok], 4 * K  # projections that left the pool's reach: again, larger pool
        usage[f"{t:.6g}"] = dict(pools.usage)
    regular = (status == 0) & (out["beta"] > 0) & (out["eigengap"] > 0)
    meas = PathMeasurements(times=tm, x=st, proj=proj, status=status, regular=regular, d=d, **out)
    return meas, usage


def trajectory_phases(train, states, times, d: int, schedule="ou", level: float = DEFAULT_LEVEL, model=None,
                      progress: bool = False) -> dict:
    """Reach -> align -> slide along recorded trajectories (:func:`measure_pooled` and
    :func:`rftheory.dynamics.motion.phases`).

    The tube radius is the calibrated one at the last recorded time, ``sqrt(h_t) chi_{D-d}^{-1}(level)``. The
    density at each recorded time is pooled as in ``analyze_samples`` (module doc): bounded memory, and O(K)
    work per state where the pools hold.

    Parameters
    ----------
    train : array_like, shape (n, D)
        Training set X.
    states : array_like, shape (k, m, D)
        Recorded states of m trajectories at k >= 2 times; finite.
    times : array_like, shape (k,)
        The recording times, finite and strictly decreasing.
    d : int
        Ridge dimension (0 <= d < D).
    schedule : str, default "ou"
        Noise schedule name.
    level : float, default DEFAULT_LEVEL
        Nominal level of the tube.
    model : score field or None, default None
        With it, the normal and tangent parts of its score error are measured too.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    dict
        JSON-ready: ``k_times``, ``m``, ``r_tube`` (length), ``reached`` and ``aligned`` fractions,
        count / mean / std / quantiles of ``reach_time``, ``align_time``, ``slide`` (length) and
        ``final_distance`` (length), a ``definition``, ``density`` (states per pool size at each time); with
        ``model`` also ``times`` and the per-time medians ``e_perp_median``, ``e_par_median`` (1/length).

    Raises
    ------
    ValueError
        If the shapes do not match, states or times are not finite, times do not strictly decrease, or the
        times or ``d`` are invalid.
    """
    from ..dynamics.motion import phases
    from ..geometry.tube import tube_radius

    meas, usage = measure_pooled(train, states, times, d, schedule, model=model, progress=progress)
    tm = meas.times
    sched = get_schedule(schedule)
    D = meas.x.shape[2]
    r_tube = float(np.sqrt(sched.h(tm[-1])) * tube_radius(D, meas.d, level))
    ph = phases(meas, r_tube)
    out = {"k_times": int(tm.size), "m": int(meas.x.shape[1]), "r_tube": r_tube, "reached": ph.reached,
           "aligned": ph.aligned, "reach_time": _stats(ph.reach_time), "align_time": _stats(ph.align_time),
           "slide": _stats(ph.slide), "final_distance": _stats(meas.distance[-1]),
           "definition": "reach: first recorded time within r_tube of the ridge; align: first time after which "
                         "the normal distance stays within a factor 2 of its final value; slide: |pi(t_end) - "
                         "pi(t_align)| (dynamics.motion.phases)",
           "density": {"rule": "pooled per recorded time as in analyze (analyze_pools); dense where no pool "
                               "with 4 K < n covers the states", "states_by_pool": usage}}
    if model is not None:
        out["times"] = tm.tolist()
        out["e_perp_median"] = np.nanmedian(meas.e_perp, axis=1).tolist()
        out["e_par_median"] = np.nanmedian(meas.e_par, axis=1).tolist()
    return out
