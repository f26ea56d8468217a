"""The log-density ridge of a score field (docs/theory.md §2).

With ``H = grad^2 log p_t`` ordered ``lambda_1 >= ... >= lambda_D`` (eigenvectors ``v_k``) and ridge dimension d,
the normal frame is ``E = [v_{d+1} .. v_D]``, ``P_perp = E E^T`` and

    R_t^d = { x : P_perp s(x, t) = 0 and lambda_{d+1}(x) < 0 }.

Diagnostics reported everywhere: normal curvature ``beta = -lambda_{d+1}`` and eigengap ``lambda_d - lambda_{d+1}``
(infinite for d = 0). A point is beta-regular when both exceed a threshold.

Projection (:func:`project`) runs subspace-constrained mean shift, ``x <- x + h P_perp s`` (for p_t the
mean-shift vector is ``h s* = a m - x``), and switches to Newton steps on ``E^T s = 0`` near the ridge. The
Newton Jacobian includes the turning of the normal frame,

    J = Lambda_N E^T + G,   G_{jk} = sum_{l tangent} (v_l . s) (v_l^T (dH/dx_k) v_j) / (lambda_j - lambda_l),

(first-order eigenvector perturbation), so convergence is quadratic when the field provides
``hessian_derivative`` (EmpiricalDensity does, from the posterior third cumulant); otherwise G = 0 and the
step is the frame-frozen quasi-Newton step (linear convergence). The minimal-norm step ``-J^+ E^T s`` is used.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from numpy.typing import ArrayLike

from .._checks import as_points, check_positive_int, check_real, check_ridge_dim
from .._blas import blas_single as _blas_single
from .._results import frame as _table, short_repr
# the frame and the projection core live in private modules beside this one (one job each); their private
# names are re-exported for the modules and tests that reach them through ``ridge``
from ._ridge_frame import (_EIGH_BLOCK, Frame, _dim, _eigh_blocks, _frame_at, _frame_from,  # noqa: F401
                           _partial_applies, _require_field, _residual_partial, _row_norms, _score_hessian,
                           _times)
from ._ridge_newton import _newton_step, _project_batch, _step_size  # noqa: F401
from ._ridge_one import _Fallback, project_one as _project_one
# the projection's result type and the closed-form reference ridges: private modules beside this one, re-exported
from ._ridge_refs import affine_hull, blurred_circle_radius
from ._ridge_result import STATUS, Projection

log = logging.getLogger(__name__)

__all__ = ["Frame", "Projection", "frame", "residual", "decompose", "project", "distance", "trace",
           "blurred_circle_radius", "affine_hull", "STATUS"]



def frame(field, x: ArrayLike, t: ArrayLike, d: int) -> Frame:
    """The ridge frame at x: eigen-decomposition of the field's Hessian, normal and tangent bases (docs/theory.md §2).

    Parameters
    ----------
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the field's schedule.
    d : int
        Ridge dimension, 0 <= d < D (d = 0: the modes).

    Returns
    -------
    Frame
        ``eigenvalues`` (m, D) descending (1/length^2), ``vectors`` (m, D, D), ``normal`` (m, D, D-d),
        ``tangent`` (m, D, d), ``beta`` (m,) normal curvature ``-lambda_{d+1}``, ``eigengap`` (m,)
        ``lambda_d - lambda_{d+1}`` (inf for d = 0), ``score`` (m, D); always batched (m = 1 for one point).

    Raises
    ------
    TypeError
        If ``field`` has no ``score`` or no Hessian, or d is not an integer.
    ValueError
        If x has the wrong shape or is not finite, d is outside [0, D), or t is outside the schedule's
        domain.
    """
    _require_field(field)
    D = _dim(field, x)
    d = check_ridge_dim(d, D)
    x = as_points(x, D, "x")
    return _frame_at(field, x, _times(field, t, x.shape[0]), d)


@dataclass
class Residual:
    """``residual`` (m,) = |P_perp s| (1/length); ``curvature_ok`` lambda_{d+1} < 0; ``regular`` beta-regular
    at the requested threshold; ``frame`` the frame used."""

    residual: np.ndarray
    curvature_ok: np.ndarray
    regular: np.ndarray
    frame: Frame

    __repr__ = short_repr

    def to_frame(self):
        """One row per point: residual, curvature_ok, regular, beta, eigengap.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"residual": self.residual, "curvature_ok": self.curvature_ok, "regular": self.regular,
                       "beta": self.frame.beta, "eigengap": self.frame.eigengap}, "point")


def residual(field, x: ArrayLike, t: ArrayLike, d: int, beta_min: float = 0.0) -> Residual:
    """The ridge residual ``|P_perp s(x, t)|`` and the ridge condition flags (docs/theory.md §2).

    Parameters
    ----------
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the field's schedule.
    d : int
        Ridge dimension, 0 <= d < D (d = 0: the modes).
    beta_min : float, default 0.0
        Threshold of beta-regularity (normal curvature and eigengap both above it; 1/length^2).

    Returns
    -------
    Residual
        ``residual`` (m,) in 1/length (0 exactly on the ridge), ``curvature_ok`` (m,) ``lambda_{d+1} < 0``,
        ``regular`` (m,) beta-regular, ``frame`` the :class:`Frame` used; ``to_frame()`` gives a table.

    Raises
    ------
    TypeError
        If ``field`` has no ``score`` or no Hessian, or d is not an integer.
    ValueError
        If x has the wrong shape or is not finite, d is outside [0, D), or t is outside the schedule's
        domain.

    Notes
    -----
    For an :class:`rftheory.EmpiricalDensity` with D >= 24 and d + 1 <= max(2, D // 12) only the d + 1 largest
    eigenpairs of the posterior covariance are computed (LAPACK ``dsyevr`` by index; issue 17):
    ``residual = |s - V V^T s|`` with V the d tangent vectors, and the flags from ``lambda_d``,
    ``lambda_{d+1}``; these agree with the full decomposition's to round-off. ``frame`` is then computed on
    first access of its eigen-fields (the moments are kept), bit for bit the :func:`frame` of the same input.
    """
    beta_min = check_real(beta_min, "beta_min")
    _require_field(field)
    D = _dim(field, x)
    d = check_ridge_dim(d, D)
    x = as_points(x, D, "x")
    tt = _times(field, t, x.shape[0])
    if _partial_applies(field, x, d):   # only the top d + 1 eigenpairs; the frame is computed when read
        r, beta, gap, fr = _residual_partial(field, x, tt, d)
    else:
        fr = _frame_at(field, x, tt, d)
        r = _row_norms(np.einsum("mdk,md->mk", fr.normal, fr.score))
        beta, gap = fr.beta, fr.eigengap
    if not np.all(np.isfinite(r)):
        i = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"the ridge residual at query x[{i}] is not representable in float64 (t too small or "
                         "data too large for this scale)")
    return Residual(residual=r, curvature_ok=beta > 0, regular=(beta > beta_min) & (gap > beta_min), frame=fr)


def decompose(v: ArrayLike, field, x: ArrayLike, t: ArrayLike, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Split vectors at x into their normal and tangent parts of the ridge frame.

    Parameters
    ----------
    v : array_like, shape (m, D)
        Vectors attached to the points x (e.g. a score error, 1/length).
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the field's schedule.
    d : int
        Ridge dimension, 0 <= d < D (d = 0: the modes).

    Returns
    -------
    normal : numpy.ndarray, shape (m, D)
        ``P_perp v``.
    tangent : numpy.ndarray, shape (m, D)
        ``P_par v = v - P_perp v``.

    Raises
    ------
    TypeError
        If ``field`` has no ``score`` or no Hessian, or d is not an integer.
    ValueError
        If x has the wrong shape or is not finite, d is outside [0, D), or t is outside the schedule's
        domain; also if v does not have the shape (m, D) of x.
    """
    fr = frame(field, x, t, d)
    v = np.asarray(v, dtype=np.float64)
    if v.shape != fr.score.shape:
        raise ValueError(f"v must have shape {fr.score.shape}; got {v.shape}")
    vn = fr.project_normal(v)
    return vn, v - vn


def project(field, x: ArrayLike, t: ArrayLike, d: int, tol: float = 1e-10, max_iter: int = 200, newton: bool = True,
            beta_min: float = 0.0, step=None, batch_size: int = 65536) -> Projection:
    """Project points onto the d-dimensional ridge of ``field`` at time t (docs/theory.md §2).

    Parameters
    ----------
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Starting points (finite); a single point is treated as m = 1 (the result is always batched).
    t : float or array_like, shape (m,)
        Time(s).
    d : int
        Ridge dimension, 0 <= d < D.
    tol : float, default 1e-10
        Residual ``|P_perp s|`` (1/length) at which a point counts as converged (raised to the round-off
        floor where that is larger; the value used is in ``Projection.tol``).
    max_iter : int, default 200
        Iterations per point.
    newton : bool, default True
        Switch to Newton steps near the ridge (quadratic convergence when the field has
        ``hessian_derivative``).
    beta_min : float, default 0.0
        A point whose normal curvature or eigengap falls to this value or below stops with status
        ``not_regular``.
    step : float, optional
        SCMS step length (length^2); defaults to ``h_t`` of the field's schedule, which makes the step exact
        mean shift. Required for a field without a schedule.
    batch_size : int, default 65536
        Points per batch (memory bound).

    Returns
    -------
    Projection
        ``points`` (m, D) projected points (the last iterate where not converged: never NaN), ``converged``
        (m,), ``status`` (m,) codes of ``STATUS`` (0 converged, 1 max_iter, 2 not_regular, 3 diverged),
        ``iterations``, ``newton_steps``, final ``residual`` (1/length), ``beta`` and ``eigengap``
        (1/length^2), the observed Newton ``order``; ``to_frame()`` gives one row per point.

    Raises
    ------
    TypeError
        If ``field`` has no ``score`` or no Hessian, or d is not an integer.
    ValueError
        If x has the wrong shape or is not finite, d is outside [0, D), or t is outside the schedule's
        domain; also if tol is not positive and finite, max_iter is not a positive integer, or no step length is
        known.

    Notes
    -----
    SCMS steps ``x <- x + step * P_perp s`` switch to Newton steps once the Newton step is shorter than the
    SCMS step would be (near the ridge); a trust region guards them. Points whose residual drops below tol
    are frozen; tol is raised to the round-off floor ``64 eps (1 + |x|) |lambda_D|`` where that is larger.
    Nothing per iteration is stored. A single point (m = 1) of an :class:`rftheory.EmpiricalDensity` runs the
    same iteration without the batching machinery (the same bits as the batch code on that point, ~2x faster).

    Examples
    --------
    >>> import numpy as np
    >>> from rftheory import EmpiricalDensity, ridge
    >>> p = EmpiricalDensity(np.array([[-1.0, 0.0], [1.0, 0.0]]))   # two points: the ridge is their line (P2)
    >>> pr = ridge.project(p, np.array([[0.3, 0.4]]), 0.3, d=1)
    >>> bool(pr.converged[0]), abs(float(pr.points[0, 1])) < 1e-12
    (True, True)
    """
    _require_field(field)
    D = _dim(field, x)
    d = check_ridge_dim(d, D)
    x = as_points(x, D, "x")
    tol = check_real(tol, "tol", positive=True)
    max_iter = check_positive_int(max_iter, "max_iter")
    batch_size = check_positive_int(batch_size, "batch_size")
    beta_min = check_real(beta_min, "beta_min")
    m = x.shape[0]
    if step is not None:
        st = np.asarray(step, dtype=np.float64) if not np.iscomplexobj(step) else None
        if st is None or st.ndim > 1 or (st.ndim == 1 and st.shape != (m,)):
            raise ValueError(f"step must be a real scalar or have shape ({m},); got {step!r}")
        if not (np.all(np.isfinite(st)) and np.all(st > 0)):
            raise ValueError(f"step (the SCMS step length) must be finite and > 0; got {step!r}")
    t_arr = _times(field, t, m)
    t_arr = np.asarray(t_arr, dtype=np.float64)
    if t_arr.ndim == 0:
        t_arr = np.full(m, float(t_arr))
    if t_arr.shape != (m,):
        raise ValueError(f"t must be a scalar or have shape ({m},); got {t_arr.shape}")
    out = {k: None for k in ("points", "converged", "status", "iterations", "residual", "beta", "eigengap",
                             "newton_steps", "tol")}
    chunks = []
    orders = []
    # the BLAS-thread policy once per call: one BLAS thread (the bits must not depend on the thread count;
    # large batches use the query threads instead, see rftheory._blas)
    with _blas_single():
        if m == 1:   # one point: the same iteration without the batching machinery (issue 17)
            try:
                res, ords = _project_one(field, x, t_arr, d, tol, int(max_iter), newton, beta_min, step)
            except _Fallback:     # a case only the batch path handles (or refuses by name)
                pass
            else:
                return Projection(order=float(np.median(ords)) if ords else float("nan"), **res)
        for b0 in range(0, m, batch_size):
            sl = slice(b0, min(m, b0 + batch_size))
            st = step if step is None or np.ndim(step) == 0 else np.asarray(step, dtype=np.float64)[sl]
            res, ords = _project_batch(field, x[sl], t_arr[sl], d, tol, int(max_iter), newton, beta_min, st)
            chunks.append(res)
            orders.extend(ords)
    for k in out:
        out[k] = np.concatenate([c[k] for c in chunks])
    order = float(np.median(orders)) if orders else float("nan")
    return Projection(order=order, **out)



def distance(field, x: ArrayLike, t: ArrayLike, d: int, **kw) -> tuple[np.ndarray, Projection]:
    """The distance ``|x - pi(x)|`` to the ridge, with pi the projection of :func:`project`.

    Parameters
    ----------
    field : score field
        An object with ``score(x, t)`` and ``hessian(x, t)`` (or ``score_and_hessian``), e.g.
        :class:`rftheory.EmpiricalDensity` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the field's schedule.
    d : int
        Ridge dimension, 0 <= d < D (d = 0: the modes).
    **kw
        Passed to :func:`project` (``tol``, ``max_iter``, ``beta_min``, ...).

    Returns
    -------
    distance : numpy.ndarray, shape (m,)
        Distances (length). Where the projection did not converge the distance is to its last iterate:
        check ``projection.converged``.
    projection : Projection
        The projection, with its flags.

    Raises
    ------
    TypeError
        If ``field`` has no ``score`` or no Hessian, or d is not an integer.
    ValueError
        If x has the wrong shape or is not finite, d is outside [0, D), or t is outside the schedule's
        domain.
    """
    pr = project(field, x, t, d, **kw)
    x = as_points(x, pr.points.shape[1], "x")
    return np.linalg.norm(x - pr.points, axis=1), pr


# ----------------------------------------------------------------------------- oracles
# (P2/P3: blurred_circle_radius and affine_hull, in _ridge_refs.py, imported above)


# ----------------------------------------------------------------------------- tracing (d = 1)
from ._ridge_trace import trace  # noqa: E402  (kept in its own module: it is a separate job)
