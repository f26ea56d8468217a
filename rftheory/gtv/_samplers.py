"""[GTV] V2 samplers (split out of :mod:`rftheory.gtv.variance`, which re-exports them): the naive interleaved
estimator, the effective SDE it converges to, and the energy two-sample test that compares them.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator, as_points
from ..density.empirical import EmpiricalDensity
from ..dynamics.sampling import check_grid
from ._proxy import _check_density, proxy_covariance, sample_posterior_index

__all__ = ["naive_sampler", "effective_sde_sampler", "energy_two_sample"]


def _check_kappa(kappa):
    if not (np.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be a finite number >= 0; got {kappa!r}")
    return float(kappa)


def _base_coef(base: str):
    if base == "ode":
        return 0.5
    if base == "sde":
        return 1.0
    raise ValueError(f"base must be 'ode' or 'sde'; got {base!r}")


def naive_sampler(dens: EmpiricalDensity, grid: ArrayLike, x_init: ArrayLike, kappa: float, rng: RngLike,
                  base: str = "ode",
                  return_path: bool = False):
    """V2: Euler sampler whose score at each step is the naive estimator ``s* + sqrt(kappa/dt)(s~ - s*)``.

    At step k (``t = grid[k]``, ``dt = grid[k] - grid[k+1]``): draw ``x_0 ~ w(x, t)`` for every particle,
    ``s~ = (a x_0 - x)/h`` and move ``x <- x + dt (beta x + D s_hat)`` with ``D = c g^2`` (``c = 1/2`` for
    ``base='ode'``, 1 for ``'sde'``, which also adds ``sqrt(g^2 dt) xi``); docs/theory.md §5.

    Parameters
    ----------
    dens : EmpiricalDensity
        The smoothed empirical density.
    grid : array_like, shape (N,)
        Strictly decreasing times.
    x_init : array_like, shape (m, D)
        Particles at ``grid[0]``.
    kappa : float
        Strength of the estimator noise (>= 0; 0 gives the exact Euler sampler of the base dynamics).
    rng : None, int, SeedSequence or numpy.random.Generator
        Source of randomness; None draws from a fresh generator.
    base : {"ode", "sde"}, default "ode"
        Base dynamics: probability-flow ODE or reverse SDE.
    return_path : bool, default False
        Also return every step.

    Returns
    -------
    final : numpy.ndarray, shape (m, D)
        Particles at ``grid[-1]`` (length).
    path : numpy.ndarray, shape (N, m, D)
        Only with ``return_path``.

    Raises
    ------
    ValueError
        If kappa is negative, base is unknown, the grid is not strictly decreasing in the schedule's domain,
        or x_init has the wrong shape.
    """
    g, kappa, c, rng, x, sched = _sampler_inputs(dens, grid, x_init, kappa, base, rng)
    path = [x.copy()] if return_path else None
    for k in range(g.size - 1):
        t, dt = g[k], g[k] - g[k + 1]
        a, h = float(sched.a(t)), float(sched.h(t))
        beta, D = float(sched.beta(t)), c * float(sched.g2(t))
        s = dens.score(x, t)
        if kappa > 0:
            i = sample_posterior_index(dens, x, t, rng)
            s_tilde = (a * dens.data[i] - x) / h
            s = s + np.sqrt(kappa / dt) * (s_tilde - s)
        x = x + dt * (beta * x + D * s)
        if base == "sde":
            x = x + np.sqrt(float(sched.g2(t)) * dt) * rng.standard_normal(x.shape)
        if return_path:
            path.append(x.copy())
    return (x, np.stack(path)) if return_path else x


def _sampler_inputs(dens, grid, x_init, kappa, base, rng):
    """Validated inputs shared by the V2 samplers: grid, kappa, the base's diffusion coefficient c, the
    generator, a copy of the starting points and the schedule."""
    _check_density(dens)
    g = check_grid(grid, dens.schedule)
    return (g, _check_kappa(kappa), _base_coef(base), as_generator(rng),
            as_points(x_init, dens.D, "x_init").copy(), dens.schedule)


def _psd_sqrt_apply(C, xi):
    """``C^{1/2} xi`` for a batch of symmetric PSD matrices (m, D, D) via eigh (negative round-off
    eigenvalues clipped to 0)."""
    lam, V = np.linalg.eigh(C)
    lam = np.sqrt(np.maximum(lam, 0.0))
    return np.einsum("mij,mj->mi", V, lam * np.einsum("mji,mj->mi", V, xi))


def effective_sde_sampler(dens: EmpiricalDensity, grid: ArrayLike, x_init: ArrayLike, kappa: float,
                          rng: RngLike, base: str = "ode",
                          return_path: bool = False):
    """V2: Euler-Maruyama for the effective SDE of the naive estimator (docs/theory.md §5),

        dx = (beta x + D s*) ds + sqrt(kappa) D C(x, t)^{1/2} dW   (+ sqrt(g^2) dW' for base='sde'),

    ``D = g^2/2`` (ode) or ``g^2`` (sde), ``C`` the V1 proxy covariance. The two samplers agree in
    distribution as the grid is refined.

    Parameters
    ----------
    dens : EmpiricalDensity
        The smoothed empirical density.
    grid : array_like, shape (N,)
        Strictly decreasing times.
    x_init : array_like, shape (m, D)
        Particles at ``grid[0]``.
    kappa : float
        Strength of the estimator noise (>= 0; 0 gives the exact Euler sampler of the base dynamics).
    rng : None, int, SeedSequence or numpy.random.Generator
        Source of randomness; None draws from a fresh generator.
    base : {"ode", "sde"}, default "ode"
        Base dynamics: probability-flow ODE or reverse SDE.
    return_path : bool, default False
        Also return every step.

    Returns
    -------
    final : numpy.ndarray, shape (m, D)
        Particles at ``grid[-1]`` (length).
    path : numpy.ndarray, shape (N, m, D)
        Only with ``return_path``.

    Raises
    ------
    ValueError
        If kappa is negative, base is unknown, the grid is not strictly decreasing in the schedule's domain,
        or x_init has the wrong shape.
    """
    g, kappa, c, rng, x, sched = _sampler_inputs(dens, grid, x_init, kappa, base, rng)
    path = [x.copy()] if return_path else None
    for k in range(g.size - 1):
        t, dt = g[k], g[k] - g[k + 1]
        beta, D = float(sched.beta(t)), c * float(sched.g2(t))
        C, s = proxy_covariance(dens, x, t, return_score=True)
        x_new = x + dt * (beta * x + D * s)
        if kappa > 0:
            xi = rng.standard_normal(x.shape)
            x_new = x_new + np.sqrt(kappa * dt) * D * _psd_sqrt_apply(C, xi)
        if base == "sde":
            x_new = x_new + np.sqrt(float(sched.g2(t)) * dt) * rng.standard_normal(x.shape)
        x = x_new
        if return_path:
            path.append(x.copy())
    return (x, np.stack(path)) if return_path else x


# ----------------------------------------------------------------------------- two-sample test
def energy_two_sample(X: ArrayLike, Y: ArrayLike, rng: RngLike, n_perm: int = 200) -> tuple[float, float]:
    """Energy-distance two-sample test (Szekely-Rizzo) with a permutation p-value.

    Parameters
    ----------
    X : array_like, shape (n_x, D)
        First sample.
    Y : array_like, shape (n_y, D)
        Second sample.
    rng : None, int, SeedSequence or numpy.random.Generator
        Permutations; None draws from a fresh generator.
    n_perm : int, default 200
        Number of permutations.

    Returns
    -------
    statistic : float
        ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (length units, V-statistic form).
    p_value : float
        ``(1 + #{perm >= obs}) / (1 + n_perm)``, exact in level for any sample size under exchangeability.

    Raises
    ------
    ValueError
        If X and Y are not 2-D with the same D.
    """
    rng = as_generator(rng)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must be (n, D) and (m, D) with the same D; got {X.shape}, {Y.shape}")
    if X.shape[0] < 2 or Y.shape[0] < 2:
        raise ValueError("X and Y need at least 2 points each")
    if isinstance(n_perm, bool) or int(n_perm) != n_perm or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer; got {n_perm!r}")
    Z = np.vstack([X, Y])
    n, N = X.shape[0], Z.shape[0]
    sq = np.einsum("nd,nd->n", Z, Z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T)
    Dm = np.sqrt(np.maximum(d2, 0.0))
    tot = Dm.sum()

    def stat(mask):
        u = mask.astype(np.float64)
        Du = Dm @ u
        sxx = u @ Du
        sxy = (1.0 - u) @ Du
        syy = tot - sxx - 2.0 * sxy
        m = N - n
        return 2 * sxy / (n * m) - sxx / (n * n) - syy / (m * m)

    base = np.zeros(N, dtype=bool)
    base[:n] = True
    obs = stat(base)
    count = 0
    for _ in range(int(n_perm)):
        perm = rng.permutation(base)
        count += stat(perm) >= obs
    return float(obs), (1.0 + count) / (1.0 + n_perm)
