"""The random-feature model's quadratic loss and its minimisation from the moments U, V (docs/theory.md §4,
R2): ``L(W)``, the closed-form gradient flow over one eigendecomposition of U, and exact full-batch gradient
descent. :mod:`rftheory.rf.model` re-exports every public name here (SGD, which samples the model's features,
stays there).

Training time tau is that of the flow ``dW/dtau = -2 (W U - V)`` (= -D grad L):
``W(tau) = W* + (W0 - W*) e^{-2 tau U}`` (derivations/r2_gradient_flow.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .moments import Moments

__all__ = ["GradientFlow", "gradient_flow", "gd", "loss"]

_EPS = np.finfo(np.float64).eps


def loss(W: ArrayLike, mom: Moments) -> float:
    """The model's loss ``L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0`` (docs/theory.md §4).

    Parameters
    ----------
    W : array_like, shape (D, p)
        Output weights.
    mom : Moments
        U, V, c0 of the model (:meth:`RandomFeatureModel.moments`).

    Returns
    -------
    float
        The loss (units of the regression target squared, times the time weight).
    """
    W = np.asarray(W, dtype=np.float64)
    D = W.shape[0]
    return float((np.einsum("dj,jk,dk->", W, mom.U, W) - 2 * np.sum(mom.V * W)) / D + mom.c0)


def _check_UV(U, V, W0, symmetrize=False):
    """Validated float64 U, V, W0. U must be symmetric up to round-off unless ``symmetrize`` (then
    ``(U + U^T)/2`` is used): a non-symmetric U is not the matrix of a quadratic loss."""
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    W0 = np.asarray(W0, dtype=np.float64)
    if U.ndim != 2 or U.shape[0] != U.shape[1]:
        raise ValueError(f"U must be square (p, p); got {U.shape}")
    p = U.shape[0]
    if V.ndim != 2 or V.shape[1] != p:
        raise ValueError(f"V must have shape (D, {p}); got {V.shape}")
    if W0.shape != V.shape:
        raise ValueError(f"W0 must have shape {V.shape}; got {W0.shape}")
    for name, arr in (("U", U), ("V", V), ("W0", W0)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
    # round-off of a Gram-type matrix summed in two orders: a few p eps |U|; 64 p eps |U| leaves room
    asym = float(np.max(np.abs(U - U.T))) if p else 0.0
    if asym > 64 * p * _EPS * float(np.max(np.abs(U))) and not symmetrize:
        raise ValueError(f"U is not symmetric (max |U - U^T| = {asym:.3g}, beyond round-off); pass "
                         "symmetrize=True to use (U + U^T)/2")
    return 0.5 * (U + U.T), V, W0


@dataclass
class GradientFlow:
    """Closed-form gradient flow over one eigendecomposition ``U = Q diag(mu) Q^T``.

    Eigenvalues ``mu_k <= cutoff`` (default ``p * eps * max(mu)``, see :func:`gradient_flow`) are treated as 0 (their directions are the null
    space: W0 is frozen there, and U^+ omits them). ``W_star = V U^+ + W0 (I - U U^+)``.
    ``predict(tau) = W0 + (W0 - W*) Q diag(expm1(-2 tau mu)) Q^T`` (expm1 keeps small tau accurate);
    ``tau = inf`` returns W* by its own path.

    Attributes
    ----------
    Q : numpy.ndarray, shape (p, p)
        Eigenvectors of U (columns).
    mu : numpy.ndarray, shape (p,)
        Eigenvalues of U, ascending.
    cutoff : float
        Eigenvalues at or below it count as 0.
    W0, W_star : numpy.ndarray, shape (D, p)
        Start and limit ``W(inf)``.
    """

    Q: np.ndarray
    mu: np.ndarray
    cutoff: float
    W0: np.ndarray
    W_star: np.ndarray
    indefinite: bool = False

    @property
    def rank(self) -> int:
        """Number of eigenvalues of U above the cut-off."""
        return int(np.sum(self.mu > self.cutoff))

    def __repr__(self):
        D, p = self.W0.shape
        return (f"GradientFlow(D={D}, p={p}, rank={self.rank}, mu=[{self.mu[0]:.3g} .. {self.mu[-1]:.3g}], "
                f"cutoff={self.cutoff:.3g})")

    def predict(self, tau: float) -> np.ndarray:
        """The weights ``W(tau) = W* + (W0 - W*) e^{-2 tau U}`` (R2).

        Parameters
        ----------
        tau : float or array_like
            Training time(s) >= 0 in the units of the flow ``dW/dtau = -2 (W U - V)``; ``inf`` allowed.

        Returns
        -------
        numpy.ndarray, shape (D, p) for a scalar tau, (len(tau), D, p) for an array

        Raises
        ------
        ValueError
            If any tau is negative or NaN.
        """
        taus = np.asarray(tau, dtype=np.float64)
        if np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("tau must be >= 0 (inf allowed)")
        scalar = taus.ndim == 0
        taus = np.atleast_1d(taus)
        if self.indefinite and np.any(np.isinf(taus)):
            raise ValueError("tau = inf: the flow of an indefinite U diverges (it has no limit W*)")
        mu_eff = self._mu_eff()
        C = (self.W0 - self.W_star) @ self.Q                 # (D, p) in the eigenbasis
        out = np.empty((taus.size,) + self.W0.shape)
        for k, tau in enumerate(taus):
            if np.isinf(tau):
                out[k] = self.W_star
            else:
                out[k] = self.W0 + (C * np.expm1(-2.0 * tau * mu_eff)[None, :]) @ self.Q.T
        return out[0] if scalar else out

    def mode_amplitudes(self, tau: float) -> np.ndarray:
        """Coefficients of ``W(tau) - W*`` on the eigenvectors of U: ``(W0 - W*) q_k e^{-2 tau mu_k}`` (R4).

        Parameters
        ----------
        tau : float
            Training time (>= 0).

        Returns
        -------
        numpy.ndarray, shape (D, p)
            Column k is the amplitude along eigenvector q_k.
        """
        mu_eff = self._mu_eff()
        return ((self.W0 - self.W_star) @ self.Q) * np.exp(-2.0 * float(tau) * mu_eff)[None, :]

    def _mu_eff(self):
        """Eigenvalues with those inside the round-off band [-cutoff, cutoff] set to 0 (negative ones below it
        exist only for an indefinite U, allowed explicitly: their modes grow like e^{2 tau |mu|})."""
        return np.where(np.abs(self.mu) > self.cutoff, self.mu, 0.0)


def gradient_flow(U: ArrayLike, V: ArrayLike, W0: ArrayLike, cutoff: float | None = None, *,
                  allow_indefinite: bool = False, symmetrize: bool = False) -> GradientFlow:
    """R2: the gradient flow of the RF loss in closed form, from one ``eigh`` of U (docs/theory.md §4).

    Parameters
    ----------
    U : array_like, shape (p, p)
        Symmetric positive semi-definite feature second moment (``Moments.U``).
    V : array_like, shape (D, p)
        Target-feature cross moment (``Moments.V``).
    W0 : array_like, shape (D, p)
        Weights at tau = 0.
    cutoff : float, optional
        Eigenvalues of U with ``|mu| <= cutoff`` count as 0 (null space: frozen, left out of U^+). None
        (default) is round-off, ``p * eps * max|mu|``; a number is an absolute eigenvalue in the units of our U.
        [HQT]'s code keeps eigenvalues of its U (= ours / p) above 1/(p 1e4), i.e. ``cutoff=1e-4`` here
        (docs/conventions.md).
    allow_indefinite : bool, default False
        Accept an eigenvalue of U below ``-p eps max|mu|`` (beyond round-off): the flow is then the true one,
        growing like ``e^{2 tau |mu|}`` along those directions, and ``predict(inf)`` raises (no limit).
    symmetrize : bool, default False
        Use ``(U + U^T)/2`` for a U that is not exactly symmetric (refused otherwise).

    Returns
    -------
    GradientFlow
        ``predict(tau)`` gives W(tau) for any tau >= 0 (inf included); ``W_star`` the limit.

    Raises
    ------
    ValueError
        If the shapes disagree, an input is not finite, cutoff is not None or a finite number >= 0, U is not symmetric (without ``symmetrize``) or U is
        indefinite beyond round-off (without ``allow_indefinite``). Every U from
        ``RandomFeatureModel.moments`` is symmetric positive semi-definite.

    Examples
    --------
    >>> import numpy as np
    >>> from rftheory import gradient_flow
    >>> U = np.array([[2.0, 0.0], [0.0, 1.0]]); V = np.array([[2.0, 1.0]])
    >>> gradient_flow(U, V, np.zeros((1, 2))).predict(np.inf)
    array([[1., 1.]])
    """
    U, V, W0 = _check_UV(U, V, W0, symmetrize=symmetrize)
    mu, Q = np.linalg.eigh(U)
    band = U.shape[0] * _EPS * max(float(np.max(np.abs(mu))), 0.0)  # round-off band of the eigenvalues
    indefinite = bool(mu[0] < -band)
    if indefinite and not allow_indefinite:
        raise ValueError(f"U is indefinite (eigenvalue {mu[0]:.3g} < -{band:.3g}, beyond round-off): the "
                         "gradient flow grows without bound along its eigenvector; pass allow_indefinite=True "
                         "to get that flow anyway")
    if cutoff is None:
        cutoff = band
    elif isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.floating, np.integer)) \
            or not (np.isfinite(cutoff) and cutoff >= 0):
        raise ValueError(f"cutoff must be None or a finite number >= 0; got {cutoff!r}")
    cutoff = float(cutoff)
    keep = np.abs(mu) > cutoff
    Qk = Q[:, keep]
    W_star = ((V @ Qk) / mu[keep][None, :]) @ Qk.T + (W0 @ Q[:, ~keep]) @ Q[:, ~keep].T
    return GradientFlow(Q=Q, mu=mu, cutoff=cutoff, W0=W0, W_star=W_star, indefinite=indefinite)


def gd(U: ArrayLike, V: ArrayLike, W0: ArrayLike, eta: float, steps: int, record=None):
    """Exact full-batch gradient descent ``W <- W - 2 eta (W U - V)`` for ``steps`` steps (R2).

    Parameters
    ----------
    U, V, W0 : array_like, shapes (p, p), (D, p), (D, p)
        As :func:`gradient_flow`.
    eta : float
        Step size (finite, > 0).
    steps : int
        Number of steps (>= 0).
    record : iterable of int, optional
        Step counts at which to keep the iterate.

    Returns
    -------
    numpy.ndarray, shape (D, p), or (W_final, dict)
        The final W, or ``(W_final, {k: W_k})`` when ``record`` is given.

    Raises
    ------
    ValueError
        If steps < 0, eta is not finite and positive, the shapes disagree, or the iteration diverges.

    Notes
    -----
    Divergence is reported, not returned: for a symmetric PSD U and ``eta < 1/max eig(U)`` the gradient
    ``G_k = W_k U - V`` obeys ``G_{k+1} = G_k (I - 2 eta U)``, so ``|G_k|_F`` never increases; if it
    doubles (or W stops being finite) the step is unstable and a ValueError names eta and the bound.
    """
    U, V, W0 = _check_UV(U, V, W0)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an integer; got {steps!r}")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got {steps}")
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be finite and > 0; got {eta!r}")
    rec = set(record or ())
    out = {}
    W = W0.copy()
    g0 = None
    for k in range(steps + 1):
        if k in rec:
            out[k] = W.copy()
        if k == steps:
            break
        with np.errstate(over="ignore", invalid="ignore"):   # a diverged norm is inf: refused just below
            G = W @ U - V
            g = float(np.linalg.norm(G))
        g0 = g if g0 is None else g0
        if not np.isfinite(g) or g > 2.0 * g0:
            lam = float(np.linalg.eigvalsh(U)[-1])
            raise ValueError(f"gd diverged: the gradient norm grew from {g0:.3g} to {g:.3g} by step {k}; "
                             f"eta = {eta!r} must be < 1/max eig(U) = {1.0 / lam if lam > 0 else np.inf:.3g}")
        W = W - 2.0 * eta * G
    return (W, out) if record is not None else W
