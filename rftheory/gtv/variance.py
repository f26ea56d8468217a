"""Generalization through variance [GTV] (docs/theory.md §5): the proxy-score covariance and the naive estimator.

V1  The DSM target is the proxy score ``s~ = (a_t x_0 - x)/h_t`` with ``x_0 ~ w(x, t)`` (the posterior
    weights). Its posterior mean is the score ``s*`` and its posterior covariance is

        C(x, t) = Cov[s~ | x] = (a_t^2/h_t^2) Sigma_t(x) = H_t(x) + I/h_t

    (derivations/v1_proxy_covariance.py; the same identity as P1). The relative variance map
    ``tr C / (tr C + |s*|^2)`` = ``tr C / E[|s~|^2 | x]`` lies in [0, 1].

V2  The naive interleaved estimator replaces the score in an Euler step of size dt by
    ``s* + sqrt(kappa/dt) (s~ - s*)`` with a fresh ``x_0 ~ w(x, t)`` each step. The added increment
    ``dt D_t sqrt(kappa/dt) (s~ - s*)`` has mean 0 and covariance ``kappa dt D_t C D_t``, so as dt -> 0 the
    sampler converges in distribution to the SDE with the extra state-dependent diffusion ``kappa D_t C D_t``
    (derivations/v2_naive_estimator.py). ``D_t = g_t^2/2`` when the base sampler is the PF-ODE and ``g_t^2``
    for the reverse SDE. Both samplers are here, driven by the same grid and Generator, so they can be
    compared with a two-sample test (``ks_two_sample``, ``energy_two_sample``).

The linear-feature ensembles (V3) and the V-kernel (V4) live in ``rftheory.gtv.ensembles``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator, as_points
from .._results import frame as _table, short_repr
from ..density.empirical import EmpiricalDensity
from ..dynamics.sampling import check_grid

__all__ = [
    "proxy_covariance",
    "relative_variance",
    "relative_variance_map",
    "RelativeVarianceMap",
    "sample_posterior_index",
    "naive_sampler",
    "effective_sde_sampler",
    "energy_two_sample",
]

log = logging.getLogger(__name__)


def _check_density(dens):
    if not isinstance(dens, EmpiricalDensity):
        raise TypeError(f"dens must be an EmpiricalDensity; got {type(dens).__name__}")
    return dens


# ----------------------------------------------------------------------------- V1
def proxy_covariance(dens: EmpiricalDensity, x: ArrayLike, t: ArrayLike, return_score: bool = False):
    """V1: the proxy score's posterior covariance ``C = Cov[s~ | x_t = x] = (a_t^2/h_t^2) Sigma_t(x)``.

    Equal to ``H_t(x) + I/h_t`` (derivations/v1_proxy_covariance.py; docs/theory.md §5), computed from the
    posterior covariance directly (no cancellation of the ``1/h`` terms).

    Parameters
    ----------
    dens : EmpiricalDensity
        The smoothed empirical density.
    x : array_like, shape (m, D) or (D,)
        Query points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the schedule's domain.
    return_score : bool, default False
        Also return the score ``s*`` from the same streaming pass.

    Returns
    -------
    C : numpy.ndarray, shape (m, D, D)
        Symmetric positive semi-definite covariances (1/length^2); always batched.
    score : numpy.ndarray, shape (m, D)
        The exact score (1/length), only with ``return_score``.

    Raises
    ------
    TypeError
        If ``dens`` is not an EmpiricalDensity.
    ValueError
        If x has the wrong shape or is not finite, or t is outside the schedule's domain.
    """
    _check_density(dens)
    mom = dens.moments(x, t, cov=True)
    C = ((mom.a * mom.a) / (mom.h * mom.h))[:, None, None] * mom.cov
    return (C, mom.score) if return_score else C


def relative_variance(dens: EmpiricalDensity, x: ArrayLike, t: ArrayLike) -> np.ndarray:
    """V1: the relative variance ``tr C / (tr C + |s*|^2)`` of the proxy target, in [0, 1].

    ``tr C + |s*|^2 = E[|s~|^2 | x]``, so this is the fraction of the proxy target's second moment that is
    noise. ``tr C`` is a sum of non-negative terms up to round-off and is clipped at 0 so that round-off
    cannot leave [0, 1]. Where both terms vanish (one training point, x = a_t x_1) the value is 0.

    Parameters
    ----------
    dens : EmpiricalDensity
        The smoothed empirical density.
    x : array_like, shape (m, D) or (D,)
        Query points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the schedule's domain.

    Returns
    -------
    numpy.ndarray, shape (m,)
        Dimensionless values in [0, 1].

    Raises
    ------
    TypeError
        If ``dens`` is not an EmpiricalDensity.
    ValueError
        If x has the wrong shape or is not finite, or t is outside the schedule's domain.
    """
    C, s = proxy_covariance(dens, x, t, return_score=True)
    trC = np.maximum(np.trace(C, axis1=1, axis2=2), 0.0)
    s2 = np.einsum("md,md->m", s, s)
    den = trC + s2
    out = np.zeros_like(trC)
    pos = den > 0
    out[pos] = trC[pos] / den[pos]
    return np.clip(out, 0.0, 1.0)


@dataclass
class RelativeVarianceMap:
    """Relative variance on a square grid (:func:`relative_variance_map`).

    Attributes
    ----------
    x1, x2 : numpy.ndarray, shape (g,)
        Grid coordinates (length).
    times : numpy.ndarray, shape (k,)
    values : numpy.ndarray, shape (k, g, g)
        ``values[i, r, c]`` at ``(x1[c], x2[r])`` (image order; dimensionless, in [0, 1]).
    """

    x1: np.ndarray
    x2: np.ndarray
    times: np.ndarray
    values: np.ndarray

    __repr__ = short_repr

    def to_frame(self):
        """Long format, one row per (time, grid point): time, x1, x2, value.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        k, g2, g1 = self.values.shape
        X1, X2 = np.meshgrid(self.x1, self.x2)  # image order: values[i, r, c] at (x1[c], x2[r])
        return _table({"time": np.repeat(self.times, g1 * g2), "x1": np.tile(X1.ravel(), k),
                       "x2": np.tile(X2.ravel(), k), "value": self.values.reshape(-1)})


def relative_variance_map(dens: EmpiricalDensity, times: ArrayLike, lim: float = 2.0, n_grid: int = 100
                          ) -> RelativeVarianceMap:
    """The [GTV] Fig. 1 map for 2-D data: relative variance on a square grid at each time.

    Parameters
    ----------
    dens : EmpiricalDensity
        A density of 2-D data.
    times : array_like, shape (k,)
        Times in the schedule's domain.
    lim : float, default 2.0
        The grid covers ``[-lim, lim]^2`` (length).
    n_grid : int, default 100
        Points per axis.

    Returns
    -------
    RelativeVarianceMap
        ``x1``, ``x2`` (n_grid,), ``times`` (k,), ``values`` (k, n_grid, n_grid) in image order;
        ``to_frame()`` gives a long table.

    Raises
    ------
    ValueError
        If the data are not 2-D or a time is outside the schedule's domain.
    """
    _check_density(dens)
    if dens.D != 2:
        raise ValueError(f"dens must hold 2-D data for a map; got D = {dens.D}")
    if not (np.isfinite(lim) and lim > 0):
        raise ValueError(f"lim must be a positive finite number; got {lim!r}")
    if isinstance(n_grid, bool) or int(n_grid) != n_grid or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2; got {n_grid!r}")
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    dens.schedule.check_t(times, "times")
    g = np.linspace(-lim, lim, int(n_grid))
    X1, X2 = np.meshgrid(g, g)
    pts = np.column_stack([X1.ravel(), X2.ravel()])
    vals = np.stack([relative_variance(dens, pts, t).reshape(X1.shape) for t in times])
    return RelativeVarianceMap(x1=g, x2=g.copy(), times=times, values=vals)


# ----------------------------------------------------------------------------- V2
def sample_posterior_index(dens: EmpiricalDensity, x: ArrayLike, t: ArrayLike, rng: RngLike,
                           chunk_size: int = 4096) -> np.ndarray:
    """One draw ``i ~ w(x, t)`` of a training-point index per query.

    Gumbel-max on the logits ``(a x'.x_i - a^2 |x_i|^2/2)/h`` (centred coordinates, the common
    ``-|x'|^2/(2h)`` dropped): ``argmax_i(l_i + G_i)`` with i.i.d. standard Gumbel G is exactly
    softmax-distributed and never exponentiates a logit (no overflow). Streams over chunks of the training set
    with a running argmax.

    Parameters
    ----------
    dens : EmpiricalDensity
        The smoothed empirical density.
    x : array_like, shape (m, D) or (D,)
        Query points (finite).
    t : float or array_like, shape (m,)
        Time(s) in the schedule's domain.
    rng : None, int, SeedSequence or numpy.random.Generator
        Source of the Gumbel noise; None draws from a fresh generator.
    chunk_size : int, default 4096
        Training points per chunk.

    Returns
    -------
    numpy.ndarray of int, shape (m,)
        Indices into ``dens.data``.

    Raises
    ------
    TypeError
        If ``dens`` is not an EmpiricalDensity.
    ValueError
        If x has the wrong shape or is not finite, or t is outside the schedule's domain.
    """
    _check_density(dens)
    rng = as_generator(rng)
    x = as_points(x, dens.D, "x")
    m = x.shape[0]
    tt = dens.schedule.check_t(t, "t")
    tt = np.broadcast_to(tt, (m,)).astype(np.float64)
    a, h = dens.schedule._a(tt), dens.schedule._h(tt)
    Xc = dens.data - dens.center
    xq = x - a[:, None] * dens.center[None, :]
    best = np.full(m, -np.inf)
    idx = np.zeros(m, dtype=np.int64)
    for n0 in range(0, dens.n, chunk_size):
        Xb = Xc[n0:n0 + chunk_size]
        sq = np.einsum("nd,nd->n", Xb, Xb)
        lt = (xq @ Xb.T) * (a / h)[:, None] - np.outer(0.5 * a * a / h, sq)
        lt += rng.gumbel(size=lt.shape)
        j = np.argmax(lt, axis=1)
        v = lt[np.arange(m), j]
        better = v > best
        idx = np.where(better, n0 + j, idx)
        best = np.where(better, v, best)
    return idx


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
