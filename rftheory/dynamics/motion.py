"""Reach -> align -> slide, measured along recorded trajectories (docs/theory.md §3).

:func:`measure` projects every recorded sample onto the d-dimensional ridge of p_t at its time and records
the normal offset, the regularity diagnostics, the normal/tangent parts of the score error, the ridge
velocity and the frame-turning rate. :func:`phases` turns those series into the three phases;
:func:`memorization` gives the d_1/d_2 < 1/3 fraction with a bootstrap interval, from the exact nearest
distinct training points of :mod:`rftheory.dynamics._nearest` (re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..geometry import ridge
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_generator
from .sampling import Trajectory
from ._nearest import KDTREE_MAX_D, DistinctNeighbours, nearest_distinct, nearest_rows  # noqa: F401 (re-exported)
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
