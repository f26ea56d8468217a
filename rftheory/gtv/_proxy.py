"""[GTV] V1 core (split out of :mod:`rftheory.gtv.variance`, which re-exports it): the proxy-score covariance,
the relative variance, and one draw of a training-point index from the posterior weights w(x, t).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator, as_points
from ..density.empirical import EmpiricalDensity

__all__ = ["proxy_covariance", "relative_variance", "sample_posterior_index"]


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
