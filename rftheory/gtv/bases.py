"""Linear-feature bases of the [GTV] ensembles (docs/theory.md §5): tensor products of 1-D bases, one per coordinate
``x_1 .. x_D`` and one for t (:class:`TensorFeatures`), each Gaussian bumps (:class:`GaussianBumps`) or
Fourier modes (:class:`FourierModes`); F = F_1 ... F_D F_t features. The ensembles that fit them live in
:mod:`rftheory.gtv.ensembles`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GaussianBumps", "FourierModes", "TensorFeatures", "gaussian_features", "fourier_features"]


@dataclass(frozen=True)
class GaussianBumps:
    """Gaussian bumps ``N(u; c_j, w^2)`` at ``n`` centres equally spaced on ``[lo, hi]`` (a 1-D basis).

    The normal pdf: amplitude ``1/(sqrt(2 pi) w)``; width ``w = width_factor * spacing`` (default half the
    spacing). Calling it on u of shape (...) gives (..., n).

    Parameters
    ----------
    n : int
        Number of bumps (>= 2).
    lo, hi : float
        The interval (finite, lo < hi).
    width_factor : float, default 0.5
        Width in units of the spacing (> 0).

    Raises
    ------
    ValueError
        If n < 2, the interval is not finite and increasing, or width_factor <= 0.
    """

    n: int
    lo: float
    hi: float
    width_factor: float = 0.5

    def __post_init__(self):
        if isinstance(self.n, bool) or int(self.n) != self.n or self.n < 2:
            raise ValueError(f"n (number of bumps) must be an integer >= 2; got {self.n!r}")
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"need finite lo < hi; got lo={self.lo!r}, hi={self.hi!r}")
        if not (np.isfinite(self.width_factor) and self.width_factor > 0):
            raise ValueError(f"width_factor must be > 0; got {self.width_factor!r}")

    @property
    def centres(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, int(self.n))

    @property
    def width(self) -> float:
        return self.width_factor * (self.hi - self.lo) / (int(self.n) - 1)

    def __call__(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        w = self.width
        d = (u[..., None] - self.centres) / w
        return np.exp(-0.5 * d * d) / (np.sqrt(2.0 * np.pi) * w)


@dataclass(frozen=True)
class FourierModes:
    """``n`` Fourier modes on ``[lo, hi]``: ``1, cos(w_1 v), sin(w_1 v), cos(w_2 v), ...`` (truncated to n).

    ``v = u - lo``, ``w_k = 2 pi k / period``; the default period is ``2 (hi - lo)`` so that the two ends of the
    interval are not forced to agree (a cosine-sine series on the doubled interval). Calling it on u of shape
    (...) gives (..., n).

    Parameters
    ----------
    n : int
        Number of modes (>= 1).
    lo, hi : float
        The interval (finite, lo < hi).
    period : float, optional
        Period (> 0); default ``2 (hi - lo)``.

    Raises
    ------
    ValueError
        If n < 1, the interval is not finite and increasing, or period <= 0.
    """

    n: int
    lo: float
    hi: float
    period: float | None = None

    def __post_init__(self):
        if isinstance(self.n, bool) or int(self.n) != self.n or self.n < 1:
            raise ValueError(f"n (number of modes) must be an integer >= 1; got {self.n!r}")
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"need finite lo < hi; got lo={self.lo!r}, hi={self.hi!r}")
        if self.period is not None and not (np.isfinite(self.period) and self.period > 0):
            raise ValueError(f"period must be > 0; got {self.period!r}")

    def __call__(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        L = 2.0 * (self.hi - self.lo) if self.period is None else self.period
        j = np.arange(int(self.n))
        k = (j + 1) // 2  # 0, 1, 1, 2, 2, ...
        ph = 2.0 * np.pi * k / L * (u[..., None] - self.lo)
        return np.where(j % 2 == 1, np.cos(ph), np.where(j == 0, 1.0, np.sin(ph)))


class TensorFeatures:
    """``phi(x, t) = b_1(x_1) (x) ... (x) b_D(x_D) (x) b_t(t)``: row-wise Kronecker products, C order, t last.

    Calling it on x (..., D) and t (...) gives (..., F) with F the product of the factors' sizes.

    Parameters
    ----------
    x_bases : sequence of 1-D bases
        One per coordinate (e.g. GaussianBumps), each callable with an attribute ``n``.
    t_basis : 1-D basis
        The basis in t.

    Attributes
    ----------
    D : int
        Dimension.
    F : int
        Number of features.

    Raises
    ------
    ValueError
        If x_bases is empty.
    TypeError
        If a basis is not callable or has no ``n``.
    """

    def __init__(self, x_bases, t_basis):
        x_bases = list(x_bases)
        if not x_bases:
            raise ValueError("x_bases must hold one 1-D basis per coordinate (got none)")
        for b in x_bases + [t_basis]:
            if not callable(b) or not hasattr(b, "n"):
                raise TypeError("each basis must be callable with an attribute n (e.g. GaussianBumps)")
        self.x_bases = x_bases
        self.t_basis = t_basis
        self.D = len(x_bases)
        self.shape = tuple(int(b.n) for b in x_bases) + (int(t_basis.n),)
        self.F = int(np.prod(self.shape))

    def __repr__(self):
        return f"TensorFeatures(shape={self.shape}, F={self.F})"

    def factors(self, x, t):
        """The 1-D factor matrices ``[b_1(x[..., 0]), ..., b_D(x[..., D-1]), b_t(t)]``.

        Parameters
        ----------
        x : array_like, shape (..., D)
        t : array_like, shape (...)

        Returns
        -------
        list of numpy.ndarray
            Shapes (..., n_1), ..., (..., n_D), (..., n_t).
        """
        x = np.asarray(x, dtype=np.float64)
        return [b(x[..., k]) for k, b in enumerate(self.x_bases)] + [self.t_basis(t)]

    def __call__(self, x, t) -> np.ndarray:
        """Features of shape ``x.shape[:-1] + (F,)``; t broadcast against ``x.shape[:-1]``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.D:
            raise ValueError(f"x must have last dimension D = {self.D}; got {x.shape}")
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape[:-1])
        fs = self.factors(x, t)
        out = fs[0]
        for f in fs[1:]:
            out = (out[..., :, None] * f[..., None, :]).reshape(out.shape[:-1] + (-1,))
        return out


def gaussian_features(D: int, n_x: int, n_t: int, x_range=(-1.5, 1.5), t_range=(1e-2, 1.0),
                      width_factor: float = 0.5) -> TensorFeatures:
    """[GTV]'s Gaussian features: ``n_x`` bumps per coordinate on ``x_range``, ``n_t`` on ``t_range``.

    Parameters
    ----------
    D : int
        Dimension.
    n_x : int
        Basis functions per coordinate.
    n_t : int
        Basis functions in t.
    x_range : (float, float), default (-1.5, 1.5)
        Interval of each coordinate.
    t_range : (float, float), default (0.01, 1.0)
        Interval in t.
    width_factor : float, default 0.5
        Bump width in units of the spacing.

    Returns
    -------
    TensorFeatures
        F = n_x^D n_t features.

    Raises
    ------
    ValueError
        As :class:`GaussianBumps`.
    """
    return TensorFeatures([GaussianBumps(n_x, *x_range, width_factor) for _ in range(int(D))],
                          GaussianBumps(n_t, *t_range, width_factor))


def fourier_features(D: int, n_x: int, n_t: int, x_range=(-1.5, 1.5), t_range=(1e-2, 1.0),
                     period_factor: float = 2.0) -> TensorFeatures:
    """Fourier modes in each coordinate and in t (:class:`FourierModes`).

    Parameters
    ----------
    D : int
        Dimension.
    n_x : int
        Basis functions per coordinate.
    n_t : int
        Basis functions in t.
    x_range : (float, float), default (-1.5, 1.5)
        Interval of each coordinate.
    t_range : (float, float), default (0.01, 1.0)
        Interval in t.
    period_factor : float, default 2.0
        Period of the modes as a multiple of each interval's length: 2 (ours: the ends are not forced to
        agree) or 1 ([GTV]'s notebooks, period L; docs/conventions.md).

    Returns
    -------
    TensorFeatures
        F = n_x^D n_t features.

    Raises
    ------
    ValueError
        As :class:`FourierModes`, or for a period_factor that is not finite and positive.
    """
    if not (np.isfinite(period_factor) and period_factor > 0):
        raise ValueError(f"period_factor must be finite and > 0; got {period_factor!r}")
    f = float(period_factor)
    return TensorFeatures([FourierModes(n_x, *x_range, period=f * (x_range[1] - x_range[0])) for _ in range(int(D))],
                          FourierModes(n_t, *t_range, period=f * (t_range[1] - t_range[0])))
