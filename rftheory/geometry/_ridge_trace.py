"""Tracing a 1-D ridge (d = 1) as ordered curve pieces, by predictor-corrector continuation.

Seeds: a grid over the bounding box is projected onto the ridge (:func:`rftheory.geometry.ridge.project`). From an
unvisited projected seed the curve is followed both ways: step ``step`` along the tangent (sign kept
continuous), project back, repeat until the projection fails, the point leaves the beta-regular region or the
box, or the curve closes on its start. Seeds within reach of a traced piece are marked visited. The pieces
are returned in order with their arc length, for plots and for T4 (attractors along the ridge).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_ridge_dim
from .._results import frame as _table, short_repr


@dataclass
class RidgePiece:
    """One connected piece of a traced 1-D ridge.

    points (k, D) ordered along the curve; arclength (k,) from the first point; closed: whether the last
    point returns to the first; beta (k,), eigengap (k,) the regularity diagnostics at each point.
    """

    points: np.ndarray
    arclength: np.ndarray
    closed: bool
    beta: np.ndarray
    eigengap: np.ndarray

    __repr__ = short_repr

    def to_frame(self):
        """One row per point along the piece: arclength, points_k, beta, eigengap.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"arclength": self.arclength, "points": self.points, "beta": self.beta,
                       "eigengap": self.eigengap}, "index")

    @property
    def length(self) -> float:
        extra = np.linalg.norm(self.points[-1] - self.points[0]) if self.closed else 0.0
        return float(self.arclength[-1] + extra)


def _default_bounds(field, t, D):
    data = getattr(field, "data", None)
    sch = getattr(field, "schedule", None)
    if data is None or sch is None:
        raise ValueError("bounds=(lo, hi) must be given for a field without data and schedule")
    a, h = float(sch.a(t)), float(sch.h(t))
    pad = 3.0 * np.sqrt(h)
    return a * data.min(axis=0) - pad, a * data.max(axis=0) + pad


def _seed_grid(lo, hi, grid_size):
    axes = [np.linspace(l, u, grid_size) for l, u in zip(lo, hi)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([g.ravel() for g in mesh])


def trace(field, t: float, d: int = 1, bounds=None, seeds=None, grid_size: int | None = None,
          step: float | None = None, tol: float = 1e-9, beta_min: float = 0.0,
          max_points: int = 5000) -> list[RidgePiece]:
    """Trace the 1-D ridge of ``field`` at time t (D = 2 or 3) into ordered curve pieces.

    Parameters
    ----------
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    t : float
        Time.
    d : int, default 1
        Ridge dimension; only d = 1 is traced.
    bounds : (lo, hi) of arrays of shape (D,), optional
        Box to trace in; defaults to the data's box scaled by a_t, widened by 3 sqrt(h_t) (needs a field
        with ``data`` and ``schedule``; otherwise required).
    seeds : array_like, shape (k, D), optional
        Starting points; defaults to a grid of ``grid_size`` per axis over the box.
    grid_size : int, optional
        Seed grid per axis (40 in 2-D, 12 in 3-D).
    step : float, optional
        Step along the curve (length); defaults to min(box diagonal / 150, sqrt(h_t)/4).
    tol : float, default 1e-9
        Projection tolerance (1/length).
    beta_min : float, default 0.0
        Regularity threshold passed to the projection.
    max_points : int, default 5000
        Points per piece at most.

    Returns
    -------
    list of RidgePiece
        Each with ``points`` (k, D) ordered along the curve, ``arclength`` (k,), ``closed``, ``beta`` and
        ``eigengap`` (k,); ``to_frame()`` gives a table.

    Raises
    ------
    TypeError
        If ``field`` is not a score field with a Hessian.
    ValueError
        If D is not 2 or 3, d != 1, or the bounds are malformed.
    """
    from .._blas import blas_single as _blas_single
    from ._ridge_frame import _require_field, _times
    from ._ridge_newton import _project_batch
    from .ridge import frame, project

    _require_field(field)
    D = int(getattr(field, "D", 0) or (np.asarray(seeds).shape[-1] if seeds is not None else 0))
    if D not in (2, 3):
        raise ValueError(f"trace supports D = 2 or 3; got D = {D}")
    d = check_ridge_dim(d, D)
    if d != 1:
        raise ValueError(f"trace follows 1-D ridges (d = 1); got d = {d}")
    t = float(t)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in (bounds if bounds is not None
                                                      else _default_bounds(field, t, D)))
    if lo.shape != (D,) or hi.shape != (D,) or np.any(hi <= lo):
        raise ValueError("bounds must be (lo, hi) arrays of shape (D,) with hi > lo")
    if seeds is None:
        gs = grid_size or (40 if D == 2 else 12)
        seeds = _seed_grid(lo, hi, gs)
    sch = getattr(field, "schedule", None)
    diag = float(np.linalg.norm(hi - lo))
    if step is None:
        step = diag / 150.0
        if sch is not None:
            step = min(step, 0.25 * float(np.sqrt(sch.h(t))))
    pr = project(field, seeds, t, 1, tol=tol, beta_min=beta_min)   # validates tol and beta_min once
    inside = np.all((pr.points >= lo) & (pr.points <= hi), axis=1)
    ok = pr.converged & inside
    cand = pr.points[ok]
    cand_beta, cand_gap = pr.beta[ok], pr.eigengap[ok]
    t1 = _times(field, t, 1)       # the validated time of one point, reused by every step

    def correct(P):
        """Project the predicted points P (k, D) back onto the ridge, all in one batch: points, converged,
        beta, eigengap and the tangent of the frame that judged each point."""
        k = P.shape[0]
        with _blas_single():
            res, _ = _project_batch(field, P, np.repeat(t1, k), 1, tol, 60, True, beta_min, None,
                                    want_tangent=True)
        return res

    visited = np.zeros(len(cand), dtype=bool)
    pieces = []
    total = 0

    def follow_both(start, v0):
        """Follow the curve from ``start`` along +v0 and -v0 at once (the two fronts are one batch of the
        predictor-corrector). Each front stops by the same rules as one followed alone; if the forward
        front closes on the start, the backward one is dropped (it is then not traced at all)."""
        fronts = [dict(cur=start, v=v0, pts=[], betas=[], gaps=[], closed=False, alive=True, n=0),
                  dict(cur=start, v=-v0, pts=[], betas=[], gaps=[], closed=False, alive=True, n=0)]
        while True:
            live = [f for f in fronts if f["alive"]]
            if not live:
                break
            pred = np.array([f["cur"] + step * f["v"] for f in live])
            y = correct(pred)
            for j, f in enumerate(live):
                f["n"] += 1
                p, cur, v, pts = y["points"][j], f["cur"], f["v"], f["pts"]
                stop = (not y["converged"][j] or np.any(p < lo) or np.any(p > hi)
                        or np.linalg.norm(p - pred[j]) > step      # the correction jumped to another branch
                        or np.linalg.norm(p - cur) < 0.25 * step)  # stalled (end of the regular ridge)
                if not stop and len(pts) > 3 and np.linalg.norm(p - start) < 0.75 * step:
                    f["closed"] = True
                    stop = True
                if not stop and len(pts) > 2 and np.min(np.linalg.norm(np.asarray(pts[:-2]) - p, axis=1)) \
                        < 0.5 * step:
                    stop = True  # turned back on itself (the tangent field reverses at an end of the ridge)
                if stop:
                    f["alive"] = False
                    continue
                w = y["tangent"][j, :, 0]
                f["v"] = w if np.dot(w, v) >= 0 else -w
                pts.append(p)
                f["betas"].append(y["beta"][j])
                f["gaps"].append(y["eigengap"][j])
                f["cur"] = p
                if f["n"] >= max_points:
                    f["alive"] = False
            if fronts[0]["closed"]:
                fronts[1] = dict(fronts[1], pts=[], betas=[], gaps=[], alive=False)
        return fronts

    while not np.all(visited) and total < max_points:
        i = int(np.flatnonzero(~visited)[0])
        seed = cand[i]
        v0 = frame(field, seed[None], t, 1).tangent[0, :, 0]
        fw, bw = follow_both(seed, v0)
        closed = fw["closed"]
        pts = bw["pts"][::-1] + [seed] + fw["pts"]
        betas = bw["betas"][::-1] + [cand_beta[i]] + fw["betas"]
        gaps = bw["gaps"][::-1] + [cand_gap[i]] + fw["gaps"]
        P = np.array(pts)
        seg = np.linalg.norm(np.diff(P, axis=0), axis=1) if len(P) > 1 else np.zeros(0)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        pieces.append(RidgePiece(points=P, arclength=arc, closed=closed, beta=np.array(betas),
                                 eigengap=np.array(gaps)))
        total += len(P)
        # mark seeds near this piece as visited (chunked distance computation)
        for c0 in range(0, len(cand), 4096):
            dd = np.min(np.linalg.norm(cand[c0:c0 + 4096, None, :] - P[None], axis=-1), axis=1)
            visited[c0:c0 + 4096] |= dd <= 1.5 * step
        visited[i] = True
    return pieces
