"""Linear-feature denoiser ensembles (V3) and the first-order V-kernel (V4) of [GTV] (docs/theory.md §5).

Model. ``m_hat(x, t) = W phi(x, t)`` predicts the posterior mean ``E[x_0 | x_t = x]`` (data units); the
score is ``s_hat = (a_t m_hat - x)/h_t``. Features are tensor products of 1-D bases (:mod:`.feature_bases`,
re-exported here): Gaussian bumps or Fourier modes, F = F_1 ... F_D F_t features.

Fit (weighted ridge regression, one fit per ensemble member). Draw P triples ``(x_0, t, z)``: ``x_0``
uniform over the training set, ``t ~ U[t_min, t_max]``, ``x_t = a_t x_0 + sqrt(h_t) z``; minimise

    (1/P) sum_p lam_p |x_0p - W phi(x_tp, t_p)|^2 + ridge |W|_F^2,     lam = a_t^2/h_t,

so ``W = B A^{-1}`` with ``A = (1/P) sum lam phi phi^T + ridge I`` and ``B = (1/P) sum lam x_0 phi^T``.
(``lam = a^2/h`` in denoiser units is the standard DSM weight ``h_t`` on the score error.) The fitting lives
in :mod:`rftheory.gtv._fits` (re-exported here). All N fits
are solved at once as a batch of linear systems, in the primal (F x F) when F <= P and in the dual
(P x P, push-through identity ``(A^T A/P + r I)^{-1} A^T = A^T (A A^T/P + r I)^{-1}``) when F > P.

Sampling. ``pf_ode_ensemble`` integrates the PF-ODE of every fit at once with Euler steps on a given
decreasing grid. The denoiser is evaluated exactly at each particle (no grid, no snapping) by contracting
the weight tensor with the 1-D factor bases: cost N M (F_1 ... F_D) per step.

V4 (derivation). Write ``Abar = E[lam phi phi^T] + ridge I`` and ``Wbar = E[lam x_0 phi^T] Abar^{-1}`` for the
population solution and ``r = x_0 - Wbar phi`` for its residual. A fit on P triples perturbs A and B by
sample-mean fluctuations of size P^{-1/2}; to first order in 1/P (the only assumption: the fluctuation of the
feature Gram, a second-order effect, is dropped, which needs F/P << 1)

    dW = (1/P) sum_p [lam_p r_p phi_p^T - E(lam r phi^T)] Abar^{-1}.

With ``k(z, z'') = phi(z)^T Abar^{-1} phi(z'')`` and score units (factor a/h per side) this gives the
**complete first-order form**

    Cov[s_hat(z), s_hat(z')] ~ (a a'/(h h')) (1/P) { E_z''[lam''^2 k(z,z'') k(z'',z') E(r r^T | z'')]
                                                     - M(z) M(z')^T },   M(z) = E_z''[lam'' k(z,z'') r''],

and ``E(r r^T | z'') = Sigma(z'') + b b^T(z'')`` with Sigma the posterior covariance of x_0 and
``b = m(z'') - Wbar phi(z'')`` the features' misfit of the posterior mean (THEORY's
``(1/P){E[lam^2 K (C + b b^T) K] - M M^T}`` with ``C = (a^2/h^2) Sigma`` and score weight lambda = h). The ridge
term makes M non-zero (without it the normal equations give M = 0). ``vkernel_comparison`` returns this as
``sandwich``. The **C-only form** ``(1/P) E[lam^2 k k Sigma]`` (``vkernel``) is its limit for features expressive
enough that b ~ 0 and M ~ 0; for the 6 x 6 Gaussian features of V4 it under-predicts by 2-3x at small t, where
the misfit is worst. Both are asymptotic in F/P: they are reported next to the measured ensemble covariance,
never as exact (verification/checks/v4.py judges the complete form, by quadrature, Richardson-extrapolated
between F/P = 1/256 and 1/64, and reports the C-only one).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._blas import blas_single
from .._checks import RngLike, as_generator, check_positive_int
from .._results import frame as _table, short_repr
from ._bump_sums import default_threads, euler_1d_bumps, horner_applies
from ._fits import _BLOCK_BYTES, FeatureEnsemble, _solve_chunk, fit_ensemble, sample_triples  # noqa: F401
from .bases import FourierModes, GaussianBumps, TensorFeatures, fourier_features, gaussian_features

__all__ = [
    "GaussianBumps",
    "FourierModes",
    "TensorFeatures",
    "gaussian_features",
    "fourier_features",
    "sample_triples",
    "FeatureEnsemble",
    "fit_ensemble",
    "pf_ode_ensemble",
    "ensemble_histograms",
    "VKernelComparison",
    "vkernel_comparison",
]

log = logging.getLogger(__name__)


def pf_ode_ensemble(ens: FeatureEnsemble, grid: ArrayLike, x_init: ArrayLike, progress: bool = False,
                    threads: int | None = None) -> np.ndarray:
    """Euler probability-flow ODE for every fit at once: ``x <- x + dt (beta x + (g^2/2) s_hat_n(x, t))``.

    Parameters
    ----------
    ens : FeatureEnsemble
    grid : array_like, shape (S + 1,)
        Strictly decreasing times (e.g. ``uniform_grid(1, eps, 31)`` for 30 steps).
    x_init : array_like, shape (M, D) or (N, M, D)
        Starts shared by all fits, or per fit.
    progress : bool, default False
    threads : int, optional
        Threads over blocks of particles in D = 1 with Gaussian bumps in x (the exact two-exp bump sums of
        ``rftheory.gtv._bump_sums``); default: the cores available (at most 8). The result is bit-identical
        for any count.

    Returns
    -------
    numpy.ndarray, shape (N, M, D)
        Final particles per fit (length).

    Raises
    ------
    TypeError
        If ens is not a FeatureEnsemble, or threads is not an integer.
    ValueError
        If threads < 1, the grid is not strictly decreasing or x_init has the wrong shape or is not finite.
    """
    if not isinstance(ens, FeatureEnsemble):
        raise TypeError(f"ens must be a FeatureEnsemble; got {type(ens).__name__}")
    nth = default_threads() if threads is None else check_positive_int(threads, "threads")
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or not np.all(np.diff(g) < 0):
        raise ValueError("grid must be a strictly decreasing 1-D array of at least 2 times")
    ens.schedule.check_t(g, "grid")
    x = np.asarray(x_init, dtype=np.float64)
    if x.ndim == 2:
        x = np.broadcast_to(x, (ens.N,) + x.shape)
    if x.ndim != 3 or x.shape[0] != ens.N or x.shape[2] != ens.D:
        raise ValueError(f"x_init must have shape (M, {ens.D}) or ({ens.N}, M, {ens.D}); got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_init contains NaN or inf")
    x = x.copy()
    sched = ens.schedule
    from tqdm.auto import tqdm

    if ens.D == 1 and horner_applies(ens.features.x_bases[0]):  # exact bump sums, two exps per particle
        return euler_1d_bumps(ens, g, x, progress, nth)
    for k in tqdm(range(g.size - 1), disable=not progress, desc="PF-ODE", leave=False):
        t, dt = g[k], g[k] - g[k + 1]
        a, h = float(sched.a(t)), float(sched.h(t))
        beta, g2 = float(sched.beta(t)), float(sched.g2(t))
        s = (a * ens.denoise_particles(x, t) - x) / h
        x += dt * (beta * x + 0.5 * g2 * s)
    return x


def ensemble_histograms(samples: ArrayLike, edges: ArrayLike) -> np.ndarray:
    """Per-fit 1-D densities of samples on fixed bins.

    Parameters
    ----------
    samples : array_like, shape (N, M) or (N, M, 1)
        M samples per fit.
    edges : array_like, shape (B + 1,)
        Bin edges.

    Returns
    -------
    numpy.ndarray, shape (N, B)
        Densities normalised by M (mass outside the edges is not redistributed; 1/length).

    Raises
    ------
    ValueError
        If samples has another shape.
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 3 and s.shape[2] == 1:
        s = s[..., 0]
    if s.ndim != 2:
        raise ValueError(f"samples must have shape (N, M) or (N, M, 1); got {s.shape}")
    edges = np.asarray(edges, dtype=np.float64)
    w = np.diff(edges)
    out = np.stack([np.histogram(row, bins=edges)[0] for row in s]).astype(np.float64)
    return out / (s.shape[1] * w[None, :])


# ----------------------------------------------------------------------------- V4
@dataclass
class VKernelComparison:
    """V4 at test points z_j = (x_j, t_j) for one ensemble (score units, 1/length^2; docs/theory.md §5).

    Attributes
    ----------
    x : numpy.ndarray, shape (J, D)
    t : numpy.ndarray, shape (J,)
        The test points.
    measured : numpy.ndarray, shape (J,)
        Variance over the fits of ``tr`` of the score covariance at each z_j (sample covariance, N-1
        normalisation).
    vkernel : numpy.ndarray, shape (J,)
        The C-only first-order prediction (posterior covariance only; its expressive-feature limit).
    sandwich : numpy.ndarray, shape (J,)
        The complete first-order form (residual second moment, mean term subtracted).
    ratio, ratio_sandwich : float
        ``sum(measured)/sum(vkernel)`` and ``sum(measured)/sum(sandwich)``.
    ratio_se : float
        Approximate standard error of ``ratio`` (delta method over fits).
    F_over_P : float
        Features per training triple.
    note : str
        Says the prediction is only asymptotic in F/P.
    """

    x: np.ndarray
    t: np.ndarray
    measured: np.ndarray
    vkernel: np.ndarray
    sandwich: np.ndarray
    ratio: float
    ratio_sandwich: float
    ratio_se: float
    F_over_P: float
    note: str = ("first-order (asymptotic in F/P) prediction: expect agreement only for F/P << 1; "
                 "at F/P ~ 1/4 and above it underestimates the measured covariance")

    __repr__ = short_repr

    def to_frame(self):
        """One row per test point: x_k, t, measured, vkernel, sandwich.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"x": self.x, "t": self.t, "measured": self.measured, "vkernel": self.vkernel,
                       "sandwich": self.sandwich}, "test_point")


def vkernel_comparison(ens: FeatureEnsemble, x: ArrayLike, t: ArrayLike, Q: int = 200_000, rng: RngLike = None,
                       dens=None) -> VKernelComparison:
    """V4: the first-order predictions of the ensemble's score covariance next to the measured one.

    Computes both the complete first-order form (``sandwich``: proxy covariance plus the best fit's mismatch,
    mean term subtracted) and its C-only limit (``vkernel``), docs/theory.md §5. Population quantities
    (``Abar``, ``Wbar`` and the expectation over z'') are Monte Carlo averages over ``Q`` fresh triples from the
    fitting distribution; their relative error is O(Q^{-1/2}), far below the first-order error at the F/P
    studied when Q >> P. ``Sigma(z'')`` is the exact posterior covariance.

    Parameters
    ----------
    ens : FeatureEnsemble
        At least 3 fits.
    x : array_like, shape (J, D)
        Test points.
    t : float or array_like, shape (J,)
        Test times.
    Q : int, default 200000
        Population draws.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        None draws from a fresh generator.
    dens : EmpiricalDensity, optional
        The training set's density (built if not given).

    Returns
    -------
    VKernelComparison

    Raises
    ------
    TypeError
        If ens is not a FeatureEnsemble.
    ValueError
        If N < 3, Q is not a positive integer, or x has the wrong shape.
    """
    from ..density.empirical import EmpiricalDensity

    if not isinstance(ens, FeatureEnsemble):
        raise TypeError(f"ens must be a FeatureEnsemble; got {type(ens).__name__}")
    if ens.N < 3:
        raise ValueError(f"the ensemble needs N >= 3 fits to measure a covariance; got {ens.N}")
    Q = check_positive_int(Q, "Q")
    rng = as_generator(rng)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != ens.D:
        raise ValueError(f"x must have shape (J, {ens.D}); got {x.shape}")
    sched = ens.schedule
    tt = np.broadcast_to(sched.check_t(t, "t"), x.shape[:1]).astype(np.float64)
    dens = EmpiricalDensity(ens.data, sched) if dens is None else dens
    with blas_single():  # products with F = 36..128 columns: BLAS threads only add synchronisation (issue 19)
        return _vkernel_comparison(ens, x, tt, Q, rng, dens)


def _vkernel_comparison(ens, x, tt, Q, rng, dens):
    sched = ens.schedule
    feats, F, D, r = ens.features, ens.features.F, ens.D, ens.ridge
    # population Gram and cross moments, streamed over blocks of z''
    blk = int(max(1, _BLOCK_BYTES // (8 * 2 * F)))
    A = np.zeros((F, F))
    B = np.zeros((D, F))
    seeds = rng.spawn(int(np.ceil(Q / blk)))
    for k, s in enumerate(seeds):
        q = min(blk, Q - k * blk)
        x0, tq, xq = sample_triples(ens.data, sched, q, ens.t_min, ens.t_max, s)
        lam = sched.a(tq) ** 2 / sched.h(tq)
        ph = feats(xq, tq)
        A += (ph * lam[:, None]).T @ ph
        B += (x0 * lam[:, None]).T @ ph
    A = A / Q + r * np.eye(F)
    B /= Q
    Wbar = np.linalg.solve(A, B.T).T  # A symmetric
    kz = np.linalg.solve(A, feats(x, tt).T)  # (F, J): Abar^{-1} phi(z_j)
    J = x.shape[0]
    VK = np.zeros(J)
    S2 = np.zeros(J)
    M1 = np.zeros((J, D))
    for k, s in enumerate(seeds):  # the same blocks again (same child seeds, same draws)
        q = min(blk, Q - k * blk)
        x0, tq, xq = sample_triples(ens.data, sched, q, ens.t_min, ens.t_max, s)
        lam = sched.a(tq) ** 2 / sched.h(tq)
        ph = feats(xq, tq)
        kk = ph @ kz  # (q, J)
        Sig = dens.posterior_cov(xq, tq)  # (q, D, D)
        trS = np.trace(Sig, axis1=1, axis2=2)
        VK += np.einsum("q,qj->j", lam * lam * trS, kk * kk)
        res = x0 - ph @ Wbar.T
        S2 += np.einsum("q,qj->j", lam * lam * np.einsum("qd,qd->q", res, res), kk * kk)
        M1 += np.einsum("q,qj,qd->jd", lam, kk, res)
    VK /= Q
    S2 /= Q
    M1 /= Q
    a, h = sched.a(tt), sched.h(tt)
    conv = (a / h) ** 2 / ens.P
    vkernel = conv * VK
    sandwich = conv * (S2 - np.einsum("jd,jd->j", M1, M1))
    s_hat = ens.score(x, tt)  # (N, J, D)
    dev = s_hat - s_hat.mean(axis=0, keepdims=True)
    per_fit = np.einsum("njd,njd->nj", dev, dev) * ens.N / (ens.N - 1)  # unbiased per-fit contributions
    measured = per_fit.mean(axis=0)
    tot = per_fit.sum(axis=1)  # (N,) each fit's contribution to the summed variance
    ratio = float(measured.sum() / vkernel.sum())
    ratio_se = float(tot.std(ddof=1) / np.sqrt(ens.N) / vkernel.sum())
    return VKernelComparison(x=x, t=tt, measured=measured, vkernel=vkernel, sandwich=sandwich, ratio=ratio,
                             ratio_sandwich=float(measured.sum() / sandwich.sum()), ratio_se=ratio_se,
                             F_over_P=F / ens.P)
