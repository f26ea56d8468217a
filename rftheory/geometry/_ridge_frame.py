"""The ridge frame of a score field at m points: the Hessian's spectrum (from the posterior covariance for an
EmpiricalDensity), the normal and tangent bases and their diagnostics (docs/theory.md §2). Private: the
public face is :mod:`rftheory.geometry.ridge` (``frame``, ``Frame``)."""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from .._checks import per_point_times
from .._blas import blas_single as _blas_single, query_threads as _query_threads, run_blocks as _run_blocks
from .._results import short_repr
from ..density._partial_eigh import top_eigh
from ..density.empirical import EmpiricalDensity
from ._eigh_small import eigh_small

_EPS = np.finfo(np.float64).eps


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
        eig = None
        if exact:   # validated once by the public caller (x finite (m, D), t in the domain)
            if x.shape[0] > _EIGH_BLOCK and x.shape[1] > 2:   # (D <= 2: the closed form after the pass)
                # many queries: each query block's thread also decomposes its own covariances (issue 17), so
                # the eigh overlaps the other blocks' products; one BLAS thread (the bits of eigh must not
                # depend on the thread count); each matrix alone, so the same bits as ``_eigh_blocks``
                with _blas_single():
                    mom = field._moments(x, t, cov=True, third=third, eigh=True)
                eig = mom._eigh
            else:
                mom = field._moments(x, t, cov=True, third=third)
        else:
            mom = field.moments(x, t, cov=True, third=True) if third else field.moments(x, t, cov=True)
        return _frame_of_moments(mom, _eigh_blocks(mom.cov) if eig is None else eig, d, third)
    s, H = _score_hessian(field, x, t)
    fr = _frame_from(s, H, d)
    _require_finite_frame(fr, np.broadcast_to(np.asarray(t, dtype=np.float64), (s.shape[0],)), None)
    return fr


def _frame_of_moments(mom, eig, d, third):
    """The frame from an EmpiricalDensity's moments (with ``cov``; ``third``: with ``third``) and the full
    eigendecomposition ``eig`` of ``mom.cov`` (eigenvalues ascending, vectors as columns)."""
    mu, vec = eig
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
        # 8 eps max(|mu_1|, |mu_D|): the larger of the end eigenvalues' magnitudes (exact, no gather)
        floor = _times_a_over_h(mom, 8 * _EPS * np.maximum(np.abs(mu[:, 0]), np.abs(mu[:, -1])), 2, c2)
        fr = _frame_from(mom.score, None, d, lam=lam, vec=vec[:, :, ::-1], gap=gap, floor=floor)
        if third:  # derivative of P1: dH_ij/dx_k = (a^3/h^3) kappa3_ijk
            fr.dH = _times_a_over_h(mom, mom.third, 3, c3 if c3 is not None and
                                    math.isfinite(float(np.add.reduce(c3))) else None)
    _require_finite_frame(fr, mom.t, mom.h)
    return fr


_EIGH_BLOCK = 256   # matrices per block of the query-parallel eigh (fixed: the same bits for any thread count)


def _eigh_blocks(C):
    """``np.linalg.eigh`` of a stack (m, D, D) on one BLAS thread (many small matrices: BLAS threads only cost,
    see rftheory._blas); large stacks are cut into fixed blocks run on the query threads. Each matrix is
    decomposed alone whatever the blocks, so the bits do not depend on the thread count. At D <= 2 the closed
    form of :mod:`._eigh_small` (5x faster than LAPACK on 10^4 2x2 matrices; the one-point path's bits)."""
    m, D = C.shape[0], C.shape[-1]
    if D <= 2:   # closed form (issue 17), the one-point path's bits (``_eigh_small``)
        return eigh_small(C)
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
        r = np.sqrt(np.add.reduce(g * g, axis=1))   # what np.linalg.norm(g, axis=1) computes, without its layers
    if math.isfinite(float(np.add.reduce(r))):
        return r
    over = np.isinf(r) & np.all(np.isfinite(g), axis=1)
    if over.any():
        sc = np.abs(g[over]).max(axis=1)
        r[over] = sc * np.linalg.norm(g[over] / sc[:, None], axis=1)
    return r


def _require_finite_frame(fr, tt, h):
    """ValueError if the frame holds NaN/inf: the Hessian is not representable in float64 there."""
    _require_finite_values(fr.eigenvalues, fr.score, tt, h)


def _require_finite_values(lam, score, tt, h):
    """:func:`_require_finite_frame` on eigenvalues (m, k) and scores (m, D)."""
    if math.isfinite(float(np.add.reduce(lam, axis=None)) + float(np.add.reduce(score, axis=None))):
        return      # one reduction each proves every entry finite (an overflowing sum is checked below)
    bad = ~(np.all(np.isfinite(lam), axis=1) & np.all(np.isfinite(score), axis=1))
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

    Notes
    -----
    The frame of :func:`residual` (an EmpiricalDensity at D >= 24, d + 1 <= max(2, D // 12)) computes its eigen-fields on
    first access (a subclass; ``isinstance(fr, Frame)`` holds): then they carry the bits of :func:`frame`.
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


# ----------------------------------------------------------------------------- the residual's partial frame
# ridge.residual needs only the tangent vectors and lambda_d, lambda_{d+1}: the top k = d + 1 eigenpairs (LAPACK
# dsyevr by index, ``density._partial_eigh``). Time against the full batched eigh (one thread, loaded machine,
# 200 matrices): D = 24: 0.50 (k = 1), 0.68 (k = 2), 0.88 (k = 3); D = 32: 0.54, 0.55, 0.89 (k = 3), 0.87 (k = 4);
# D = 48: 0.41 (k = 2), 0.62 (k = 4), 0.79 (k = 6); D = 64: 0.36 (k = 2), 0.51 (k = 4), 0.68 (k = 6); D = 16:
# 0.94 (k = 2). So from D = 24 on with k <= max(2, D // 12): at least ~1/3 of the eigh's time saved
_PARTIAL_MIN_D = 24


def _partial_applies(field, x, d) -> bool:
    D = x.shape[1]
    return isinstance(field, EmpiricalDensity) and D >= _PARTIAL_MIN_D and d + 1 <= max(2, D // 12)


def _top_blocks(C, k):
    """:func:`top_eigh` of a stack on one BLAS thread, in the fixed blocks of ``_eigh_blocks`` on the query
    threads (each matrix alone: the bits do not depend on the blocks or the thread count)."""
    m = C.shape[0]
    with _blas_single():
        if m <= _EIGH_BLOCK or _query_threads() < 2:
            return top_eigh(C, k)
        w = np.empty((m, k))
        v = np.empty((m, C.shape[-1], k))

        def one(sl):
            w[sl], v[sl] = top_eigh(C[sl], k)

        _run_blocks(one, [slice(i, min(m, i + _EIGH_BLOCK)) for i in range(0, m, _EIGH_BLOCK)])
        return w, v


def _residual_partial(field, x, t, d):
    """``(r, beta, eigengap, frame)`` of :func:`rftheory.geometry.ridge.residual` for an EmpiricalDensity
    (validated x, t): from the top d + 1 eigenpairs of the posterior covariance, ``r = |s - V V^T s|`` with V
    the d tangent vectors; beta and the eigengap by the frame's formulas from those eigenvalues. They agree
    with the full frame's to round-off (``tests/test_partial_eigh.py``). ``frame`` is a :class:`_LazyFrame`
    of the same moments: its fields, computed on first access, carry the bits of :func:`_frame_at`."""
    k = d + 1
    if x.shape[0] > _EIGH_BLOCK:   # the blocks' threads decompose their own covariances (as _frame_at)
        with _blas_single():
            mom = field._moments(x, t, cov=True, eigh=k)
        eig = mom._eigh
    else:
        mom, eig = field._moments(x, t, cov=True), None
    mu, vec = _top_blocks(mom.cov, k) if eig is None else eig
    mu, vec = mu[:, ::-1], vec[:, :, ::-1]            # descending: mu[:, j] is mu_{j+1}
    c2 = _a_over_h_power(mom, 2)
    c2 = c2 if math.isfinite(float(np.add.reduce(c2))) else None
    with np.errstate(over="ignore", invalid="ignore"):   # (a/h)^2 mu beyond float64: refused by name below
        lam = _times_a_over_h(mom, mu, 2, c2) - 1.0 / mom.h[:, None]
        gap = _times_a_over_h(mom, mu[:, d - 1] - mu[:, d], 2, c2) if d > 0 else np.full(x.shape[0], np.inf)
    _require_finite_values(lam, mom.score, mom.t, mom.h)
    s = mom.score
    if d:
        V = vec[:, :, :d]
        g = s - np.einsum("mdk,mk->md", V, np.einsum("mdk,md->mk", V, s))
    else:
        g = s
    return _row_norms(g), -lam[:, d], gap, _LazyFrame._of(mom, d)


def _full_frame(src):
    mom, d = src
    return _frame_of_moments(mom, _eigh_blocks(mom.cov), d, False)


_LAZY_LOCK = threading.Lock()


def _lazy_field(name):
    def get(self):
        d = self.__dict__
        full = d.get("_full")
        if full is None:
            # one completion at a time: a second reading thread waits for the first one's result (two eighs
            # at once from user threads meet OpenBLAS's thread contention, see rftheory._blas)
            with _LAZY_LOCK:
                full = d.get("_full")
                if full is None:
                    full = d["_full"] = _full_frame(d.pop("_src"))
        return getattr(full, name)

    def put(self, value):
        if "_src" in self.__dict__:
            get(self)   # complete first: an assignment replaces one field of the full frame
        # (no source: the dataclass __init__, e.g. dataclasses.replace, fills a plain frame field by field)
        setattr(self.__dict__.setdefault("_full", object.__new__(Frame)), name, value)

    return property(get, put, doc=f"``{name}`` of the full frame, computed on first access (see :class:`Frame`).")


class _LazyFrame(Frame):
    """A :class:`Frame` (``ridge.residual``'s) whose eigendecomposition is computed on first access of any of
    its fields but ``score``, ``d`` and ``dH`` (None): then every field carries the bits of :func:`frame` on the
    same input, since the same moments go through the same code. A residual alone never pays for it."""

    eigenvalues = _lazy_field("eigenvalues")
    vectors = _lazy_field("vectors")
    normal = _lazy_field("normal")
    tangent = _lazy_field("tangent")
    beta = _lazy_field("beta")
    eigengap = _lazy_field("eigengap")
    gap_floor = _lazy_field("gap_floor")

    @classmethod
    def _of(cls, mom, d):
        fr = object.__new__(cls)
        fr.__dict__.update(score=mom.score, d=d, dH=None, _src=(mom, d))
        return fr

    def __getstate__(self):   # a pickle holds the full frame, not the moments it comes from
        self.eigenvalues  # noqa: B018 - completes the frame
        return dict(self.__dict__)
