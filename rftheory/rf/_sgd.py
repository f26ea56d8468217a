"""Stochastic gradient descent on the DSM loss with sampled (i, t, z): the Monte Carlo training run (split out
of :mod:`rftheory.rf.model`, which re-exports it). Its expectation is the full-batch step on the exact U, V.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_generator, check_positive_int, check_real
from .moments import weight_fn
from ..density.schedules import OU, get_schedule

__all__ = ["sgd"]


def sgd(model: RandomFeatureModel, data: ArrayLike, W0: ArrayLike, eta: float, steps: int, rng: RngLike, schedule=None, t0=1e-3, T=None, weight="1",
        parametrization="posterior_mean", batch=1, t_sampling="uniform", record=None, progress=False):
    """Stochastic gradient descent on the DSM loss with sampled (i, t, z): the Monte Carlo training run.

    Each step draws ``batch`` triples: i uniform, t uniform on [t0, T] (or log-uniform, ``t_sampling="log"``)
    with importance weight ``w = lambda(t)/density(t)``, z standard normal; the step is
    ``W <- W - 2 eta mean(w (W sigma - y) sigma^T)``. Its expectation is the full-batch step on the exact
    U, V, so ``E[W_k]`` equals ``gd(U, V, W0, eta, k)``.

    Parameters
    ----------
    model : RandomFeatureModel
    data : array_like, shape (n, D)
        Training set.
    W0 : array_like, shape (D, p)
        Start.
    eta : float
        Step size.
    steps : int
        Number of steps.
    rng : None, int, SeedSequence or numpy.random.Generator
        Source of the sampled (i, t, z); None draws from a fresh generator.
    schedule, t0, T, weight, parametrization
        As :meth:`RandomFeatureModel.moments`.
    batch : int, default 1
        Triples per step.
    t_sampling : {"uniform", "log"}
        Proposal for t (importance-weighted).
    record : iterable of int, optional
        Step counts at which to keep the iterate.
    progress : bool, default False
        Show a tqdm bar.

    Returns
    -------
    numpy.ndarray, shape (D, p), or (W_final, dict)
        The final W, or ``(W_final, {k: W_k})`` when ``record`` is given.

    Raises
    ------
    ValueError
        If data or W0 has the wrong shape, ``batch`` < 1 or ``t_sampling`` is unknown.
    """
    rng = as_generator(rng)
    data = as_data(data, "data")
    if data.shape[1] != model.D:
        raise ValueError(f"data must have D = {model.D} columns; got {data.shape[1]}")
    schedule = OU() if schedule is None else get_schedule(schedule)
    T = model.T if T is None else check_real(T, "T", positive=True)
    t0 = check_real(t0, "t0", positive=True)
    if not t0 < T:
        raise ValueError(f"t0 must be < T; got t0 = {t0}, T = {T}")
    schedule.check_t(np.array([t0, T]), "t0/T")
    steps = check_positive_int(steps, "steps", minimum=0)
    eta = check_real(eta, "eta", positive=True)
    lam = weight_fn(weight)
    if t_sampling not in ("uniform", "log"):
        raise ValueError(f"t_sampling must be 'uniform' or 'log'; got {t_sampling!r}")
    batch = check_positive_int(batch, "batch")
    W = np.array(W0, dtype=np.float64, copy=True)
    if W.shape != (model.D, model.p):
        raise ValueError(f"W0 must have shape {(model.D, model.p)}; got {W.shape}")
    rec = set(record or ())
    out = {}
    it = range(int(steps) + 1)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="sgd", leave=False)
    n = data.shape[0]
    for k in it:
        if k in rec:
            out[k] = W.copy()
        if k == steps:
            break
        i = rng.integers(0, n, size=batch)
        if t_sampling == "uniform":
            t = rng.uniform(t0, T, size=batch)
            dens = np.full(batch, 1.0 / (T - t0))
        else:
            t = np.exp(rng.uniform(np.log(t0), np.log(T), size=batch))
            dens = 1.0 / (t * np.log(T / t0))
        z = rng.standard_normal((batch, model.D))
        a, h = schedule.a_h(t)
        xt = a[:, None] * data[i] + np.sqrt(h)[:, None] * z
        S = model.features(xt, t)                             # (B, p)
        y = a[:, None] * data[i] if parametrization == "posterior_mean" else -z / np.sqrt(h)[:, None]
        w = lam(h) / dens
        R = (S @ W.T - y) * w[:, None]                        # (B, D)
        W = W - 2.0 * eta * (R.T @ S) / batch
    return (W, out) if record is not None else W


# Last, so that the annotation resolves (typing.get_type_hints): rftheory.rf.model imports this module after
# defining RandomFeatureModel, and every import of this module goes through rftheory.rf, which imports model.
from .model import RandomFeatureModel  # noqa: E402
