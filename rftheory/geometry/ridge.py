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

import contextlib
import logging
import math
from dataclasses import dataclass, field as dc_field

import numpy as np
from scipy import optimize, special

from numpy.typing import ArrayLike

from .._checks import as_points, check_positive_int, check_real, check_ridge_dim, per_point_times
from .._blas import blas_single as _blas_single, query_threads as _query_threads, run_blocks as _run_blocks
from .._results import frame as _table, short_repr
from ..density.empirical import EmpiricalDensity

log = logging.getLogger(__name__)

__all__ = ["Frame", "Projection", "frame", "residual", "decompose", "project", "distance", "trace",
           "blurred_circle_radius", "affine_hull", "STATUS"]

_EPS = np.finfo(np.float64).eps
STATUS = {0: "converged", 1: "max_iter", 2: "not_regular", 3: "diverged"}


def _require_field(field, need_hessian=True):
    if not hasattr(field, "score"):
        raise TypeError("field must be a score field with a score(x, t) method")
    if need_hessian and not (hasattr(field, "hessian") or hasattr(field, "score_and_hessian")):
        raise TypeError("field must provide hessian(x, t) (or score_and_hessian) for ridge geometry")


def _dim(field, x):
    D = getattr(field, "D", None)
    if D is None:
        D = np.asarray(x).shape[-1]
    return int(D)


def _score_hessian(field, x, t):
    if hasattr(field, "score_and_hessian"):
        return field.score_and_hessian(x, t)
    return field.score(x, t), field.hessian(x, t)


def _frame_at(field, x, t, d, third=False):
    """Frame at x (for an EmpiricalDensity: x and t validated by the caller, t of shape (m,); see ``_times``).
    For an empirical density the eigenvectors come from the posterior covariance (P1: same
    eigenvectors as H, and eigenvalues ``-1/h + (a^2/h^2) mu``): its small eigenvalues carry full relative
    precision, so an eigengap far below ``eps/h`` (one-hot weights near a mode) is still resolved.
    With ``third`` (EmpiricalDensity only) the same pass also gives ``dH/dx`` (``fr.dH``, (m, D, D, D))."""
    if hasattr(field, "moments") and hasattr(field, "posterior_cov"):
        exact = isinstance(field, EmpiricalDensity)
        third = bool(third) and exact
        if exact:   # validated once by the public caller (x finite (m, D), t in the domain)
            mom = field._moments(x, t, cov=True, third=third)
        else:
            mom = field.moments(x, t, cov=True, third=True) if third else field.moments(x, t, cov=True)
        mu, vec = _eigh_blocks(mom.cov)
        mu = mu[:, ::-1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # checked just below
            c2 = mom.a * mom.a / (mom.h * mom.h)
            c3 = (mom.a / mom.h) ** 3 if third else None
        if math.isfinite(float(np.add.reduce(c2))):
            quiet = contextlib.nullcontext()
        else:
            c2 = c3 = None   # (a/h)^k overflows for some query: _times_a_over_h's nested products there
            # and where even those overflow (t ~ 1e-300 between modes) the frame is refused by name just
            # below: no floating-point warning before that refusal
            quiet = np.errstate(over="ignore", invalid="ignore")
        with quiet:
            lam = _times_a_over_h(mom, mu, 2, c2) - 1.0 / mom.h[:, None]
            gap = _times_a_over_h(mom, mu[:, d - 1] - mu[:, d], 2, c2) if d > 0 else None
            floor = _times_a_over_h(mom, 8 * _EPS * np.abs(mu[:, [0, -1]]).max(axis=1), 2, c2)
            fr = _frame_from(mom.score, None, d, lam=lam, vec=vec[:, :, ::-1], gap=gap, floor=floor)
            if third:  # derivative of P1: dH_ij/dx_k = (a^3/h^3) kappa3_ijk
                fr.dH = _times_a_over_h(mom, mom.third, 3, c3 if c3 is not None and
                                        math.isfinite(float(np.add.reduce(c3))) else None)
        _require_finite_frame(fr, mom.t, mom.h)
        return fr
    s, H = _score_hessian(field, x, t)
    fr = _frame_from(s, H, d)
    _require_finite_frame(fr, np.broadcast_to(np.asarray(t, dtype=np.float64), (s.shape[0],)), None)
    return fr


_EIGH_BLOCK = 256   # matrices per block of the query-parallel eigh (fixed: the same bits for any thread count)


def _eigh_blocks(C):
    """``np.linalg.eigh`` of a stack (m, D, D) on one BLAS thread (many small matrices: BLAS threads only cost,
    see rftheory._blas); large stacks are cut into fixed blocks run on the query threads. Each matrix is
    decomposed alone whatever the blocks, so the bits do not depend on the thread count."""
    m, D = C.shape[0], C.shape[-1]
    with _blas_single():
        if m <= _EIGH_BLOCK or m * D ** 3 < 2 ** 22 or _query_threads() < 2:
            return np.linalg.eigh(C)
        w = np.empty((m, D))
        v = np.empty((m, D, D))

        def one(sl):
            w[sl], v[sl] = np.linalg.eigh(C[sl])

        _run_blocks(one, [slice(i, min(m, i + _EIGH_BLOCK)) for i in range(0, m, _EIGH_BLOCK)])
        return w, v


def _times(field, t, m):
    """For an EmpiricalDensity, t as the validated (m,) float64 array its ``_moments`` takes (other fields
    validate their own input): the public functions call this once, the inner steps reuse the array."""
    if isinstance(field, EmpiricalDensity):
        return per_point_times(t, m, field.schedule, "t")
    return t


def _a_over_h_power(mom, k: int):
    """``(a/h)^k`` per query (inf where it overflows float64; no warning)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):         # handled by _times_a_over_h
        return mom.a * mom.a / (mom.h * mom.h) if k == 2 else (mom.a / mom.h) ** k


def _times_a_over_h(mom, v, k: int, c=None):
    """``(a/h)^k v`` per query (v's first axis): as ``(a^k/h^k) v``, or where that factor overflows float64
    (t below ~1e-154 for k = 2) as k nested products ``(a/h)(...((a/h) v))``, finite when v is small.
    ``c`` is ``_a_over_h_power(mom, k)`` when the caller has checked it finite for every query."""
    shape = (-1,) + (1,) * (np.ndim(v) - 1)
    if c is not None:   # the caller's (a/h)^k, known finite everywhere: one product
        return c.reshape(shape) * v
    c = _a_over_h_power(mom, k).reshape(shape)
    if math.isfinite(float(np.add.reduce(c, axis=None))):   # ordinary t: one product, no error-state switch
        return c * v
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):         # handled below
        out = c * v
    big = ~np.isfinite(c.reshape(-1))
    if big.any():
        r = (mom.a[big] / mom.h[big]).reshape(shape)
        w = v[big]
        for _ in range(k):
            w = r * w
        out[big] = w
    return out


def _row_norms(g):
    """(m,) Euclidean norms of the rows of g; where |g|^2 overflows although |g| is finite (t ~ 1e-300), the
    row is scaled by its largest entry first (elsewhere the bits are those of np.linalg.norm)."""
    with np.errstate(over="ignore"):             # handled below
        r = np.linalg.norm(g, axis=1)
    if math.isfinite(float(np.add.reduce(r))):
        return r
    over = np.isinf(r) & np.all(np.isfinite(g), axis=1)
    if over.any():
        sc = np.abs(g[over]).max(axis=1)
        r[over] = sc * np.linalg.norm(g[over] / sc[:, None], axis=1)
    return r


def _require_finite_frame(fr, tt, h):
    """ValueError if the frame holds NaN/inf: the Hessian is not representable in float64 there."""
    if math.isfinite(float(np.add.reduce(fr.eigenvalues, axis=None)) + float(np.add.reduce(fr.score, axis=None))):
        return      # one reduction each proves every entry finite (an overflowing sum is checked below)
    bad = ~(np.all(np.isfinite(fr.eigenvalues), axis=1) & np.all(np.isfinite(fr.score), axis=1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hs = f" (h_t = {h[i]:.3g})" if h is not None else ""
        raise ValueError(f"the Hessian at t = {tt[i]:.3g}{hs} for query x[{i}] is not representable in float64: "
                         "t is below what float64 resolves at this data's scale, or the data or query are too "
                         "large; use a larger t or rescale the data")


@dataclass
class Frame:
    """The ridge frame at m points (D dimensions, ridge dimension d; :func:`frame`).

    Attributes
    ----------
    eigenvalues : numpy.ndarray, shape (m, D)
        Hessian eigenvalues, descending (1/length^2).
    vectors : numpy.ndarray, shape (m, D, D)
        Eigenvectors as columns, same order.
    normal : numpy.ndarray, shape (m, D, D-d)
        Normal basis ``E = [v_{d+1} .. v_D]``.
    tangent : numpy.ndarray, shape (m, D, d)
        Tangent basis ``[v_1 .. v_d]``.
    beta : numpy.ndarray, shape (m,)
        Normal curvature ``-lambda_{d+1}``.
    eigengap : numpy.ndarray, shape (m,)
        ``lambda_d - lambda_{d+1}`` (inf for d = 0).
    score : numpy.ndarray, shape (m, D)
        The field's score at the points.
    d : int
        Ridge dimension.
    gap_floor : numpy.ndarray or float
        Round-off level of the eigengap (below it the frame is undetermined).
    dH : numpy.ndarray, shape (m, D, D, D), or None
        dH/dx when computed in the same pass (projection only).
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    normal: np.ndarray
    tangent: np.ndarray
    beta: np.ndarray
    eigengap: np.ndarray
    score: np.ndarray
    d: int
    gap_floor: np.ndarray | float = 0.0  # round-off level of the eigengap (below it the frame is undetermined)
    dH: np.ndarray | None = None  # (m, D, D, D) dH/dx when computed in the same pass (projection only)

    __repr__ = short_repr

    def project_normal(self, v):
        """``P_perp v`` at each point.

        Parameters
        ----------
        v : numpy.ndarray, shape (m, D)
            Vectors.

        Returns
        -------
        numpy.ndarray, shape (m, D)
        """
        return np.einsum("mdk,mk->md", self.normal, np.einsum("mdk,md->mk", self.normal, v))

    def regular(self, beta_min: float = 0.0):
        """Beta-regularity: ``beta > beta_min`` and ``eigengap > beta_min``.

        Parameters
        ----------
        beta_min : float, default 0.0
            Threshold (1/length^2).

        Returns
        -------
        numpy.ndarray of bool, shape (m,)
        """
        return (self.beta > beta_min) & (self.eigengap > beta_min)


def _frame_from(s, H, d, lam=None, vec=None, gap=None, floor=None):
    if lam is None:
        with _blas_single():
            lam, vec = np.linalg.eigh(H)  # ascending
        lam = lam[:, ::-1]
        vec = vec[:, :, ::-1]
    beta = -lam[:, d]
    if gap is None:
        gap = lam[:, d - 1] - lam[:, d] if d > 0 else np.full(lam.shape[0], np.inf)
    if floor is None:
        floor = 8 * _EPS * np.abs(lam).max(axis=1)
    return Frame(eigenvalues=lam, vectors=vec, normal=vec[:, :, d:], tangent=vec[:, :, :d], beta=beta,
                 eigengap=gap, score=s, d=d, gap_floor=floor)


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
    """
    beta_min = check_real(beta_min, "beta_min")
    fr = frame(field, x, t, d)
    g = np.einsum("mdk,md->mk", fr.normal, fr.score)
    r = _row_norms(g)
    if not np.all(np.isfinite(r)):
        i = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"the ridge residual at query x[{i}] is not representable in float64 (t too small or "
                         "data too large for this scale)")
    return Residual(residual=r, curvature_ok=fr.beta > 0, regular=fr.regular(beta_min), frame=fr)


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


@dataclass
class Projection:
    """Result of :func:`project` for m points.

    Attributes
    ----------
    points : numpy.ndarray, shape (m, D)
        Projected points (the last iterate where not converged; never NaN).
    converged : numpy.ndarray of bool, shape (m,)
    status : numpy.ndarray of int, shape (m,)
        Codes of ``STATUS``: 0 converged, 1 max_iter, 2 not_regular, 3 diverged (``status_names``).
    iterations : numpy.ndarray of int, shape (m,)
        Iterations used.
    residual : numpy.ndarray, shape (m,)
        Final ``|P_perp s|`` (1/length).
    beta, eigengap : numpy.ndarray, shape (m,)
        Final normal curvature and eigengap (1/length^2).
    newton_steps : numpy.ndarray of int, shape (m,)
        How many of the iterations were Newton steps.
    order : float
        Observed convergence order of the Newton phase (median over points; NaN if unmeasured).
    tol : numpy.ndarray, shape (m,)
        The tolerance applied (after the round-off floor).
    """

    points: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    beta: np.ndarray
    eigengap: np.ndarray
    newton_steps: np.ndarray
    order: float = float("nan")
    tol: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))

    __repr__ = short_repr

    def __str__(self):
        counts = ", ".join(f"{STATUS[c]} {int(np.sum(self.status == c))}" for c in sorted(STATUS)
                           if np.any(self.status == c))
        return (f"Projection of {self.points.shape[0]} points in D = {self.points.shape[1]}: {counts}; "
                f"max residual {np.max(self.residual, initial=0.0):.3g}")

    @property
    def status_names(self):
        """(m,) the status codes as names (``STATUS``)."""
        return np.array([STATUS[int(c)] for c in self.status])

    def to_frame(self):
        """One row per point: points_k, status (name), converged, iterations, newton_steps, residual, beta,
        eigengap.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"points": self.points, "status": self.status_names, "converged": self.converged,
                       "iterations": self.iterations, "newton_steps": self.newton_steps,
                       "residual": self.residual, "beta": self.beta, "eigengap": self.eigengap}, "point")


def _step_size(field, t, m):
    sch = getattr(field, "schedule", None)
    if sch is None:
        return None
    return np.broadcast_to(np.asarray(sch.h(t), dtype=np.float64), (m,)).copy()


def _newton_step(fr, dH, g):
    """Minimal-norm Newton step for E^T s = 0 with the frame-turning term (see module doc)."""
    with _blas_single():  # batched products and solves of small matrices
        return _newton_step_impl(fr, dH, g)


def _newton_step_impl(fr, dH, g):
    m, D, _ = fr.vectors.shape
    d = fr.d
    lamN = fr.eigenvalues[:, d:]
    E = fr.normal
    J = lamN[:, :, None] * np.swapaxes(E, 1, 2)  # (m, D-d, D)
    if dH is not None and d > 0:
        T = fr.tangent
        c = np.einsum("mdl,md->ml", T, fr.score)  # tangential score coordinates
        # B[m, l, j, k] = v_l^T dH_k v_j
        # (a fixed order of contraction: T^T dH first, then E; no einsum path search per step)
        B = np.einsum("mlbk,mbj->mljk", np.einsum("mal,mabk->mlbk", T, dH), E)
        denom = lamN[:, None, :] - fr.eigenvalues[:, :d, None]  # (m, d, D-d): lambda_j - lambda_l
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.einsum("ml,mljk->mjk", c, B / denom[..., None])
        J = J + np.where(np.isfinite(G), G, 0.0)
    # Scale each point's system by the power of two nearest below max|J|: exact in floating point (the step's
    # bits are unchanged), and J J^T cannot overflow at tiny t, where |J| ~ 1/h_t reaches 1e300.
    # step = J^T (J J^T)^{-1} (-g) = Js^T (Js Js^T)^{-1} (-g sc) with Js = J sc.
    amax = np.max(np.abs(J), axis=(1, 2))
    _, ex = np.frexp(np.where(np.isfinite(amax) & (amax > 0), amax, 1.0))
    sc = np.ldexp(1.0, -ex)
    J = J * sc[:, None, None]
    g = g * sc[:, None]
    JJt = J @ np.swapaxes(J, 1, 2)
    if JJt.shape[1] == 1 and np.all(JJt[:, 0, 0] != 0):   # one normal direction: LAPACK's 1x1 solve is a division
        return J[:, 0, :] * (-g / JJt[:, 0])
    try:
        y = np.linalg.solve(JJt, -g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        y = np.linalg.lstsq(JJt.reshape(-1, JJt.shape[-1]), -g.reshape(-1), rcond=None)[0]
    return np.einsum("mkd,mk->md", J, y)


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
    Nothing per iteration is stored.

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


def _project_batch(field, x0, t, d, tol, max_iter, newton, beta_min, step, want_tangent=False):
    """Trust-region hybrid: a Newton step is taken when it is within the point's trust radius; if the
    residual then fails to decrease, the point returns to where it was, takes the SCMS step instead and
    its trust radius shrinks (x4); each successful Newton step doubles it (start: sqrt(h)).
    ``want_tangent`` also returns ``tangent`` (m, D, d), the tangent basis of the frame at each returned
    point (the frame that judged it; for tracing, which then needs no second frame evaluation)."""
    m, D = x0.shape
    x = x0.copy()
    h = _step_size(field, t, m) if step is None else np.broadcast_to(np.float64(step), (m,)).copy()
    if h is None:
        raise ValueError("step must be given for a field without a schedule (SCMS step length)")
    has_dH = newton and hasattr(field, "hessian_derivative")
    status = np.full(m, 1, dtype=np.int64)
    iters = np.zeros(m, dtype=np.int64)
    nsteps = np.zeros(m, dtype=np.int64)
    res = np.full(m, np.inf)
    beta = np.full(m, np.nan)
    gap = np.full(m, np.nan)
    tol_eff = np.full(m, tol)
    trust = np.sqrt(h)
    prev_x = x.copy()
    prev_r = np.full(m, np.inf)
    prev_scms = np.zeros_like(x)
    was_newton = np.zeros(m, dtype=bool)
    hist = np.full((m, 3), np.nan)  # last three residuals of consecutive Newton steps (observed order)
    orders = []
    tang = np.full((m, D, d), np.nan) if want_tangent else None
    active = np.arange(m)
    for it in range(max_iter + 1):
        if active.size == 0:
            break
        xa, ta = x[active], t[active]
        fr = _frame_at(field, xa, ta, d, third=has_dH and d > 0)
        s = fr.score
        g = np.einsum("mdk,md->mk", fr.normal, s)
        r = _row_norms(g)
        floor = 64 * _EPS * np.sqrt(D) * (1.0 + np.abs(xa).max(axis=1)) * np.abs(fr.eigenvalues[:, -1])
        tol_eff[active] = np.maximum(tol, floor)
        # a Newton step that did not reduce the residual is undone: back, SCMS step, smaller trust
        failed = was_newton[active] & ~(r < prev_r[active])
        ok_newton = was_newton[active] & ~failed
        trust[active[ok_newton]] *= 2.0
        if np.any(failed):
            fa = active[failed]
            trust[fa] /= 4.0
            x[fa] = prev_x[fa] + prev_scms[fa]
            was_newton[fa] = False
            hist[fa] = np.nan
            iters[fa] += 1
        ev = ~failed
        res[active[ev]], beta[active[ev]], gap[active[ev]] = r[ev], fr.beta[ev], fr.eigengap[ev]
        if want_tangent:
            tang[active[ev]] = fr.tangent[ev]
        done = ev & (r <= tol_eff[active])
        degenerate = fr.eigengap <= 64 * fr.gap_floor
        regular = fr.regular(beta_min) & ~degenerate
        bad = ev & (~np.isfinite(r) | ~np.all(np.isfinite(xa), axis=1))
        status[active[done & regular]] = 0
        status[active[done & ~regular]] = 2
        status[active[bad]] = 3
        keep = ev & ~done & ~bad
        if it == max_iter:
            break
        scms = h[active][:, None] * np.einsum("mdk,mk->md", fr.normal, g)   # h P_perp s (g = E^T s)
        if newton:
            dH = None
            if has_dH and d > 0:  # G (frame turning) is used only for d > 0
                dH = fr.dH if fr.dH is not None else field.hessian_derivative(xa, ta)
            dn = _newton_step(fr, dH, g)
            use_n = keep & regular & np.all(np.isfinite(dn), axis=1) & \
                (np.linalg.norm(dn, axis=1) <= trust[active])
        else:
            dn, use_n = scms, np.zeros(len(active), dtype=bool)
        delta = np.where(use_n[:, None], dn, scms)
        # observed order from consecutive Newton-phase residuals well above the round-off floor
        ha = hist[active]
        ha = np.where(use_n[:, None], np.column_stack([ha[:, 1], ha[:, 2], r]), np.nan)
        hist[active[keep]] = ha[keep]
        okq = np.all(np.isfinite(ha), axis=1) & (ha[:, 2] < ha[:, 1]) & (ha[:, 1] < ha[:, 0]) & \
            (ha[:, 2] > 1e3 * tol_eff[active])
        if np.any(okq):
            q = np.log(ha[okq, 2] / ha[okq, 1]) / np.log(ha[okq, 1] / ha[okq, 0])
            orders.extend(q[np.isfinite(q)].tolist())
        ka = active[keep]
        prev_x[ka], prev_r[ka], prev_scms[ka] = xa[keep], r[keep], scms[keep]
        was_newton[ka] = use_n[keep]
        nsteps[active[keep & use_n]] += 1
        iters[ka] += 1
        x[ka] = xa[keep] + delta[keep]
        active = active[keep | failed]
    out = dict(points=x, converged=status == 0, status=status, iterations=iters, residual=res, beta=beta,
               eigengap=gap, newton_steps=nsteps, tol=tol_eff)
    if want_tangent:
        out["tangent"] = tang
    return out, orders


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


# ----------------------------------------------------------------------------- tracing (d = 1)
from ._ridge_trace import trace  # noqa: E402  (kept in its own module: it is a separate job)
