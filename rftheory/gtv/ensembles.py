"""Linear-feature denoiser ensembles (V3) and the first-order V-kernel (V4) of [GTV] (docs/theory.md §5).

Model. ``m_hat(x, t) = W phi(x, t)`` predicts the posterior mean ``E[x_0 | x_t = x]`` (data units); the
score is ``s_hat = (a_t m_hat - x)/h_t``. Features are tensor products of 1-D bases (:mod:`.feature_bases`,
re-exported here): Gaussian bumps or Fourier modes, F = F_1 ... F_D F_t features.

Fit (weighted ridge regression, one fit per ensemble member). Draw P triples ``(x_0, t, z)``: ``x_0``
uniform over the training set, ``t ~ U[t_min, t_max]``, ``x_t = a_t x_0 + sqrt(h_t) z``; minimise

    (1/P) sum_p lam_p |x_0p - W phi(x_tp, t_p)|^2 + ridge |W|_F^2,     lam = a_t^2/h_t,

so ``W = B A^{-1}`` with ``A = (1/P) sum lam phi phi^T + ridge I`` and ``B = (1/P) sum lam x_0 phi^T``.
(``lam = a^2/h`` in denoiser units is the standard DSM weight ``h_t`` on the score error.) All N fits
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
never as exact (verification/checks/v4.py judges the complete form, by quadrature, at F/P = 1/256 and reports
the C-only one).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .._blas import blas_single, run_blocks
from .._checks import RngLike, as_data, as_generator, check_positive_int
from .._results import frame as _table, short_repr
from ._bump_sums import default_threads, euler_1d_bumps, horner_applies
from .bases import FourierModes, GaussianBumps, TensorFeatures, fourier_features, gaussian_features
from ..density.schedules import Schedule, get_schedule

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

_BLOCK_BYTES = 96 * 2**20  # largest temporary (per chunk of fits)


# ----------------------------------------------------------------------------- fitting
def _check_trange(schedule, t_min, t_max):
    if not (np.isfinite(t_min) and np.isfinite(t_max) and 0 < t_min < t_max):
        raise ValueError(f"need 0 < t_min < t_max (finite); got t_min={t_min!r}, t_max={t_max!r}")
    schedule.check_t(np.array([t_min, t_max]), "t_min/t_max")


def sample_triples(data: ArrayLike, schedule, size: int, t_min: float, t_max: float, rng: RngLike):
    """Training triples: ``x_0`` uniform over ``data``, ``t ~ U[t_min, t_max]``, ``x_t = a x_0 + sqrt(h) z``.

    Parameters
    ----------
    data : array_like, shape (n, D)
        Training set.
    schedule : Schedule or str
    t_min, t_max : float
        Time interval inside the schedule's domain.
    size : int or tuple of int
        Batch shape, e.g. ``(N, P)``.
    rng : None, int, SeedSequence or numpy.random.Generator
        None draws from a fresh generator.

    Returns
    -------
    x0 : numpy.ndarray, shape size + (D,)
    t : numpy.ndarray, shape size
    xt : numpy.ndarray, shape size + (D,)

    Raises
    ------
    ValueError
        If the data or the time interval are invalid.
    """
    data = as_data(data, "data")
    schedule = get_schedule(schedule)
    _check_trange(schedule, t_min, t_max)
    rng = as_generator(rng)
    size = (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)
    i = rng.integers(0, data.shape[0], size=size)
    t = rng.uniform(t_min, t_max, size=size)
    a, h = schedule.a(t), schedule.h(t)
    x0 = data[i]
    xt = a[..., None] * x0 + np.sqrt(h)[..., None] * rng.standard_normal(size + (data.shape[1],))
    return x0, t, xt


@dataclass
class FeatureEnsemble:
    """N fitted linear-feature denoisers (V3, :func:`fit_ensemble`); a score field per fit.

    Attributes
    ----------
    features : TensorFeatures
        The feature map psi(x, t) (F features).
    schedule : Schedule
        The forward process.
    W : numpy.ndarray, shape (N, D, F)
        Weights (data units per feature unit).
    P : int
        Training triples per fit.
    ridge, t_min, t_max : float
        As fitted.
    data : numpy.ndarray, shape (n, D)
        The training set.
    info : dict
        Fitting details.
    """

    features: TensorFeatures
    schedule: Schedule
    W: np.ndarray
    P: int
    ridge: float
    t_min: float
    t_max: float
    data: np.ndarray
    info: dict = field(default_factory=dict)

    __repr__ = short_repr

    @property
    def N(self) -> int:
        return self.W.shape[0]

    @property
    def D(self) -> int:
        return self.W.shape[1]

    def denoise(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Every fit's denoiser ``m_hat_n(x, t) = W_n psi(x, t)``.

        Parameters
        ----------
        x : array_like, shape (m, D)
            Points shared by all fits.
        t : float or array_like, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (N, m, D)
            Posterior-mean estimates (length).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (m, {self.D}); got {x.shape}")
        phi = self.features(x, t)
        return np.einsum("mf,ndf->nmd", phi, self.W, optimize=True)

    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Every fit's score ``s_hat_n(x, t) = (a m_hat_n - x)/h``.

        Parameters
        ----------
        x : array_like, shape (m, D)
            Points shared by all fits.
        t : float or array_like, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (N, m, D)
            Scores (1/length).
        """
        x = np.asarray(x, dtype=np.float64)
        tt = np.broadcast_to(self.schedule.check_t(t, "t"), x.shape[:1])
        a, h = self.schedule.a(tt), self.schedule.h(tt)
        return (a[None, :, None] * self.denoise(x, tt) - x[None]) / h[None, :, None]

    def denoise_particles(self, x, t: float) -> np.ndarray:
        """Per-fit particles at one time: contracts the weight tensor with the 1-D factors (exact).

        Parameters
        ----------
        x : array_like, shape (N, M, D)
            M particles per fit.
        t : float
            Time.

        Returns
        -------
        numpy.ndarray, shape (N, M, D)
            ``m_hat_n`` at each fit's own particles (cost N M F_1...F_D).
        """
        fs = self.features.factors(x, np.float64(t))
        bt = fs[-1]
        Wt = (self.W.reshape(self.N, self.D, -1, bt.shape[-1]) @ bt).reshape(
            (self.N, self.D) + self.features.shape[:-1])
        letters = "ijklpqrsuv"[:self.D]
        spec = ",".join(f"nm{c}" for c in letters) + f",nd{letters}->nmd"
        return np.einsum(spec, *fs[:-1], Wt, optimize=True)


def _solve_chunk(phi, lam, y, ridge):
    """Batched weighted ridge: phi (b, P, F), lam (b, P), y (b, P, D) -> W (b, D, F)."""
    b, P, F = phi.shape
    sl = np.sqrt(lam)
    As = phi * sl[..., None]
    if F <= P:  # one GEMM per fit for the weighted Gram (As^T As, As = sqrt(lam) phi)
        AsT = np.swapaxes(As, 1, 2)
        A = AsT @ As
        A /= P
        A[:, np.arange(F), np.arange(F)] += ridge
        B = AsT @ (y * sl[..., None])
        B /= P
        return np.swapaxes(np.linalg.solve(A, B), 1, 2)
    K = As @ np.swapaxes(As, 1, 2) / P
    K[:, np.arange(P), np.arange(P)] += ridge
    c = np.linalg.solve(K, y * sl[..., None]) / P  # (b, P, D)
    return np.einsum("bpf,bpd->bdf", As, c, optimize=True)


_FITS_PER_TASK = 4  # fits per thread task: fixed, so results do not depend on the thread count


def _solve_fits(features, schedule, x0, t, xt, ridge, out):
    """Features and weighted ridge solves of a chunk of fits, in fixed blocks of ``_FITS_PER_TASK`` fits run on
    the query-thread pool (``rftheory._blas.run_blocks``) with BLAS on one thread. Each fit's Gram is one
    small product (P x F by F x P), where OpenBLAS's threads only add synchronisation: on the shared 2-core
    machine two BLAS threads ran the 2048 x 128 Gram at 0.35 GFLOP/s against 18 GFLOP/s on one (issue 19).
    Every fit's arithmetic is the same whichever thread runs it: bit-identical for any thread count."""
    a, h = schedule.a(t), schedule.h(t)
    lam = a * a / h

    def task(k0):
        k1 = min(k0 + _FITS_PER_TASK, out.shape[0])
        out[k0:k1] = _solve_chunk(features(xt[k0:k1], t[k0:k1]), lam[k0:k1], x0[k0:k1], ridge)

    with blas_single():
        run_blocks(task, range(0, out.shape[0], _FITS_PER_TASK))


def fit_ensemble(features: TensorFeatures, data: ArrayLike, schedule, P: int, N: int, t_min: float, t_max: float = 1.0,
                 ridge: float = 0.1, rng: RngLike = None, progress: bool = False) -> FeatureEnsemble:
    """V3: N independent weighted-ridge fits of a linear-feature denoiser, each on its own P triples.

    Weight ``lam = a_t^2/h_t``; the ridge is added to the P-normalised Gram matrix (so its strength does not
    change with P). Vectorised over the ensemble: fits are solved in chunks as batches of linear systems
    (docs/theory.md §5).

    Parameters
    ----------
    features : TensorFeatures
        psi(x, t), F features.
    data : array_like, shape (n, D)
        Training set (D must match the features).
    schedule : Schedule or str
    P : int
        Triples per fit.
    N : int
        Number of fits.
    t_min : float
        Smallest training time.
    t_max : float, default 1.0
        Largest training time.
    ridge : float, default 0.1
        Ridge strength (> 0).
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Draws the triples; None draws from a fresh generator.
    progress : bool, default False

    Returns
    -------
    FeatureEnsemble
        ``W`` (N, D, F) and the settings; a score field per fit.

    Raises
    ------
    TypeError
        If features is not a TensorFeatures, or P, N are not integers.
    ValueError
        If D disagrees, ridge is not positive, or the time interval is invalid.
    """
    if not isinstance(features, TensorFeatures):
        raise TypeError(f"features must be a TensorFeatures; got {type(features).__name__}")
    data = as_data(data, "data")
    if data.shape[1] != features.D:
        raise ValueError(f"data has D = {data.shape[1]} but features expect D = {features.D}")
    schedule = get_schedule(schedule)
    P, N = check_positive_int(P, "P"), check_positive_int(N, "N")
    if not (np.isfinite(ridge) and ridge > 0):
        raise ValueError(f"ridge must be a positive finite number; got {ridge!r}")
    rng = as_generator(rng)
    _check_trange(schedule, t_min, t_max)
    F, D = features.F, features.D
    per_fit = 8 * (P * F + min(F, P) ** 2 + P * D) * 2
    chunk = int(max(1, min(N, _BLOCK_BYTES // per_fit)))
    W = np.empty((N, D, F))
    from tqdm.auto import tqdm

    for n0 in tqdm(range(0, N, chunk), disable=not progress, desc=f"fit P={P}", leave=False):
        b = min(chunk, N - n0)
        x0, t, xt = sample_triples(data, schedule, (b, P), t_min, t_max, rng)
        _solve_fits(features, schedule, x0, t, xt, float(ridge), W[n0:n0 + b])
    return FeatureEnsemble(features=features, schedule=schedule, W=W, P=P, ridge=float(ridge),
                           t_min=float(t_min), t_max=float(t_max), data=data)


# ----------------------------------------------------------------------------- sampling
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
