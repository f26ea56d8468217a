"""Random-feature score models in closed form (THEORY.md §4, R1-R2).

``f_W(x, t) = W sigma(W_x x + W_t phi(t) + b)`` with fixed ``W_x ~ N(0, 1/D)`` (p x D),
``W_t ~ N(0, 1/(2K+1))`` (p x (2K+1)), ``b ~ N(0, 1)`` (or 0), phi the Fourier embedding
(:func:`rftheory.rf.features.fourier_embedding`), and trained ``W`` (D x p).

Parametrizations and their score (the sign convention):

* ``"posterior_mean"``: f regresses ``a_t x_0`` (so ``f ~ a_t m_t``), score ``s_hat = (f - x)/h_t``.
* ``"score"`` (direct): f regresses ``-z/sqrt(h_t)``, whose conditional mean is ``+grad log p_t``; so
  ``s_hat = f`` (f estimates the score itself, *not* the noise; ``sqrt(h_t) f ~ -E[Z | X_t]``).

Loss ``L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0`` (rf_moments.py assembles U, V, c0). Training time tau
is that of the flow ``dW/dtau = -2 (W U - V)`` (= -D grad L): ``W(tau) = W* + (W0 - W*) e^{-2 tau U}``
(derivations/r2_gradient_flow.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .._checks import as_data, as_generator, as_points, per_point_times
from .features import EMBEDDING_ORDERS, fourier_embedding, get_activation
from .moments import (PARAMETRIZATIONS, WEIGHTS, Moments, QuadratureReport, TimeRule, assemble,
                      cache_key, cache_path, load_moments, save_moments)
from ..density.schedules import OU, get_schedule

__all__ = ["RandomFeatureModel", "GradientFlow", "gradient_flow", "gd", "sgd", "RFScoreField", "loss"]

log = logging.getLogger(__name__)
_EPS = np.finfo(np.float64).eps
_BLOCK_FLOATS = 2**18


def _posint(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1; got {v}")
    return int(v)


class RandomFeatureModel:
    """Fixed random features of (x, t); see the module docstring.

    Parameters: D data dimension, p features, K Fourier frequencies (embedding length 2K+1), T the
    embedding period (the horizon), activation in ``features.ACTIVATIONS`` or an Activation, bias (draw b or
    use 0), rng a numpy Generator or int seed (required: no global state), embedding the order of the
    Fourier embedding's columns, "concat" (ours) or "interleaved" ([HQT]'s code; docs/conventions.md).
    """

    def __init__(self, D, p, K, T, activation="relu", bias=True, rng=None, embedding="concat"):
        self.D = _posint(D, "D")
        self.p = _posint(p, "p")
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 0:
            raise ValueError(f"K must be an integer >= 0; got {K!r}")
        self.K = int(K)
        if not (np.isfinite(T) and T > 0):
            raise ValueError(f"T must be finite and > 0; got {T!r}")
        self.T = float(T)
        if embedding not in EMBEDDING_ORDERS:
            raise ValueError(f"embedding must be one of {EMBEDDING_ORDERS}; got {embedding!r}")
        self.embedding = embedding
        self.act = get_activation(activation)
        rng = as_generator(rng)
        self.W_x = rng.standard_normal((self.p, self.D)) / np.sqrt(self.D)
        self.W_t = rng.standard_normal((self.p, 2 * self.K + 1)) / np.sqrt(2 * self.K + 1)
        self.b = rng.standard_normal(self.p) if bias else np.zeros(self.p)
        self.bias = bool(bias)

    def __repr__(self):
        return (f"RandomFeatureModel(D={self.D}, p={self.p}, K={self.K}, T={self.T}, "
                f"activation={self.act.name}, bias={self.bias}, embedding={self.embedding!r})")

    def features(self, x, t) -> np.ndarray:
        """(m, p) ``sigma(W_x x + W_t phi(t) + b)``; t scalar or (m,)."""
        x = as_points(x, self.D, "x")
        C, inv = self._time_rows(np.broadcast_to(np.asarray(t, dtype=np.float64), (x.shape[0],)))
        return self._features(x, C, inv)

    def _time_rows(self, tt):
        """``W_t phi(t) + b`` once per distinct time (a sampler passes one t for all points), and the index of
        each point's row."""
        tu, inv = np.unique(tt, return_inverse=True)
        return fourier_embedding(tu, self.K, self.T, self.embedding) @ self.W_t.T + self.b[None, :], inv.reshape(-1)

    def _features(self, x, C, inv):
        pre = x @ self.W_x.T
        pre += C[inv]
        return self.act(pre)

    def moments(self, data, schedule=None, t0=1e-3, weight="1", method="exact",
                parametrization="posterior_mean", T=None, n_gl=12, panels_per_period=2.0,
                mc_draws=4000, rng=None, report=True, report_units=48, progress=False, cache_dir=None,
                threads=None, batch=32, time_rule="gauss-legendre", n_intervals=4000):
        """U (p, p), V (D, p), c0 and a time-quadrature report (see rf_moments.py).

        ``weight``: one of WEIGHTS (returns Moments) or a tuple of them (returns a list of Moments, one per
        weight, assembled in one pass at the cost of one). method "exact" uses the closed-form Gaussian
        moments; "mc" draws ``mc_draws`` noise vectors per (training point, time node) with ``rng`` (the
        [HQT] recipe, on the same time rule; every weight sees the same draws). ``T`` defaults to
        the embedding period. ``report`` repeats the assembly on ``report_units`` random units (drawn with a
        fixed seed) with twice the nodes per panel and stores the relative differences. ``cache_dir``: reuse
        or store exact results there (one .npz per key, see rf_moments.cache_key); MC results are never
        cached. ``threads`` / ``batch``: the exact ReLU path's thread count (default: the CPUs available, at
        most 8) and (point, time node) steps per batch; the result does not depend on either.
        ``time_rule``: "gauss-legendre" (default; ``n_gl``, ``panels_per_period``) or "simpson" (composite
        Simpson on ``n_intervals`` uniform intervals: [HQT]'s recipe, with ``method="mc"`` their Monte Carlo
        too; its report refines to twice the intervals). docs/conventions.md.
        """
        data = as_data(data, "data")
        if data.shape[1] != self.D:
            raise ValueError(f"data must have D = {self.D} columns; got {data.shape[1]}")
        schedule = OU() if schedule is None else get_schedule(schedule)
        multi = not isinstance(weight, str)
        weights = tuple(weight) if multi else (weight,)
        if not weights or any(w not in WEIGHTS for w in weights):
            raise ValueError(f"weight must be one of {WEIGHTS} or a tuple of them; got {weight!r}")
        if method not in ("exact", "mc"):
            raise ValueError(f"method must be 'exact' or 'mc'; got {method!r}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}; got {parametrization!r}")
        T = self.T if T is None else float(T)
        schedule.check_t(np.array([t0, T]), "t0/T")
        if method == "mc":
            mc_draws = _posint(mc_draws, "mc_draws")
            rng = as_generator(rng)
        rule = TimeRule(time_rule, t0, T, self.K, self.T, n_gl, panels_per_period, n_intervals)
        nodes, wts = rule(1)
        out = {w: None for w in weights}
        keys = {}                                  # weight -> (key, path) when cached
        if cache_dir is not None and method == "exact":
            for w in out:
                settings = {"schedule": repr(schedule), "t0": float(t0), "T": float(T), "weight": w,
                            "parametrization": parametrization, "n_gl": int(n_gl),
                            "panels_per_period": float(panels_per_period),
                            "report_units": int(report_units) if report else None}
                if time_rule != "gauss-legendre":         # keys of the default rule stay as they were
                    settings.update(time_rule=time_rule, n_intervals=int(n_intervals))
                if self.embedding != "concat":
                    settings["embedding"] = self.embedding
                key = cache_key(self, data, settings)
                keys[w] = (key, cache_path(cache_dir, key))
                out[w] = load_moments(keys[w][1], key)
                if out[w] is not None:
                    log.info("moments (weight %s) from cache %s", w, keys[w][1])
        todo = tuple(w for w, m in out.items() if m is None)
        if todo:
            for w, mom in zip(todo, self._assemble(data, schedule, t0, T, todo, method, parametrization, rule,
                                                   nodes, wts, mc_draws, rng, report,
                                                   report_units, progress, threads, batch)):
                out[w] = mom
                if w in keys:
                    save_moments(keys[w][1], mom, keys[w][0])
                    log.info("moments (weight %s) cached at %s", w, keys[w][1])
        return [out[w] for w in weights] if multi else out[weight]

    def _assemble(self, data, schedule, t0, T, weights, method, parametrization, rule,
                  nodes, wts, mc_draws, rng, report, report_units, progress, threads, batch) -> list:
        U, V, c0 = assemble(self, data, schedule, t0, T, weights, method, parametrization, nodes, wts,
                            mc_draws=mc_draws, rng=rng, progress=progress, threads=threads, batch=batch)
        reps = [None] * len(weights)
        if report and method == "exact":
            units = np.sort(np.random.default_rng(12345).choice(self.p, min(self.p, report_units), replace=False))
            n2, w2 = rule(2)
            U2, V2, _ = assemble(self, data, schedule, t0, T, weights, method, parametrization, n2, w2,
                                 units=units, threads=threads, batch=batch)
            for k in range(len(weights)):
                Us, Vs = U[k][np.ix_(units, units)], V[k][:, units]
                reps[k] = QuadratureReport(
                    rule=rule.description,
                    n_nodes=nodes.size, n_nodes_refined=n2.size, units=units,
                    rel_diff_U=float(np.linalg.norm(Us - U2[k]) / np.linalg.norm(U2[k])),
                    rel_diff_V=float(np.linalg.norm(Vs - V2[k]) / max(np.linalg.norm(V2[k]), 1e-300)))
                log.info("time quadrature (weight %s): %d nodes, refined %d: rel diff U %.2e V %.2e", weights[k],
                         reps[k].n_nodes, reps[k].n_nodes_refined, reps[k].rel_diff_U, reps[k].rel_diff_V)
        return [Moments(U=U[k], V=V[k], c0=float(c0[k]), weight=weights[k], parametrization=parametrization,
                        method=method, t0=float(t0), T=T, n_time_nodes=nodes.size, report=reps[k])
                for k in range(len(weights))]

    def score_field(self, W, schedule=None, parametrization="posterior_mean") -> "RFScoreField":
        return RFScoreField(self, W, schedule, parametrization)


class RFScoreField:
    """Score field of a trained RF model: ``score(x, t) -> (m, D)`` (module docstring for the sign)."""

    def __init__(self, model: RandomFeatureModel, W, schedule=None, parametrization="posterior_mean"):
        W = np.asarray(W, dtype=np.float64)
        if W.shape != (model.D, model.p):
            raise ValueError(f"W must have shape (D, p) = {(model.D, model.p)}; got {W.shape}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}; got {parametrization!r}")
        self.model, self.W = model, W
        self.schedule = OU() if schedule is None else get_schedule(schedule)
        self.parametrization = parametrization
        self.D = model.D

    def _apply(self, x, tt) -> np.ndarray:
        # rows in blocks whose (rows, p) features stay about 2 MiB (cache-resident): 3.5x faster than one
        # (m, p) product at m = 2000, p = 1000
        rows = max(1, _BLOCK_FLOATS // self.model.p)
        C, inv = self.model._time_rows(tt)          # once per call, not once per block
        out = np.empty((x.shape[0], self.D))
        for i in range(0, x.shape[0], rows):
            out[i:i + rows] = self.model._features(x[i:i + rows], C, inv[i:i + rows]) @ self.W.T
        return out

    def output(self, x, t) -> np.ndarray:
        """(m, D) the raw network output f_W(x, t)."""
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._apply(x, tt)

    def score(self, x, t) -> np.ndarray:
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        f = self._apply(x, tt)
        if self.parametrization == "score":
            return f
        return (f - x) / self.schedule._h(tt)[:, None]


def loss(W, mom: Moments) -> float:
    """``L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0``."""
    W = np.asarray(W, dtype=np.float64)
    D = W.shape[0]
    return float((np.einsum("dj,jk,dk->", W, mom.U, W) - 2 * np.sum(mom.V * W)) / D + mom.c0)


def _check_UV(U, V, W0):
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
    return 0.5 * (U + U.T), V, W0


@dataclass
class GradientFlow:
    """Closed-form gradient flow over one eigendecomposition ``U = Q diag(mu) Q^T``.

    Eigenvalues ``mu_k <= cutoff`` (default ``p * eps * max(mu)``, see :func:`gradient_flow`) are treated as 0 (their directions are the null
    space: W0 is frozen there, and U^+ omits them). ``W_star = V U^+ + W0 (I - U U^+)``.
    ``predict(tau) = W0 + (W0 - W*) Q diag(expm1(-2 tau mu)) Q^T`` (expm1 keeps small tau accurate);
    ``tau = inf`` returns W* by its own path.
    """

    Q: np.ndarray
    mu: np.ndarray
    cutoff: float
    W0: np.ndarray
    W_star: np.ndarray

    @property
    def rank(self) -> int:
        return int(np.sum(self.mu > self.cutoff))

    def predict(self, tau):
        """W(tau) (D, p) for scalar tau >= 0 (inf allowed), or (len(tau), D, p) for an array."""
        taus = np.asarray(tau, dtype=np.float64)
        if np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("tau must be >= 0 (inf allowed)")
        scalar = taus.ndim == 0
        taus = np.atleast_1d(taus)
        mu_eff = np.where(self.mu > self.cutoff, self.mu, 0.0)
        C = (self.W0 - self.W_star) @ self.Q                 # (D, p) in the eigenbasis
        out = np.empty((taus.size,) + self.W0.shape)
        for k, tau in enumerate(taus):
            if np.isinf(tau):
                out[k] = self.W_star
            else:
                out[k] = self.W0 + (C * np.expm1(-2.0 * tau * mu_eff)[None, :]) @ self.Q.T
        return out[0] if scalar else out

    def mode_amplitudes(self, tau):
        """(D, p) coefficients of W(tau) - W* on the eigenvectors: ``(W0 - W*) q_k e^{-2 tau mu_k}`` (R4)."""
        mu_eff = np.where(self.mu > self.cutoff, self.mu, 0.0)
        return ((self.W0 - self.W_star) @ self.Q) * np.exp(-2.0 * float(tau) * mu_eff)[None, :]


def gradient_flow(U, V, W0, cutoff=None) -> GradientFlow:
    """R2: one ``eigh`` of U, then ``predict(tau)`` for any tau (see :class:`GradientFlow`).

    ``cutoff``: eigenvalues of U at or below it count as 0 (null space: frozen, left out of U^+). None (default)
    is round-off, ``p * eps * max(mu)``; a number is an absolute eigenvalue in the units of our U. [HQT]'s
    code keeps eigenvalues of its U (= ours / p) above 1/(p 1e4), i.e. ``cutoff=1e-4`` here
    (docs/conventions.md)."""
    U, V, W0 = _check_UV(U, V, W0)
    mu, Q = np.linalg.eigh(U)
    if cutoff is None:
        cutoff = U.shape[0] * _EPS * max(float(mu[-1]), 0.0)
    elif isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.floating, np.integer)) \
            or not (np.isfinite(cutoff) and cutoff >= 0):
        raise ValueError(f"cutoff must be None or a finite number >= 0; got {cutoff!r}")
    cutoff = float(cutoff)
    keep = mu > cutoff
    Qk = Q[:, keep]
    W_star = ((V @ Qk) / mu[keep][None, :]) @ Qk.T + (W0 @ Q[:, ~keep]) @ Q[:, ~keep].T
    return GradientFlow(Q=Q, mu=mu, cutoff=cutoff, W0=W0, W_star=W_star)


def gd(U, V, W0, eta, steps, record=None):
    """Exact full-batch gradient descent ``W <- W - 2 eta (W U - V)`` for ``steps`` steps.

    Returns the final W, or ``(W_final, {k: W_k})`` for the step counts in ``record``."""
    U, V, W0 = _check_UV(U, V, W0)
    steps = int(steps)
    if steps < 0:
        raise ValueError("steps must be >= 0")
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be finite and > 0; got {eta!r}")
    rec = set(record or ())
    out = {}
    W = W0.copy()
    for k in range(steps + 1):
        if k in rec:
            out[k] = W.copy()
        if k == steps:
            break
        W = W - 2.0 * eta * (W @ U - V)
    return (W, out) if record is not None else W


def sgd(model: RandomFeatureModel, data, W0, eta, steps, rng, schedule=None, t0=1e-3, T=None, weight="1",
        parametrization="posterior_mean", batch=1, t_sampling="uniform", record=None, progress=False):
    """Stochastic gradient descent on the DSM loss with sampled (i, t, z): the Monte Carlo training run.

    Each step draws ``batch`` triples: i uniform, t uniform on [t0, T] (or log-uniform, ``t_sampling="log"``)
    with importance weight ``w = lambda(t)/density(t)``, z standard normal; the step is
    ``W <- W - 2 eta mean(w (W sigma - y) sigma^T)``. Its expectation is the full-batch step on the exact
    U, V, so ``E[W_k]`` equals ``gd(U, V, W0, eta, k)``. Returns W (and the recorded iterates)."""
    rng = as_generator(rng)
    data = as_data(data, "data")
    if data.shape[1] != model.D:
        raise ValueError(f"data must have D = {model.D} columns; got {data.shape[1]}")
    schedule = OU() if schedule is None else get_schedule(schedule)
    T = model.T if T is None else float(T)
    from .moments import weight_fn

    lam = weight_fn(weight)
    if t_sampling not in ("uniform", "log"):
        raise ValueError(f"t_sampling must be 'uniform' or 'log'; got {t_sampling!r}")
    batch = _posint(batch, "batch")
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
