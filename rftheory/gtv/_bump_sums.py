"""Exact sums of equally spaced Gaussian bumps at many points, ``f_n(x) = sum_i C_ni b_i(x)``, with two exps
per point instead of one per bump (used by :func:`rftheory.gtv.ensembles.pf_ode_ensemble` in D = 1).

With centres ``c_i = c_mid + (i - h) s`` (``h = (n - 1)/2``), width ``w`` and ``kappa = s/w``, put
``u = (x - c_mid)/w``. Then ``-(u - (i - h) kappa)^2/2 = -u^2/2 - h kappa u + i kappa u - (i - h)^2 kappa^2/2``, so

    f(x) = A exp(-u^2/2 - h kappa u) * sum_i c_i Q^i,    Q = exp(kappa u),  c_i = C_i exp(-(i - h)^2 kappa^2/2),

a polynomial in Q evaluated by Horner's rule (backward stable: the computed sum is ``sum_i c_i (1 + d_i) Q^i``
with ``|d_i| <= 2 n eps``, so its error is bounded by round-off on the sum of the absolute contributions, as
for the direct sum). Nothing is truncated or snapped to a grid. The only extra error is that of representing
``exp(kappa u)`` and the prefactor for ``|u|`` away from the middle: relative ``~ eps (n kappa |u| + u^2/2)``,
at most ~ 2e-13 under the bound below. Points where the exponents could leave the normal float64 range
(``u^2/2 + h kappa |u| > _EXP_LIMIT``) take the direct sum (one exp per bump), so the result never overflows.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .bases import GaussianBumps

_EXP_LIMIT = 600.0  # largest |exponent| allowed in the Horner form (exp(600) ~ 4e260, far from overflow)
_CHUNK = 1 << 15  # points per block (keeps the Horner passes in cache)


def horner_applies(basis) -> bool:
    """True if ``basis`` is a GaussianBumps whose Horner coefficients stay in the normal float64 range."""
    if type(basis) is not GaussianBumps:
        return False
    n = int(basis.n)
    kappa = 1.0 / basis.width_factor
    h = 0.5 * (n - 1)
    # the coefficient factors exp(-(i - h)^2 kappa^2 / 2) and the prefactor at u < 0 must stay normal
    return 0.5 * h * h * kappa * kappa <= _EXP_LIMIT / 2


def bump_sums(basis: GaussianBumps, x: np.ndarray, C: np.ndarray, threads: int = 1) -> np.ndarray:
    """``f[n, m] = sum_i C[n, i] basis(x[n, m])_i`` exactly (to round-off), without forming the bumps.

    Parameters
    ----------
    basis : GaussianBumps
        The 1-D basis (``horner_applies(basis)`` must hold).
    x : numpy.ndarray, shape (N, M)
        Points, per row.
    C : numpy.ndarray, shape (N, n)
        Coefficients per row.
    threads : int, default 1
        Python threads over blocks of columns (same bits for any count).

    Returns
    -------
    numpy.ndarray, shape (N, M)
    """
    n = int(basis.n)
    s = (basis.hi - basis.lo) / (n - 1)
    w = basis.width
    kappa = s / w
    h = 0.5 * (n - 1)
    c_mid = basis.lo + h * s
    amp = 1.0 / (np.sqrt(2.0 * np.pi) * w)
    ip = np.arange(n) - h
    c = C * (amp * np.exp(-0.5 * kappa * kappa * ip * ip))[None, :]  # (N, n)
    N, M = x.shape
    out = np.empty((N, M))
    u_lim = -h * kappa + np.sqrt(h * h * kappa * kappa + 2.0 * _EXP_LIMIT)  # root of u^2/2 + h kappa u = LIMIT
    step = max(1, _CHUNK // max(N, 1))

    def block(m0):  # columns m0 : m0 + step; blocks are independent, so the result never depends on threads
        xb = x[:, m0:m0 + step]
        u = (xb - c_mid) / w
        any_far = bool(u.min() < -u_lim or u.max() > u_lim)
        if any_far:
            far = np.abs(u) > u_lim
            u = np.clip(u, -u_lim, u_lim)  # placeholders, replaced below by the direct sum
        Q = np.exp(kappa * u)
        acc = np.broadcast_to(c[:, n - 1:n], u.shape).copy()
        for i in range(n - 2, -1, -1):
            acc *= Q
            acc += c[:, i:i + 1]
        acc *= np.exp(-0.5 * u * u - h * kappa * u)
        if any_far:
            rows, cols = np.nonzero(far)
            acc[rows, cols] = np.einsum("pi,pi->p", basis(xb[rows, cols]), C[rows])
        out[:, m0:m0 + step] = acc

    starts = range(0, M, step)
    threads = max(1, min(int(threads or 1), len(starts)))
    if threads == 1:
        for m0 in starts:
            block(m0)
    else:  # numpy's ufuncs release the GIL: blocks run in parallel
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(block, starts))
    return out


def default_threads() -> int:
    """Cores this process may use (at most 8)."""
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def euler_1d_bumps(ens, grid: np.ndarray, x: np.ndarray, progress: bool = False, threads: int = 1) -> np.ndarray:
    """The PF-ODE Euler steps of :func:`~rftheory.gtv.ensembles.pf_ode_ensemble` for D = 1 and Gaussian bumps in x.

    Each step is ``x <- x + dt (beta x + (g^2/2)(a m_hat(x, t) - x)/h) = alpha x + gamma m_hat(x, t)`` with
    ``alpha = 1 + dt (beta - g^2/(2h))`` and ``gamma = dt g^2 a/(2h)``; ``gamma m_hat`` is one bump sum with the
    t factor already contracted into the weights (``C = gamma W b_t(t)``), evaluated by :func:`bump_sums`.
    Same arithmetic as the general path up to round-off (arguments validated by the caller).
    """
    from tqdm.auto import tqdm

    sched, feats = ens.schedule, ens.features
    n_x, n_t = feats.shape
    W = ens.W.reshape(ens.N, n_x, n_t)
    xs = np.array(x[..., 0], dtype=np.float64, order="C")
    for k in tqdm(range(grid.size - 1), disable=not progress, desc="PF-ODE", leave=False):
        t, dt = grid[k], grid[k] - grid[k + 1]
        a, h = float(sched.a(t)), float(sched.h(t))
        beta, g2 = float(sched.beta(t)), float(sched.g2(t))
        alpha = 1.0 + dt * (beta - 0.5 * g2 / h)
        gamma = 0.5 * dt * g2 * a / h
        C = W @ (gamma * feats.t_basis(np.float64(t)))  # (N, n_x)
        m = bump_sums(feats.x_bases[0], xs, C, threads)
        xs *= alpha
        xs += m
    return xs[..., None]
