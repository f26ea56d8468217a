"""Sublinear evaluation of the smoothed empirical density at small h by truncation (docs/theory.md §1).

At small h only near neighbours carry weight. With ``d_0`` the distance from x to the nearest ``a_t x_i``
and ``L = log(n / rtol)``, every training point with ``|x - a_t x_i|^2 > d_0^2 + 2 h_t L`` has weight below
``exp(-L) / 1 = rtol / n`` relative to the nearest one, so all of them together carry relative weight below
``rtol``. :class:`TruncatedDensity` keeps exactly the points inside that radius (a k-d tree query on the
data, built once) and evaluates the posterior over them. Bounds, with ``W_out <= rtol`` the dropped
weight fraction and ``R`` the largest distance between training points:

    |m_trunc - m| <= rtol R,          |s_trunc - s| <= a rtol R / h,
    |Cov_trunc - Cov| <= 3 rtol R^2 (Frobenius),  |log p_trunc - log p| <= -log(1 - rtol),
    |kappa3_trunc - kappa3| <= 6 rtol R^3,          |dH_trunc - dH| <= 6 (a/h)^3 rtol R^3 (Frobenius).

(The kept and dropped parts mix as ``m = (1-W_out) m_in + W_out m_out``; both means lie in the data's hull.
For the third central moment, with eps = W_out, delta = m_in - m (|delta| <= eps R) and y = x - m_in,
``kappa3 - kappa3_in = -eps kappa3_in + (1 - eps)(3 sym(C_in (x) delta) + delta^3) + eps E_out[(x - m)^3]``,
each term at most R^3, 3 R^2 |delta|, |delta|^3 and R^3 times eps: in all <= 6 eps R^3.)
The cost per query is the tree search plus the number of kept points, not n. Queries whose kept count (estimated
from a subsample) would make the truncated sum no faster than the dense pass go to the dense pass over all n
points instead, which is exact (``choice="auto"``, ``rftheory.density._cut_plan``); above D = 8 the kept set is
found by one matrix product per block of queries rather than the k-d tree.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from numpy.typing import ArrayLike

from .._blas import blas_single
from .._checks import as_data, as_points, per_point_times, single_query
from . import _cut_plan, _sym3
from .empirical import EmpiricalDensity, PosteriorMoments
from .schedules import OU, Schedule, get_schedule

__all__ = ["TruncatedDensity"]


class TruncatedDensity:
    """Score field of p_t evaluated over the neighbours that carry all but ``rtol`` of the weight.

    Same interface as :class:`rftheory.EmpiricalDensity` for ``log_density``, ``score``, ``hessian``,
    ``posterior_mean``, ``posterior_cov``, ``third_cumulant``, ``hessian_derivative`` and ``moments``;
    ``kept(x, t)`` says how many points were used. A single (D,) query drops the query axis, as for
    EmpiricalDensity.

    Parameters
    ----------
    data : array_like, shape (n, D)
        Training points (finite).
    schedule : Schedule or str, default OU()
        Forward process.
    rtol : float, default 1e-12
        Relative weight the dropped points may carry together, in (0, 1); sets the stated bounds
        (:meth:`error_bounds`).
    choice : {"auto", "truncated"}, default "auto"
        "auto": each query goes to the truncated sum or to the dense pass over all n points (exact),
        whichever a cheap estimate of its kept count says is faster (``rftheory.density._cut_plan``), so that
        truncation never loses to the dense evaluation; "truncated": always the truncated sum. The queries sent
        to the dense pass get :class:`EmpiricalDensity`'s results: a batch that is all dense is the dense call
        itself (the same bits), and in a mixed batch they are one dense call of their own (the bits of that
        sub-batch; the products may round a query's last bit differently in another batch).

    Raises
    ------
    ValueError
        If ``data`` is empty, not 2-D or not finite, ``rtol`` is outside (0, 1) or ``choice`` is not one of its
        values.
    """

    def __init__(self, data, schedule: Schedule | str | None = None, rtol: float = 1e-12, choice: str = "auto"):
        self.data = as_data(data, "data")
        self.n, self.D = self.data.shape
        self.schedule = OU() if schedule is None else get_schedule(schedule)
        if not (np.isfinite(rtol) and 0 < rtol < 1):
            raise ValueError(f"rtol must lie in (0, 1); got {rtol!r}")
        self.rtol = float(rtol)
        if choice not in ("auto", "truncated"):
            raise ValueError(f"choice must be 'auto' or 'truncated'; got {choice!r}")
        self.choice = choice
        self._tree = cKDTree(self.data)
        diam = np.ptp(self.data, axis=0)
        self.R = float(np.linalg.norm(diam))  # bounds the distance between any two training points
        self._subs: dict = {}   # the routing's subsamples (rftheory.density._cut_plan.route_dense), built on first use
        self._dense = None      # the dense density, built on first use (_dense_pass)

    def _neighbours(self, x, a, h):
        """Per query: indices of the kept points (list of arrays)."""
        L = np.log(self.n / self.rtol)
        d0, _ = self._tree.query(x / a, k=1)
        radius = np.sqrt(d0 * d0 + 2.0 * h * L / (a * a))
        # relative slack so that rounding never drops a point on the boundary that should be kept
        return self._tree.query_ball_point(x / a, radius * (1 + 1e-12) + 1e-300)

    def _plan(self, x, a, h):
        """Per query: kept indices (None where the dense pass is cheaper) and the mask of dense queries."""
        m = x.shape[0]
        own_search = type(self)._neighbours is not TruncatedDensity._neighbours
        if own_search or getattr(self, "choice", "auto") == "truncated":  # always truncated
            return self._neighbours(x, a, h), np.zeros(m, dtype=bool)
        r2 = 2.0 * h * np.log(self.n / self.rtol) / (a * a)
        if r2 >= self.R * self.R:  # the radius covers the whole data set: every point is kept
            return [None] * m, np.ones(m, dtype=bool)
        q = x / a
        dense = _cut_plan.route_dense(self.data, q, r2, self._subs)
        nbrs: list = [None] * m
        rest = np.flatnonzero(~dense)
        if rest.size:
            if self.D > _cut_plan.TREE_MAX_D:  # k-d trees lose to one product per block at D ~ 32
                if getattr(self, "_sq_half", None) is None:
                    self._sq_half = 0.5 * np.einsum("nd,nd->n", self.data, self.data)
                found = _cut_plan.brute_cut(self.data, self._sq_half, q[rest], r2)
            else:
                found = self._neighbours(x[rest], a, h)
            for j, idx in zip(rest, found):
                nbrs[j] = idx
        return nbrs, dense

    def _dense_pass(self) -> EmpiricalDensity:
        """The dense density over the same data and schedule (built on first use)."""
        if self._dense is None:
            self._dense = EmpiricalDensity(self.data, self.schedule)
        return self._dense

    def moments(self, x, t, cov: bool = False, third: bool = False) -> PosteriorMoments:
        """Posterior moments over the kept neighbours, as :meth:`EmpiricalDensity.moments` (within :meth:`error_bounds`).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (a single point is treated as m = 1; the result keeps its batch axis).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.
        cov : bool, default False
            Also the posterior covariance.
        third : bool, default False
            Also the third central moment (implies cov).

        Returns
        -------
        PosteriorMoments

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        # one BLAS-thread switch for the whole call: the routing's products, the dense pass (which would make
        # the same switch itself; nested entries cost a counter) and the truncated loop's small products
        with blas_single():
            return self._routed_moments(x, tt, cov or third, third)

    def _routed_moments(self, x, tt, cov, third) -> PosteriorMoments:
        """:meth:`moments` on validated input: route each query, then the dense pass and the truncated sums."""
        m = x.shape[0]
        a_all, h_all = self.schedule._a(tt), self.schedule._h(tt)
        # route every query first (per distinct time); the dense ones then go to the dense pass as one call
        dense = np.zeros(m, dtype=bool)
        plans = []
        groups = [np.arange(m)] if m and tt[0] == tt[-1] and np.all(tt == tt[0]) else \
            [np.flatnonzero(tt == tv) for tv in np.unique(tt)]
        for sel in groups:
            a, h = float(a_all[sel[0]]), float(h_all[sel[0]])
            nbrs, dense_sel = self._plan(x if sel.size == m else x[sel], a, h)
            dense[sel] = dense_sel
            plans.append((sel, a, h, nbrs, dense_sel))
        if m and dense.all():  # exactly the dense call: the same arrays, blocks and bits as EmpiricalDensity's
            self._last_kept = np.full(m, self.n, dtype=np.int64)
            return self._dense_pass()._moments(x, tt, cov, third)
        lp = np.empty(m)
        mean = np.empty((m, self.D))
        score = np.empty((m, self.D))
        C = np.empty((m, self.D, self.D)) if cov else None
        K3 = np.empty((m, self.D, self.D, self.D)) if third else None
        nearest = np.empty(m, dtype=np.int64)
        wmax = np.empty(m)
        self._last_kept = np.empty(m, dtype=np.int64)
        ds = np.flatnonzero(dense)
        if ds.size:  # these queries are cheaper over all n points (exact: EmpiricalDensity's call on them)
            dm = self._dense_pass()._moments(x[ds], tt[ds], cov, third)
            lp[ds], mean[ds], score[ds], nearest[ds], wmax[ds] = (dm.log_density, dm.mean, dm.score, dm.nearest,
                                                                  dm.max_weight)
            if cov:
                C[ds] = dm.cov
            if third:
                K3[ds] = dm.third
            self._last_kept[ds] = self.n
        for sel, a, h, nbrs, dense_sel in plans:
            for j, q in enumerate(sel):
                if dense_sel[j]:
                    continue
                idx = np.asarray(nbrs[j], dtype=np.int64)
                self._last_kept[q] = idx.size
                Y = self.data[idx]
                d = x[q] - a * Y
                logit = -np.einsum("kd,kd->k", d, d) / (2 * h)
                k = int(np.argmax(logit))
                w = np.exp(logit - logit[k])
                W = w.sum()
                w /= W
                # centred at the heaviest point: relative precision for tiny covariances
                Yc = Y - Y[k]
                mc = w @ Yc
                mean[q] = Y[k] + mc
                lp[q] = logit[k] + np.log(W) - np.log(self.n) - 0.5 * self.D * np.log(2 * np.pi * h)
                nearest[q], wmax[q] = idx[k], w[k]
                if cov:
                    Z = Yc - mc
                    C[q] = (Z * w[:, None]).T @ Z
                if third:
                    K3[q] = _sym3.third_sum(w, Z)
        tr = np.flatnonzero(~dense)
        score[tr] = (a_all[tr, None] * mean[tr] - x[tr]) / h_all[tr, None]
        return PosteriorMoments(t=tt, a=a_all, h=h_all, log_density=lp, mean=mean, score=score, cov=C,
                                nearest=nearest, max_weight=wmax, third=K3)

    @single_query
    def kept(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Number of training points kept for each query.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray of int, shape (m,), or int for a single (D,) query

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        self.moments(x, t)
        return self._last_kept.copy()

    @single_query
    def log_density(self, x: ArrayLike, t: ArrayLike) -> np.ndarray | float:
        """``log p_t(x)`` over the kept points (within ``-log(1 - rtol)``).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m,), or float for a single (D,) query

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t).log_density

    @single_query
    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The score over the kept points (within ``a rtol R / h`` of the exact one).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            1/length.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t).score

    @single_query
    def hessian(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The Hessian of log p_t (P1) over the kept points.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            1/length^2.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t, cov=True).hessian

    @single_query
    def score_and_hessian(self, x: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Score and Hessian from one pass over the kept points.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        score : numpy.ndarray, shape (m, D) or (D,)
        hessian : numpy.ndarray, shape (m, D, D) or (D, D)

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        mom = self.moments(x, t, cov=True)
        return mom.score, mom.hessian

    @single_query
    def posterior_mean(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Posterior mean over the kept points (within ``rtol R``).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            length.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t).mean

    @single_query
    def posterior_cov(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Posterior covariance over the kept points (within ``3 rtol R^2``).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            length^2.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t, cov=True).cov

    @single_query
    def third_cumulant(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Posterior third central moment over the kept points.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            length^3.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        return self.moments(x, t, third=True).third

    @single_query
    def hessian_derivative(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """``dH_ij/dx_k = (a/h)^3 kappa3_ijk`` over the kept points (lets ridge.project take
        Newton steps with the frame's turning, as for EmpiricalDensity).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            1/length^3.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        mom = self.moments(x, t, third=True)
        return ((mom.a / mom.h) ** 3)[:, None, None, None] * mom.third

    def error_bounds(self, t) -> dict:
        """The stated truncation bounds at time t (module docstring), all Frobenius.

        Parameters
        ----------
        t : float
            Time.

        Returns
        -------
        dict
            ``mean`` (length), ``score`` (1/length), ``cov`` (length^2), ``log_density``, ``third`` (length^3) and
            ``hessian_derivative`` (1/length^3).
        """
        a, h = float(self.schedule.a(t)), float(self.schedule.h(t))
        r = self.rtol
        return {"mean": r * self.R, "score": a * r * self.R / h, "cov": 3 * r * self.R ** 2,
                "log_density": -np.log1p(-r), "third": 6 * r * self.R ** 3,
                "hessian_derivative": 6 * (a / h) ** 3 * r * self.R ** 3}
