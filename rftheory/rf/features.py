"""Activations with their Gaussian moments (docs/theory.md §4, R1); the Fourier time embedding is in
:mod:`rftheory.rf.embedding` (re-exported here).

For ``u ~ N(mu_u, s_u^2)``, ``v ~ N(mu_v, s_v^2)`` with correlation ``rho`` every activation gives

    mean(mu, s)                       E[sigma(u)]
    second(mu, s)                     E[sigma(u)^2]
    pair(mu_u, s_u, mu_v, s_v, rho)   E[sigma(u) sigma(v)]
    pair_kernel(rho)                  the same for fixed per-pair correlations, constants hoisted

ReLU: closed forms in :mod:`rftheory.rf._bvn` (bivariate normal CDF, ``relu_pair_std``) and the hoisted
``relu_pair_kernel`` (:mod:`rftheory.rf._relu_pair_kernel`), re-exported here.

cos: ``E[cos u] = cos(mu) e^{-s^2/2}``; pairs by the sum formula. erf: ``E[erf u] = erf(mu/sqrt(1 + 2 s^2))``;
pairs exactly through Phi2 (``erf(u) = 2 P(xi < sqrt2 u) - 1`` with an independent standard normal xi),
with the 1-D Gauss-Hermite reduction of docs/theory.md §4 available as ``erf_pair_gh`` (a cross-check).
tanh (and any callable): Gauss-Hermite quadrature behind the same interface (``n_quad`` nodes per
dimension); its error is estimated by comparing with twice the nodes.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf

from ._bvn import (_check_rho, bvn_cdf, norm_cdf, norm_pdf, relu_g,  # noqa: F401 (re-exports)
                   relu_pair_std, relu_second_std)
from ._relu_pair_kernel import relu_pair_kernel  # noqa: F401 (re-export)
from .embedding import EMBEDDING_ORDERS, fourier_embedding  # noqa: F401 (re-exports: the public path before)

__all__ = [
    "Activation",
    "ReLU",
    "Cos",
    "Erf",
    "GaussHermiteActivation",
    "get_activation",
    "ACTIVATIONS",
    "norm_cdf",
    "norm_pdf",
    "bvn_cdf",
    "relu_g",
    "relu_second_std",
    "relu_pair_std",
    "relu_pair_kernel",
    "erf_pair_gh",
    "fourier_embedding",
    "EMBEDDING_ORDERS",
]

_SQ2 = np.sqrt(2.0)


# ----------------------------------------------------------------------------- activations
def _mss(mu, s, name="s"):
    mu = np.asarray(mu, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if np.any(~(s > 0)) or not np.all(np.isfinite(s)):
        raise ValueError(f"{name} (standard deviation) must be finite and > 0")
    if not np.all(np.isfinite(mu)):
        raise ValueError("mu (mean) must be finite")
    return mu, s


class Activation:
    """Base class: an elementwise nonlinearity sigma with its Gaussian moments (R1, docs/theory.md §4).

    Subclasses (``ReLU``, ``Cos``, ``Erf``: closed forms; ``GaussHermiteActivation``: quadrature) implement
    ``__call__``, ``mean``, ``pair`` and ``mean_deriv``; all broadcast over their arguments.

    Attributes
    ----------
    name : str
        The name ``get_activation`` knows it by.
    """

    name = "activation"

    def __call__(self, u):
        raise NotImplementedError

    def mean(self, mu, s):
        """``E[sigma(u)]`` for ``u ~ N(mu, s^2)``.

        Parameters
        ----------
        mu : array_like
            Means of the pre-activation u.
        s : array_like
            Standard deviations (> 0), broadcast against mu.

        Returns
        -------
        numpy.ndarray
            Broadcast shape of mu and s.

        Raises
        ------
        ValueError
            If a standard deviation is not finite and positive, or a mean is not finite.
        """
        raise NotImplementedError

    def second(self, mu, s):
        """``E[sigma(u)^2]`` for ``u ~ N(mu, s^2)``.

        Parameters
        ----------
        mu : array_like
            Means of the pre-activation u.
        s : array_like
            Standard deviations (> 0), broadcast against mu.

        Returns
        -------
        numpy.ndarray
            Broadcast shape of mu and s.

        Raises
        ------
        ValueError
            If a standard deviation is not finite and positive, or a mean is not finite.
        """
        return self.pair(mu, s, mu, s, 1.0)

    def mean_deriv(self, mu, s):
        """``E[sigma'(u)]`` (Stein: ``E[z sigma(mu + s z)] = s E[sigma'(u)]``); used by the direct-score V.

        Parameters
        ----------
        mu : array_like
            Means of the pre-activation u.
        s : array_like
            Standard deviations (> 0), broadcast against mu.

        Returns
        -------
        numpy.ndarray
            Broadcast shape of mu and s.

        Raises
        ------
        ValueError
            If a standard deviation is not finite and positive, or a mean is not finite.
        """
        raise NotImplementedError

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        """``E[sigma(u) sigma(v)]`` for jointly normal u, v.

        Parameters
        ----------
        mu_u, s_u, mu_v, s_v : array_like
            Means and standard deviations (> 0) of u and v.
        rho : array_like
            Their correlation, in [-1, 1].

        Returns
        -------
        numpy.ndarray
            Broadcast shape of the arguments.

        Raises
        ------
        ValueError
            If a standard deviation is not finite and positive, or rho is outside [-1, 1].
        """
        raise NotImplementedError

    def pair_kernel(self, rho):
        """The pair moment for fixed per-pair correlations, with constants hoisted out of a loop.

        Parameters
        ----------
        rho : array_like, shape (P,)
            Correlations in [-1, 1].

        Returns
        -------
        callable
            ``(mu_u, s_u, mu_v, s_v) -> E[sigma(u) sigma(v)]``, shape (..., P).
        """
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        return lambda mu_u, s_u, mu_v, s_v: self.pair(mu_u, s_u, mu_v, s_v, rho)

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """``max(u, 0)``: closed forms (derivations/r1_moments.py)."""

    name = "relu"

    def __call__(self, u):
        return np.maximum(np.asarray(u, dtype=np.float64), 0.0)

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return s * relu_g(mu / s)

    def second(self, mu, s):
        mu, s = _mss(mu, s)
        return s * s * relu_second_std(mu / s)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        return s_u * s_v * relu_pair_std(mu_u / s_u, mu_v / s_v, rho)

    def pair_kernel(self, rho):
        return relu_pair_kernel(rho)

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        return norm_cdf(mu / s)


class Cos(Activation):
    """``cos u``: ``E[cos u] = cos(mu) exp(-s^2/2)``; pairs by ``cos u cos v = (cos(u-v) + cos(u+v))/2``."""

    name = "cos"

    def __call__(self, u):
        return np.cos(np.asarray(u, dtype=np.float64))

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return np.cos(mu) * np.exp(-0.5 * s * s)

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        return -np.sin(mu) * np.exp(-0.5 * s * s)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        var_m = (s_u - s_v) ** 2 + 2 * (1 - rho) * s_u * s_v   # Var(u - v)
        var_p = np.where(rho < 0, (s_u - s_v) ** 2 + 2 * (1 + rho) * s_u * s_v,   # Var(u + v)
                         s_u**2 + s_v**2 + 2 * rho * s_u * s_v)
        return 0.5 * (np.cos(mu_u - mu_v) * np.exp(-0.5 * var_m) + np.cos(mu_u + mu_v) * np.exp(-0.5 * var_p))


class Erf(Activation):
    """``erf u``: ``E[erf u] = erf(mu / sqrt(1 + 2 s^2))``; pairs exactly through the bivariate normal CDF:
    ``E[erf u erf v] = 4 Phi2(a_u, a_v; rho') - 2 Phi(a_u) - 2 Phi(a_v) + 1`` with
    ``a = sqrt2 mu / sqrt(1 + 2 s^2)`` and ``rho' = 2 rho s_u s_v / sqrt((1 + 2 s_u^2)(1 + 2 s_v^2))``."""

    name = "erf"

    def __call__(self, u):
        return erf(np.asarray(u, dtype=np.float64))

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return erf(mu / np.sqrt(1 + 2 * s * s))

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        q = 1 + 2 * s * s
        return 2 / np.sqrt(np.pi) * np.exp(-mu * mu / q) / np.sqrt(q)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        qu, qv = np.sqrt(1 + 2 * s_u * s_u), np.sqrt(1 + 2 * s_v * s_v)
        au, av = _SQ2 * mu_u / qu, _SQ2 * mu_v / qv
        rp = 2 * rho * s_u * s_v / (qu * qv)
        return 4 * bvn_cdf(au, av, rp) - 2 * norm_cdf(au) - 2 * norm_cdf(av) + 1


def erf_pair_gh(mu_u, s_u, mu_v, s_v, rho, n: int = 80):
    """``E[erf u erf v]`` by a 1-D Gauss-Hermite reduction (a cross-check of ``Erf.pair``; docs/theory.md §4).

    Conditioning on x (``u = mu_u + s_u x``), ``E[erf v | x] = erf((mu_v + s_v rho x) / sqrt(1 + 2 s_v^2 (1 - rho^2)))``.

    Parameters
    ----------
    mu_u, s_u, mu_v, s_v : array_like
        Means and standard deviations (> 0) of u and v.
    rho : array_like
        Their correlation, in [-1, 1].
    n : int, default 80
        Gauss-Hermite nodes in x.

    Returns
    -------
    numpy.ndarray
        Broadcast shape of the arguments.
    """
    xg, wg = np.polynomial.hermite_e.hermegauss(n)
    wg = wg / np.sqrt(2 * np.pi)
    mu_u, s_u, mu_v, s_v, rho = (np.asarray(v, dtype=np.float64)[..., None]
                                 for v in np.broadcast_arrays(mu_u, s_u, mu_v, s_v, rho))
    val = erf(mu_u + s_u * xg) * erf((mu_v + s_v * rho * xg) / np.sqrt(1 + 2 * s_v**2 * (1 - rho**2)))
    return val @ wg


class GaussHermiteActivation(Activation):
    """Any elementwise callable: moments by Gauss-Hermite quadrature (``n_quad`` nodes per dimension).

    Pairs use the tensor rule on ``(x, rho x + sqrt(1-rho^2) y)``. The quadrature error is not zero: for tanh it
    decays like exp(-c sqrt(n)) with c shrinking as s grows (poles at +-i pi/2); :meth:`error_estimate`
    compares n with 2n nodes.

    Parameters
    ----------
    fn : callable
        The activation, elementwise on arrays.
    name : str, default "custom"
        Its name.
    n_quad : int, default 48
        Nodes per dimension.
    """

    def __init__(self, fn, name: str = "custom", n_quad: int = 48):
        if not callable(fn):
            raise TypeError("fn must be callable")
        if isinstance(n_quad, bool) or int(n_quad) != n_quad or n_quad < 2:
            raise ValueError(f"n_quad must be an integer >= 2; got {n_quad!r}")
        self.fn = fn
        self.name = name
        self.n_quad = int(n_quad)

    def __call__(self, u):
        return self.fn(np.asarray(u, dtype=np.float64))

    def _nodes(self, n):
        x, w = np.polynomial.hermite_e.hermegauss(n)
        return x, w / np.sqrt(2 * np.pi)

    def mean(self, mu, s, n=None):
        mu, s = _mss(mu, s)
        x, w = self._nodes(n or self.n_quad)
        return self.fn(mu[..., None] + s[..., None] * x) @ w

    def mean_deriv(self, mu, s, n=None):
        mu, s = _mss(mu, s)
        x, w = self._nodes(n or self.n_quad)
        return (self.fn(mu[..., None] + s[..., None] * x) @ (w * x)) / s

    def pair(self, mu_u, s_u, mu_v, s_v, rho, n=None):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        x, w = self._nodes(n or self.n_quad)
        r = np.sqrt(np.maximum(0.0, (1 - rho) * (1 + rho)))
        fu = self.fn(mu_u[..., None] + s_u[..., None] * x)                                   # (..., n)
        yv = rho[..., None, None] * x[:, None] + r[..., None, None] * x[None, :]             # (..., n, n)
        fv = self.fn(mu_v[..., None, None] + s_v[..., None, None] * yv)
        return np.einsum("...i,...ij,i,j->...", fu, fv, w, w)

    def error_estimate(self, mu_u, s_u, mu_v, s_v, rho):
        """``|pair(n) - pair(2n)|``: the a-posteriori error of the n-node rule.

        Parameters
        ----------
        mu_u, s_u, mu_v, s_v : array_like
            Means and standard deviations (> 0) of u and v.
        rho : array_like
            Their correlation, in [-1, 1].

        Returns
        -------
        numpy.ndarray
            Broadcast shape of the arguments.
        """
        return np.abs(self.pair(mu_u, s_u, mu_v, s_v, rho)
                      - self.pair(mu_u, s_u, mu_v, s_v, rho, n=2 * self.n_quad))


ACTIVATIONS = ("relu", "erf", "cos", "tanh")


def get_activation(activation) -> Activation:
    """An Activation from its name or an instance.

    Parameters
    ----------
    activation : str or Activation
        ``"relu"``, ``"erf"``, ``"cos"``, ``"tanh"`` (``ACTIVATIONS``), or an Activation, returned as is.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        For an unknown name or another type.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.lower()
        if key == "relu":
            return ReLU()
        if key == "cos":
            return Cos()
        if key == "erf":
            return Erf()
        if key == "tanh":
            return GaussHermiteActivation(np.tanh, name="tanh")
    raise ValueError(f"activation must be one of {ACTIVATIONS} or an Activation; got {activation!r}")
