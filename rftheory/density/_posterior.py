"""The result of the posterior pass, :class:`PosteriorMoments` (split out of :mod:`rftheory.density._streaming`,
which uses it, in session 19), and the pass's finiteness refusals: the library never returns NaN or inf
silently; a result float64 cannot represent is refused with an error naming the query and the time. Shared by
the numpy pass and the compiled one (``_fused_pass``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._results import frame as _table, short_repr


@dataclass
class PosteriorMoments:
    """One streaming pass of the posterior over the training set at m query points (:meth:`EmpiricalDensity.moments`).

    Attributes
    ----------
    t, a, h : numpy.ndarray, shape (m,)
        Time, signal scale, noise variance at each query.
    log_density : numpy.ndarray, shape (m,)
        ``log p_t(x)`` (-inf where p_t(x) underflows float64; ``log_density()`` refuses that).
    mean : numpy.ndarray, shape (m, D)
        Posterior mean ``m_t(x)`` (length).
    score : numpy.ndarray, shape (m, D)
        ``s*(x, t) = (a m - x)/h`` (1/length).
    cov : numpy.ndarray, shape (m, D, D), or None
        Posterior covariance (length^2), if requested.
    nearest : numpy.ndarray of int, shape (m,)
        Index of the training point of largest weight.
    max_weight : numpy.ndarray, shape (m,)
        Its weight.
    third : numpy.ndarray, shape (m, D, D, D), or None
        Posterior third central moment (length^3), if requested.
    """

    t: np.ndarray
    a: np.ndarray
    h: np.ndarray
    log_density: np.ndarray
    mean: np.ndarray
    score: np.ndarray
    cov: np.ndarray | None
    nearest: np.ndarray
    max_weight: np.ndarray
    third: np.ndarray | None = None

    __repr__ = short_repr

    def to_frame(self):
        """One row per query: t, a, h, log_density, nearest, max_weight, mean_k, score_k.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"t": self.t, "a": self.a, "h": self.h, "log_density": self.log_density,
                      "nearest": self.nearest, "max_weight": self.max_weight, "mean": self.mean,
                      "score": self.score}, "query")

    @property
    def hessian(self) -> np.ndarray:
        """(m, D, D) Hessian of log p_t, ``-I/h + (a^2/h^2) cov`` (P1)."""
        if self.cov is None:
            raise ValueError("hessian needs the posterior covariance: call moments(..., cov=True)")
        D = self.cov.shape[-1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # handled below
            c = (self.a * self.a / (self.h * self.h))[:, None, None]
            H = c * self.cov - np.eye(D)[None] / self.h[:, None, None]
        big = ~np.isfinite(c[:, 0, 0])
        if big.any():      # a^2/h^2 overflows below t ~ 1e-154 while (a/h) ((a/h) cov) may be finite
            r = (self.a[big] / self.h[big])[:, None, None]
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float64: refused just below
                H[big] = r * (r * self.cov[big]) - np.eye(D)[None] / self.h[big][:, None, None]
        _require_finite(H.reshape(H.shape[0], -1), "the Hessian", self.t, self.h)
        return H


def _all_finite(values) -> bool:
    """True if every entry is finite: one reduction (a finite sum proves it; an overflowing sum of finite
    values says nothing, and the caller then checks entry by entry)."""
    return math.isfinite(float(np.add.reduce(values, axis=None)))


_H_MIN = 1.0 / np.finfo(np.float64).max   # below it 1/h_t is not a float64


def _require_finite(values, what: str, tt, h, scale=None) -> None:
    """ValueError, naming the first query, if ``values`` (m, ...) holds NaN or inf: float64 cannot represent
    the result at that time for the data's (or the query's) scale. The library never returns them silently."""
    if _all_finite(values):
        return
    bad = ~np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" (data radius {scale:.3g})" if scale is not None else ""
        raise ValueError(f"{what} at t = {tt[i]:.3g} (h_t = {h[i]:.3g}) for query x[{i}] is not representable in "
                         f"float64{where}: t is below what float64 resolves at this scale, or the data or query "
                         f"are too large; use a larger t or rescale the data")


def _refuse_non_finite(lp, score, cov, k3, tt, h, radius) -> None:
    """Refuse by name a pass's result that is not finite (``cov``, ``k3`` None where not computed). ``log p``
    may be -inf where p_t underflows (a query far from the data): log_density() refuses that, while the score
    there is finite and usable; NaN is refused everywhere. A finite total proves every entry finite; else each
    is checked by name. Shared by the numpy pass and the compiled one (``_fused_pass``)."""
    total = float(np.add.reduce(lp)) + float(np.add.reduce(score, axis=None))
    if cov is not None:
        total += float(np.add.reduce(cov, axis=None))
    if k3 is not None:
        total += float(np.add.reduce(k3, axis=None))
    if math.isfinite(total):
        return
    if not _all_finite(lp):
        _require_finite(np.where(lp == -np.inf, 0.0, lp)[:, None], "log p_t", tt, h, radius)
    _require_finite(score, "the score", tt, h, radius)
    if cov is not None:
        _require_finite(cov, "the posterior covariance", tt, h, radius)
    if k3 is not None:
        _require_finite(k3, "the posterior third moment", tt, h, radius)
