"""Per-chunk truncation of p_t for :func:`rftheory.apps.analyze.analyze_samples`: the training points that
carry all but ``rtol`` of the posterior weight wherever a chunk of samples is measured.

For a chunk of samples s_i, the pool is the union of each sample's K nearest training rows (exact, by a k-d
tree or blocked brute force: :func:`rftheory.dynamics.motion.nearest_rows`, queries s_i / a_t). Every row
outside the pool is at distance >= r_i (the K-th neighbour's distance, times a_t) from s_i, so at any point y
it is at least ``r_i - |y - s_i|`` from y. With ``d_0(y)`` the distance from y to the nearest pooled a_t x_j and
``L = log(n / rtol)``, a point y is **covered** when

    r_i - |y - s_i| > 0   and   (r_i - |y - s_i|)^2 >= d_0(y)^2 + 2 h_t L;

then each row outside the pool has weight below ``exp(-L) = rtol / n`` relative to the nearest pooled one and
all of them together below ``rtol``: the posterior over the pool is the posterior of p_t up to the bounds that
:class:`rftheory.density.neighbours.TruncatedDensity` states (score within ``a_t rtol R / h_t``, R the data's
diameter). The pool's density is a :class:`TruncatedDensity` of the pooled rows whose neighbour search is a
blocked matrix product over the pool instead of a k-d tree (k-d trees are slower than brute force at D ~ 32)
and whose cut uses the full n: each query keeps the pooled rows within ``d_0^2 + 2 h_t L`` of it, so every row
it drops, in the pool or not, has relative weight below rtol / n, all of them below rtol. The score, Hessian
and third cumulant are those of p_t up to that bound; only ``log_density`` is off by the constant
log(n / n_pool) (not used here).

Coverage is checked at the samples (before measuring) and at their ridge projections (after): samples that
are not covered are measured again with 4 K neighbours, and with the dense density once K would reach n / 4.
"""
from __future__ import annotations

import numpy as np

from ..density.empirical import EmpiricalDensity
from ..density.neighbours import TruncatedDensity
from scipy.spatial import cKDTree

from ..dynamics.motion import KDTREE_MAX_D, nearest_rows
from ..geometry.dimension import DEFAULT_THRESHOLD, DimensionChoice, spectrum_counts

__all__ = ["Pools", "PoolDensity", "RowIndex", "combine_dimension"]


class RowIndex:
    """Exact k nearest rows of a training set, as :func:`rftheory.dynamics.motion.nearest_rows` (same results),
    with its k-d tree (D <= KDTREE_MAX_D) built once instead of at every query: one index serves every chunk
    and every pool size, and (``analyze --trajectories``) every recorded time.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, D)
        Training set.
    """

    def __init__(self, X):
        self.X = X
        self._tree = cKDTree(X) if X.shape[1] <= KDTREE_MAX_D else None

    def query(self, Q, k: int):
        """Distances and indices ``(m, k)`` of the k nearest rows of X to each row of Q, ascending.

        Parameters
        ----------
        Q : numpy.ndarray, shape (m, D)
            Queries.
        k : int
            Number of neighbours, 1 <= k <= n.

        Returns
        -------
        dist, idx : numpy.ndarray, shape (m, k)
        """
        if self._tree is None:
            return nearest_rows(Q, self.X, k)
        dist, idx = self._tree.query(Q, k=int(k))
        return np.asarray(dist).reshape(-1, int(k)), np.asarray(idx).reshape(-1, int(k))


class PoolDensity(TruncatedDensity):
    """TruncatedDensity over ``rows`` (a pool of a training set of ``n_full`` points), cut at
    ``L = log(n_full / rtol)``, neighbours found by one matrix product per block of queries.

    Parameters
    ----------
    rows : array_like, shape (p, D)
        The pooled training points.
    schedule : Schedule
        Noise schedule of p_t.
    rtol : float
        Relative weight all dropped rows together may carry.
    n_full : int
        Size n of the whole training set (the cut uses it, not p).
    """

    def __init__(self, rows, schedule, rtol: float, n_full: int):
        self.data = np.ascontiguousarray(rows, dtype=np.float64)
        self.n, self.D = self.data.shape
        self.schedule = schedule
        self.rtol = float(rtol)
        self.L = float(np.log(n_full / rtol))
        self._tree = None
        self.R = float(np.linalg.norm(np.ptp(self.data, axis=0)))
        self._sq = np.einsum("nd,nd->n", self.data, self.data)

    def _neighbours(self, x, a, h):
        q = x / a
        qq = np.einsum("md,md->m", q, q)
        d2 = qq[:, None] + self._sq[None, :] - 2.0 * (q @ self.data.T)
        # |q|^2 + |y|^2 - 2 q.y has absolute rounding error below ~1e-15 (|q|^2 + |y|^2): a slack of 1e-12 of
        # that keeps every point the exact cut keeps (and at most a few more, which only adds weight)
        slack = 1e-12 * (qq[:, None] + self._sq[None, :]) + 1e-300
        d2 = np.maximum(d2, 0.0)
        cut = d2.min(axis=1, keepdims=True) + 2.0 * h * self.L / (a * a)
        return [np.flatnonzero(row <= c + sl) for row, c, sl in zip(d2, cut, slack)]


class Pools:
    """Builds the pooled density for a set of samples; counts how many samples needed which K / the dense
    density (``usage``).

    Parameters
    ----------
    X : numpy.ndarray, shape (n, D)
        Training set.
    schedule : Schedule
        Noise schedule of p_t.
    t : float
        Time.
    rtol : float, default 1e-12
        Relative weight the rows outside a pool may carry together (``L = log(n / rtol)``).
    k0 : int, default 64
        First number of nearest rows per sample in a pool.
    index : RowIndex or None, default None
        Nearest-row index of X to share between Pools of several times (None: built here).

    Attributes
    ----------
    usage : dict
        Samples measured per pool size: keys ``"K=<K>"`` or ``"dense"``, values counts.
    """

    def __init__(self, X, schedule, t, rtol: float = 1e-12, k0: int = 64, index=None):
        self.X = X
        self.index = RowIndex(X) if index is None else index
        self.n = X.shape[0]
        self.sched = schedule
        self.t = float(t)
        self.a, self.h = (float(v) for v in schedule.a_h(t))
        self.L = float(np.log(self.n / rtol))
        self.rtol = rtol
        self.k0 = int(k0)
        self._dense = None
        self.usage = {}

    def dense(self):
        """The dense density of the whole training set, built once.

        Returns
        -------
        EmpiricalDensity
        """
        if self._dense is None:
            self._dense = EmpiricalDensity(self.X, self.sched)
        return self._dense

    def build(self, S, k=None):
        """The pooled density for samples S, growing K (x4) until every sample is covered.

        Parameters
        ----------
        S : numpy.ndarray, shape (c, D)
            Samples.
        k : int or None, default None
            First K to try (``k0`` when None).

        Returns
        -------
        density : PoolDensity or EmpiricalDensity
            The pooled density, or the dense one once 4 K >= n.
        pool : numpy.ndarray of int, shape (p,), or None
            Sorted training rows in the pool (None for the dense density).
        reach : numpy.ndarray, shape (c,)
            a_t times each sample's K-th neighbour distance (length; inf for the dense density).
        K : int
            Neighbours per sample used (n for the dense density).
        """
        K = self.k0 if k is None else int(k)
        while 4 * K < self.n:
            dist, idx = self.index.query(S / self.a, K)
            reach = self.a * dist[:, -1]
            pool = np.unique(idx)
            if np.all(self.covered(pool, S, S, reach)):
                return PoolDensity(self.X[pool], self.sched, self.rtol, self.n), pool, reach, K
            K *= 4
        return self.dense(), None, np.full(S.shape[0], np.inf), self.n

    def covered(self, pool, Y, S, reach):
        """Whether every row outside ``pool`` carries relative weight < rtol / n at each y (module docstring).

        Parameters
        ----------
        pool : numpy.ndarray of int, shape (p,), or None
            Training rows in the pool (None: the dense density, everything covered).
        Y : numpy.ndarray, shape (c, D)
            Points to check.
        S : numpy.ndarray, shape (c, D)
            The samples the pool was built for (one per point of Y).
        reach : numpy.ndarray, shape (c,)
            Their reaches from :meth:`build` (length).

        Returns
        -------
        numpy.ndarray of bool, shape (c,)
        """
        if pool is None:
            return np.ones(Y.shape[0], bool)
        margin = reach - np.linalg.norm(Y - S, axis=1)
        d0 = self.a * nearest_rows(Y / self.a, self.X[pool], 1)[0][:, 0]
        return (margin > 0) & (margin * margin >= d0 * d0 + 2.0 * self.h * self.L)

    def count(self, K, m):
        """Add m samples to ``usage`` under pool size K (``"dense"`` when K >= n).

        Parameters
        ----------
        K : int
            Neighbours per sample, as returned by :meth:`build`.
        m : int
            Number of samples.

        Returns
        -------
        None
        """
        key = "dense" if K >= self.n else f"K={K}"
        self.usage[key] = self.usage.get(key, 0) + int(m)

    def describe(self) -> dict:
        """Description of the density evaluation for the report.

        Returns
        -------
        dict
            ``kind`` ("pooled", or "dense" when every sample used the dense density), ``rtol``, ``L``,
            ``samples_by_pool`` (a copy of ``usage``) and the ``rule``.
        """
        return {"kind": "pooled" if set(self.usage) != {"dense"} else "dense", "rtol": self.rtol,
                "L": self.L, "samples_by_pool": dict(self.usage),
                "rule": "each chunk's pool: the union of every sample's K nearest rows, checked to carry all "
                        "but rtol of the weight at the samples and at their projections (analyze_pools)"}


def combine_dimension(choices, D: int, t: float, threshold: float = DEFAULT_THRESHOLD) -> DimensionChoice:
    """One :class:`DimensionChoice` from per-chunk choices, by ridge_dimension's own rule: d* the most
    frequent per-sample count (d(x) = D counts towards D - 1; ties to the smaller d).

    Parameters
    ----------
    choices : sequence of DimensionChoice
        Per-chunk choices (non-empty).
    D : int
        Data dimension.
    t : float
        Time, recorded in the result.
    threshold : float, default DEFAULT_THRESHOLD
        Criterion of the per-sample counts (the chunks' choices were made with it).

    Returns
    -------
    DimensionChoice
        With the chunks' counts and spectra concatenated, their median spectrum, the histogram of counts and
        the share of samples whose (capped) count is d*.
    """
    spec = np.concatenate([c.spectrum for c in choices])
    counts, hist, capped = spectrum_counts(spec, threshold)  # the chunks' own counts: same spectra, same cut
    d = int(np.argmax(capped))
    return DimensionChoice(d=d, share=float(capped[d] / counts.size), counts=counts, spectrum=spec,
                           median_spectrum=np.median(spec, axis=0), histogram=hist, threshold=threshold, t=t)
