"""Reach -> align -> slide, measured along recorded trajectories (docs/theory.md §3).

:func:`measure` projects every recorded sample onto the d-dimensional ridge of p_t at its time and records
the normal offset, the regularity diagnostics, the normal/tangent parts of the score error, the ridge
velocity and the frame-turning rate. :func:`phases` turns those series into the three phases;
:func:`memorization` gives the d_1/d_2 < 1/3 fraction with a bootstrap interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from ..geometry import ridge
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_generator
from .sampling import Trajectory
from .._results import frame as _table, short_repr

__all__ = ["PathMeasurements", "measure", "PhaseSummary", "phases", "Memorization", "memorization", "nearest_distinct",
           "nearest_rows", "DistinctNeighbours"]


@dataclass
class PathMeasurements:
    """Reach/align/slide series over k recorded times (decreasing) for m samples (:func:`measure`).

    Attributes
    ----------
    times : numpy.ndarray, shape (k,)
        Recorded times.
    x, proj : numpy.ndarray, shape (k, m, D)
        Samples and their ridge projections (length).
    status : numpy.ndarray of int, shape (k, m)
        Projection status codes (``rftheory.geometry.ridge.STATUS``).
    distance : numpy.ndarray, shape (k, m)
        ``|x - pi(x)|`` (length).
    beta, eigengap : numpy.ndarray, shape (k, m)
        Normal curvature and eigengap at pi(x) (1/length^2).
    lambda1 : numpy.ndarray, shape (k, m)
        Largest Hessian eigenvalue at x (1/length^2).
    regular : numpy.ndarray of bool, shape (k, m)
        Converged and beta-regular at pi(x).
    e_perp, e_par : numpy.ndarray, shape (k, m)
        ``|P_perp e|``, ``|P_par e|`` of the learned field's error at x (1/length).
    ridge_velocity : numpy.ndarray, shape (k, m)
        ``|P_perp d_t pi|``, as T2 states it (docs/theory.md §3; length/time).
    ridge_velocity_rel : numpy.ndarray, shape (k, m)
        ``|P_perp(d_t pi + b_t pi)|``: the ridge's normal velocity relative to the drift's linear part b_t x
        (b_t the schedule's beta), which is what d nu/ds picks up at nu = 0 (0 for a ridge that scales with
        a_t; length/time).
    kappa : numpy.ndarray, shape (k, m)
        Frame-turning rate ``|(d_nu P_perp) s*|`` (1/time).
    d : int
        Ridge dimension.
    """

    times: np.ndarray
    x: np.ndarray
    proj: np.ndarray
    status: np.ndarray
    distance: np.ndarray
    beta: np.ndarray
    eigengap: np.ndarray
    lambda1: np.ndarray
    regular: np.ndarray
    e_perp: np.ndarray
    e_par: np.ndarray
    ridge_velocity: np.ndarray
    ridge_velocity_rel: np.ndarray
    kappa: np.ndarray
    d: int

    __repr__ = short_repr

    def to_frame(self):
        """Long format, one row per (recorded time, sample): time, sample, x_k, proj_k, status and every
        measured (k, m) quantity.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        k, m, D = self.x.shape
        cols = {"time": np.repeat(self.times, m), "sample": np.tile(np.arange(m), k),
                "x": self.x.reshape(k * m, D), "proj": self.proj.reshape(k * m, D)}
        for name in ("status", "distance", "beta", "eigengap", "lambda1", "regular", "e_perp", "e_par",
                     "ridge_velocity", "ridge_velocity_rel", "kappa"):
            cols[name] = np.asarray(getattr(self, name)).reshape(k * m)
        return _table(cols)


def _frame_turning(density, p, nhat, t, d, eps):
    """kappa = |(P_perp(p + eps n) - P_perp(p - eps n)) s*(p)| / (2 eps): the normal frame's turning rate
    along the unit normal direction n, applied to the score (the term T2's first-order form neglects)."""
    fp = ridge.frame(density, p + eps * nhat, t, d)
    fm = ridge.frame(density, p - eps * nhat, t, d)
    s = density.score(p, t)
    diff = fp.project_normal(s) - fm.project_normal(s)
    return np.linalg.norm(diff, axis=1) / (2 * eps)


def measure(density, traj: Trajectory, d: int, field=None, beta_min: float = 0.0, velocity: bool = True,
            kappa: bool = True, tol: float = 1e-9, progress: bool = False) -> PathMeasurements:
    """Measure a trajectory against the ridge of ``density``: reach, align, slide (docs/theory.md §3).

    Parameters
    ----------
    density : EmpiricalDensity
        The density whose ridge is the reference (any field with a Hessian and a schedule).
    traj : Trajectory
        Recorded samples (:func:`rftheory.dynamics.sampling.sample` with ``record``).
    d : int
        Ridge dimension, 0 <= d < D.
    field : score field, optional
        The learned field that drove the samples; its error ``field.score - density.score`` is split into
        normal and tangent parts. None means the exact score (errors 0).
    beta_min : float, default 0.0
        Regularity threshold of the projections (1/length^2).
    velocity : bool, default True
        Measure the ridge's normal velocity (two more projections per recorded time).
    kappa : bool, default True
        Measure the frame-turning rate kappa of T2.
    tol : float, default 1e-9
        Projection tolerance (1/length).
    progress : bool, default False
        Show a tqdm bar.

    Returns
    -------
    PathMeasurements
        (k, m) series over recorded times and samples: ``distance`` (length), ``beta``, ``eigengap``,
        ``lambda1`` (1/length^2), ``regular``, ``e_perp``, ``e_par`` (1/length), ``ridge_velocity``,
        ``ridge_velocity_rel`` (length/time), ``kappa`` (1/time), ``status``; ``x``, ``proj`` (k, m, D);
        ``to_frame()`` gives a long table.

    Raises
    ------
    TypeError, ValueError
        From the projection on a bad density or d.

    Notes
    -----
    Velocity and kappa are central differences (relative time step 1e-4; normal step 1e-4 sqrt(h_t)).
    """
    times = np.asarray(traj.times, dtype=np.float64)
    k, m, D = traj.states.shape
    sh = (k, m)
    out = {name: np.full(sh, np.nan) for name in ("distance", "beta", "eigengap", "lambda1", "e_perp", "e_par",
                                                  "ridge_velocity", "ridge_velocity_rel", "kappa")}
    status = np.zeros(sh, dtype=np.int64)
    proj = np.empty_like(traj.states)
    for i in tqdm(range(k), disable=not progress, desc="measuring ridge", leave=False):
        t = float(times[i])
        x = traj.states[i]
        pr = ridge.project(density, x, t, d, tol=tol, beta_min=beta_min)
        p = pr.points
        proj[i], status[i] = p, pr.status
        out["distance"][i] = np.linalg.norm(x - p, axis=1)
        out["beta"][i], out["eigengap"][i] = pr.beta, pr.eigengap
        fx = ridge.frame(density, x, t, d)
        out["lambda1"][i] = fx.eigenvalues[:, 0]
        if field is not None:
            err = field.score(x, t) - fx.score
            en = fx.project_normal(err)
            out["e_perp"][i] = np.linalg.norm(en, axis=1)
            out["e_par"][i] = np.linalg.norm(err - en, axis=1)
        else:
            out["e_perp"][i] = 0.0
            out["e_par"][i] = 0.0
        fp = ridge.frame(density, p, t, d)
        if velocity:
            # the ridge's normal velocity relative to the drift's linear part b_t x (b = schedule beta):
            # d nu/ds picks up P_perp(b_t pi + d_t pi) at nu = 0 (for a ridge that scales with a_t, 0)
            dt = 1e-4 * t
            pa = ridge.project(density, p, t + dt, d, tol=tol).points
            pb = ridge.project(density, p, t - dt, d, tol=tol).points
            v = (pa - pb) / (2 * dt)
            out["ridge_velocity"][i] = np.linalg.norm(fp.project_normal(v), axis=1)
            vr = v + float(density.schedule.beta(t)) * p
            out["ridge_velocity_rel"][i] = np.linalg.norm(fp.project_normal(vr), axis=1)
        if kappa:
            off = x - p
            nn = np.linalg.norm(off, axis=1, keepdims=True)
            nhat = np.where(nn > 0, off / np.where(nn > 0, nn, 1.0), fp.normal[:, :, 0])
            h = float(density.schedule.h(t))
            out["kappa"][i] = _frame_turning(density, p, nhat, t, d, 1e-4 * np.sqrt(h))
    regular = (status == 0) & (out["beta"] > beta_min) & (out["eigengap"] > beta_min)
    pm = PathMeasurements(times=times, x=traj.states, proj=proj, status=status, regular=regular, d=d, **out)
    pm.density = density
    return pm


@dataclass
class PhaseSummary:
    """Per-sample phase times and slide length (:func:`phases`).

    Attributes
    ----------
    reach_time : numpy.ndarray, shape (m,)
        First recorded time with distance <= r_tube (NaN if never).
    align_time : numpy.ndarray, shape (m,)
        First time after which the distance stays within a factor ``settle`` of its final value (or below
        ``floor``); NaN if never.
    slide : numpy.ndarray, shape (m,)
        Tangential displacement ``|pi(t_end) - pi(t_align)|`` after alignment (length).
    reached, aligned : float
        Fractions of samples that reached / aligned.
    r_tube : float
        The tube radius used (length).
    """

    reach_time: np.ndarray
    align_time: np.ndarray
    slide: np.ndarray
    reached: float
    aligned: float
    r_tube: float

    __repr__ = short_repr

    def to_frame(self):
        """One row per sample: reach_time, align_time, slide.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"reach_time": self.reach_time, "align_time": self.align_time, "slide": self.slide},
                      "sample")


def phases(meas: PathMeasurements, r_tube: float, settle: float = 2.0, floor: float = 0.0) -> PhaseSummary:
    """Reach, align and slide per sample from :func:`measure`'s series (docs/theory.md §3).

    Parameters
    ----------
    meas : PathMeasurements
        Output of :func:`measure`.
    r_tube : float
        Tube radius (length, > 0): a sample has reached the ridge once its distance is at most r_tube.
    settle : float, default 2.0
        Aligned once the distance stays within this factor of its final value.
    floor : float, default 0.0
        ... or below this distance (length).

    Returns
    -------
    PhaseSummary
        ``reach_time``, ``align_time`` (m,) (NaN where a phase is not reached), ``slide`` (m,) tangential
        displacement after alignment (length), ``reached`` and ``aligned`` fractions; ``to_frame()``.

    Raises
    ------
    ValueError
        If r_tube is not positive.
    """
    if not r_tube > 0:
        raise ValueError("r_tube must be positive")
    if not settle > 1:
        raise ValueError("settle must exceed 1")
    dist = meas.distance
    k, m = dist.shape
    inside = dist <= r_tube
    reach_i = np.where(inside.any(axis=0), np.argmax(inside, axis=0), -1)
    final = dist[-1]
    band = (dist <= settle * final + floor) & (dist >= final / settle - floor)
    # first index from which the band holds to the end
    tail_ok = np.flip(np.cumprod(np.flip(band, axis=0), axis=0), axis=0).astype(bool)
    align_i = np.where(tail_ok.any(axis=0), np.argmax(tail_ok, axis=0), -1)
    align_i = np.where((reach_i >= 0) & (align_i >= 0), np.maximum(align_i, reach_i), -1)
    t = meas.times
    reach_t = np.where(reach_i >= 0, t[np.maximum(reach_i, 0)], np.nan)
    align_t = np.where(align_i >= 0, t[np.maximum(align_i, 0)], np.nan)
    slide = np.full(m, np.nan)
    ok = align_i >= 0
    slide[ok] = np.linalg.norm(meas.proj[-1, ok] - meas.proj[align_i[ok], ok], axis=1)
    return PhaseSummary(reach_time=reach_t, align_time=align_t, slide=slide, reached=float(np.mean(reach_i >= 0)),
                        aligned=float(np.mean(ok)), r_tube=float(r_tube))


@dataclass
class Memorization:
    """The memorization metric (:func:`memorization`).

    Attributes
    ----------
    fraction : float
        Fraction of samples with ``d_1/d_2 < ratio``.
    ci_low, ci_high : float
        Percentile bootstrap interval at ``level``.
    level : float
        Its level.
    ratios : numpy.ndarray, shape (m,)
        The d_1/d_2 values (d_1, d_2 the distances to the nearest and second-nearest *distinct* training
        points).
    """

    fraction: float
    ci_low: float
    ci_high: float
    level: float
    ratios: np.ndarray

    __repr__ = short_repr

# nearest neighbours: a k-d tree up to this dimension, blocked exact brute force (BLAS) above it. Measured
# (bench/bench_analyze.py, n = 1e5, 2000 queries, k = 2): cKDTree 0.19 s / 0.72 s at D = 3 / 8 against
# 2.5 s / 2.1 s brute force; at D = 32 cKDTree 82 s (Gaussian data) and 19 s (2-dim latent + noise) against
# 2.9 s / 3.2 s brute force.
KDTREE_MAX_D = 10
_NN_BLOCK_BYTES = 32 * 2**20  # largest (query block, data block) distance matrix of the brute-force path


def _brute_knn(Q, X, k):
    """Exact k nearest rows of X for each row of Q by blocks: memory ``_NN_BLOCK_BYTES`` plus (m, k).
    Distances from |q|^2 + |x|^2 - 2 q.x (one matrix product per block) select k + 2 candidates; their
    distances are then recomputed as |q - x| (no cancellation), and re-sorted."""
    m, D = Q.shape
    n = X.shape[0]
    kc = min(k + 2, n)
    xx = np.einsum("nd,nd->n", X, X)
    qb = max(1, min(m, 4096))
    nb = max(kc, _NN_BLOCK_BYTES // (8 * qb))
    dist = np.empty((m, k))
    idx = np.empty((m, k), dtype=np.int64)
    for q0 in range(0, m, qb):
        Qb = Q[q0:q0 + qb]
        best_d = np.full((Qb.shape[0], 0), np.inf)
        best_i = np.zeros((Qb.shape[0], 0), dtype=np.int64)
        for n0 in range(0, n, nb):
            Xb = X[n0:n0 + nb]
            d2 = xx[n0:n0 + nb][None, :] - 2.0 * (Qb @ Xb.T)  # + |q|^2, the same for every column
            kk = min(kc, Xb.shape[0])
            part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            cand_d = np.take_along_axis(d2, part, axis=1)
            best_d = np.concatenate([best_d, cand_d], axis=1)
            best_i = np.concatenate([best_i, part + n0], axis=1)
            if best_d.shape[1] > kc:
                keep = np.argpartition(best_d, kc - 1, axis=1)[:, :kc]
                best_d = np.take_along_axis(best_d, keep, axis=1)
                best_i = np.take_along_axis(best_i, keep, axis=1)
        exact = np.linalg.norm(Qb[:, None, :] - X[best_i], axis=-1)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        dist[q0:q0 + qb] = np.take_along_axis(exact, order, axis=1)
        idx[q0:q0 + qb] = np.take_along_axis(best_i, order, axis=1)
    return dist, idx


def nearest_rows(queries, data, k: int):
    """Distances ``(m, k)`` (ascending) and indices ``(m, k)`` of the k nearest rows of ``data`` (duplicates
    not merged): a k-d tree for D <= KDTREE_MAX_D, blocked brute force above (memory O(block + m k)).

    Parameters
    ----------
    queries : array_like, shape (m, D)
        Query points.
    data : array_like, shape (n, D)
        The rows searched (duplicated rows count separately).
    k : int
        Number of neighbours, 1 <= k <= n.

    Returns
    -------
    dist : numpy.ndarray, shape (m, k)
        Euclidean distances to the k nearest rows, ascending along each row (the data's length unit).
    idx : numpy.ndarray of int, shape (m, k)
        Their row indices into ``data``.

    Raises
    ------
    ValueError
        If queries or data is not 2-D, their dimensions D differ, or k is outside [1, n].

    Notes
    -----
    Exact either way: scipy's cKDTree for D <= KDTREE_MAX_D (10); above it, blocked brute force whose largest
    distance block is about 32 MiB, with the candidates' distances recomputed as ``|q - x|``.
    """
    X = np.asarray(data, dtype=np.float64)
    Q = np.asarray(queries, dtype=np.float64)
    if X.ndim != 2 or Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise ValueError(f"queries {Q.shape} and data {X.shape} must be (m, D) and (n, D) with the same D")
    k = int(k)
    if not 1 <= k <= X.shape[0]:
        raise ValueError(f"k must lie in [1, {X.shape[0]}] (the number of data rows); got {k}")
    if X.shape[1] <= KDTREE_MAX_D:
        dist, idx = cKDTree(X).query(Q, k=k)
        return np.asarray(dist).reshape(-1, k), np.asarray(idx).reshape(-1, k)
    return _brute_knn(Q, X, k)


class DistinctNeighbours:
    """The distinct rows of a data set (duplicates merged once, at construction) for repeated
    :meth:`query` calls; ``first`` maps a distinct row to its first occurrence in the data.

    Parameters
    ----------
    data : array_like, shape (n, D)
        The data set (converted to float64).

    Attributes
    ----------
    rows : numpy.ndarray, shape (n_distinct, D)
        The distinct rows, in lexicographic order (``numpy.unique(data, axis=0)``).
    first : numpy.ndarray of int, shape (n_distinct,)
        Index in ``data`` of each distinct row's first occurrence.
    n_distinct : int
        Number of distinct rows.

    Raises
    ------
    ValueError
        If data is not 2-D.

    Notes
    -----
    The k-d tree (D <= KDTREE_MAX_D) is built on the first :meth:`query` and reused by later ones.
    """

    def __init__(self, data):
        X = np.asarray(data, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"data must have shape (n, D); got {X.shape}")
        self.rows, self.first = np.unique(X, axis=0, return_index=True)
        self._tree = None

    @property
    def n_distinct(self) -> int:
        return self.rows.shape[0]

    def query(self, queries, k: int = 2, self_query: bool = False):
        """The k nearest distinct rows of each query (as :func:`nearest_distinct`, without re-merging).

        Parameters
        ----------
        queries : array_like, shape (m, D)
            Query points.
        k : int, default 2
            Number of distinct neighbours per query, at most ``n_distinct`` (``n_distinct - 1`` with
            ``self_query``).
        self_query : bool, default False
            The queries are rows of the data: each one's own row (the nearest, at distance 0) is dropped, so
            the k nearest distinct *other* rows are returned.

        Returns
        -------
        dist : numpy.ndarray, shape (m, k)
            Euclidean distances, ascending along each row (the data's length unit).
        idx : numpy.ndarray of int, shape (m, k)
            Indices into the original data (the first occurrence of each distinct row).

        Raises
        ------
        ValueError
            If there are fewer than k distinct rows (k + 1 with ``self_query``), or queries is not of shape
            (m, D).
        """
        Q = np.asarray(queries, dtype=np.float64)
        kk = int(k) + 1 if self_query else int(k)
        if self.n_distinct < kk:
            raise ValueError(f"data have {self.n_distinct} distinct point(s); {kk} are needed")
        if Q.ndim != 2 or Q.shape[1] != self.rows.shape[1]:
            raise ValueError(f"queries must have shape (m, {self.rows.shape[1]}); got {Q.shape}")
        if self.rows.shape[1] <= KDTREE_MAX_D:
            if self._tree is None:
                self._tree = cKDTree(self.rows)
            dist, idx = self._tree.query(Q, k=kk)
            dist, idx = np.asarray(dist).reshape(-1, kk), np.asarray(idx).reshape(-1, kk)
        else:
            dist, idx = _brute_knn(Q, self.rows, kk)
        if self_query:  # the query's own row is at distance 0, first
            dist, idx = dist[:, 1:], idx[:, 1:]
        return dist, self.first[idx]


def nearest_distinct(queries, data, k: int = 2, self_query: bool = False):
    """Distances ``(m, k)`` (ascending) and indices ``(m, k)`` into ``data`` of the k nearest *distinct* rows
    of ``data`` (duplicated rows count once; the index is their first occurrence).

    Parameters
    ----------
    queries : array_like, shape (m, D)
        Query points.
    data : array_like, shape (n, D)
        The data searched; duplicated rows are merged.
    k : int, default 2
        Number of distinct neighbours per query, at most the number of distinct rows (one less with
        ``self_query``).
    self_query : bool, default False
        The queries are rows of ``data`` and each one's own row is skipped (leave-one-out: the nearest
        distinct *other* point).

    Returns
    -------
    dist : numpy.ndarray, shape (m, k)
        Euclidean distances, ascending along each row (the data's length unit).
    idx : numpy.ndarray of int, shape (m, k)
        Indices into ``data`` (the first occurrence of each distinct row).

    Raises
    ------
    ValueError
        If queries or data is not 2-D, their dimensions D differ, or data has fewer than k distinct rows
        (k + 1 with ``self_query``).

    Notes
    -----
    Exact: a k-d tree (scipy cKDTree) for D <= KDTREE_MAX_D, blocked brute force above; beyond the inputs,
    merging the duplicates sorts a copy of the data, and the search then holds the distinct rows, one
    brute-force block (about 32 MiB) and the (m, k) results. For repeated queries against the same data use
    :class:`DistinctNeighbours` (the duplicates are merged once).
    """
    X = np.asarray(data, dtype=np.float64)
    Q = np.asarray(queries, dtype=np.float64)
    if X.ndim != 2 or Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise ValueError(f"queries {Q.shape} and data {X.shape} must be (m, D) and (n, D) with the same D")
    return DistinctNeighbours(X).query(Q, k, self_query)


def memorization(samples: ArrayLike, data: ArrayLike, rng: RngLike, ratio: float = 1.0 / 3.0, n_boot: int = 2000,
                 level: float = 0.95, scale: float = 1.0, distances=None) -> Memorization:
    """The memorization metric: a sample is memorized when ``d_1/d_2 < ratio`` (docs/theory.md §3, T4).

    d_1, d_2 are the distances to the nearest and second-nearest *distinct* training points (duplicates in the
    training set count once, so an exact copy of a duplicated point has d_1 = 0 and is memorized).

    Parameters
    ----------
    samples : array_like, shape (m, D)
        Generated samples.
    data : array_like, shape (n, D)
        Training set (at least two distinct points).
    rng : None, int, SeedSequence or numpy.random.Generator
        Bootstrap resampling; None draws from a fresh generator.
    ratio : float, default 1/3
        Threshold on d_1/d_2.
    n_boot : int, default 2000
        Bootstrap resamples.
    level : float, default 0.95
        Level of the percentile interval, in (0, 1).
    scale : float, default 1.0
        Training points are compared at ``scale * x_i`` (e.g. a_t at a time t > 0).
    distances : array_like, shape (m, 2), optional
        The nearest-distinct distances if already computed (:func:`nearest_distinct`).

    Returns
    -------
    Memorization
        ``fraction`` memorized, its bootstrap interval ``(ci_low, ci_high)`` at ``level``, ``ratios`` (m,).

    Raises
    ------
    ValueError
        If data has fewer than two distinct points, the dimensions differ, or level is outside (0, 1).

    Notes
    -----
    The bootstrap resamples the m memorized/not flags with replacement; the resampled count is exactly
    Binomial(m, fraction), which is drawn directly (memory O(n_boot), not O(n_boot m)).
    """
    S = as_data(samples, "samples")
    if not 0 < level < 1:
        raise ValueError("level must lie in (0, 1)")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite; got {scale!r}")
    g = as_generator(rng)
    if distances is None:
        X = as_data(data, "data")
        if S.shape[1] != X.shape[1]:
            raise ValueError(f"samples have D = {S.shape[1]} but data have D = {X.shape[1]}")
        two, _ = nearest_distinct(S / scale, X, k=2)
    else:
        two = np.asarray(distances, dtype=np.float64)
        if two.shape != (S.shape[0], 2) or not np.all(np.isfinite(two)) or np.any(two < 0):
            raise ValueError(f"distances must be finite, non-negative, of shape ({S.shape[0]}, 2)")
    r = two[:, 0] / two[:, 1]  # d_2 > 0: two distinct points cannot both be at distance 0
    mem = r < ratio
    m = mem.size
    frac = float(mem.mean())
    boots = g.binomial(m, frac, size=int(n_boot)) / m
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Memorization(fraction=frac, ci_low=float(lo), ci_high=float(hi), level=level, ratios=r)
