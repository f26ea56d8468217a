"""An independent reference for the assembled loss moments U, V, c0 (rf/moments.py), for small sizes.

It shares with the production path only the time rule's nodes and weights (``time_rule``: the same rule, so
its time-quadrature error is the same on both sides) and the model's weight arrays. Everything else is
recomputed from the definitions (docs/theory.md §4), one (training point, time node, unit or pair) at a time:

* OU ``a = e^{-t}``, ``h = 1 - e^{-2t}``; the Fourier embedding; ``mu_j = a w_j.x_i + c_j(t)``,
  ``s_j = sqrt(h)|w_j|``;
* every scalar moment as a 1-D integral over a standard normal x by composite 20-point Gauss-Legendre on unit
  panels over [-10, 10] (phi(10) = 7.7e-23), split at the activation's kink and at the centre of the
  conditional term's transition, summed with math.fsum. Pair moments condition v on u
  (``v = mu_v + s_v (rho x + r z)``, ``r = sqrt(1 - rho^2)``) with the z-expectation in closed form (ReLU
  ``sigma g(m/sigma)``, erf ``erf(m/sqrt(1 + 2 sigma^2))``, cos ``cos(m) e^{-sigma^2/2}``) or, for tanh, by the
  same rule in z (unsplit: tanh is analytic, its poles pi/(2 sigma) off the real axis). None of the production formulas (bivariate normal CDF, hoisted pair kernel, Stein's lemma,
  Gauss-Hermite, the batched sum) is used;
* the direct-score V from ``E[-z/sqrt(h) sigma(u_j)] = -(w_j/|w_j|) E[x sigma(mu_j + s_j x)]/sqrt(h)`` (z's
  component along w_j), not from Stein's lemma.

The quadrature rule is checked against mpmath's adaptive tanh-sinh quadrature at 30 digits
(tests/test_moments_reference.py::test_reference_rule_vs_mpmath).
"""
import math

import numpy as np
from scipy.special import erf, ndtr

from rftheory.rf.moments import time_rule

_L = 10.0
_XG, _WG = np.polynomial.legendre.leggauss(20)
_NPDF = 1.0 / math.sqrt(2 * math.pi)


def rule(features=(), lo=None):
    """(nodes, weights * phi(nodes)) of the composite rule on [lo or -L, L], split at ``features``."""
    lo = -_L if lo is None else max(float(lo), -_L)
    edges = set(np.arange(-_L, _L + 1.0)) | {lo} | {float(f) for f in features if -_L < f < _L}
    edges = np.array(sorted(e for e in edges if e >= lo))
    if edges.size < 2:
        return np.zeros(0), np.zeros(0)
    a, b = edges[:-1, None], edges[1:, None]
    x = ((a + b) / 2 + (b - a) / 2 * _XG[None, :]).ravel()
    w = ((b - a) / 2 * _WG[None, :]).ravel()
    return x, w * _NPDF * np.exp(-0.5 * x * x)


def _act(name, u):
    return {"relu": lambda v: np.maximum(v, 0.0), "erf": erf, "cos": np.cos, "tanh": np.tanh}[name](u)


def _cond(name, m, sig):
    """E[act(m + sig z)], z standard normal; m an array, sig a scalar."""
    if name == "relu":
        c = m / sig
        return sig * (c * ndtr(c) + _NPDF * np.exp(-0.5 * c * c))
    if name == "erf":
        return erf(m / math.sqrt(1 + 2 * sig * sig))
    if name == "cos":
        return np.cos(m) * math.exp(-0.5 * sig * sig)
    if name == "tanh":
        # analytic in z with poles 1/sig * pi/2 off the real axis: unit panels need no split
        z, w = rule()
        return np.tanh(m[:, None] + sig * z[None, :]) @ w
    raise ValueError(name)


def single(name, mu, s):
    """(E[act(u)], E[act(u)^2], E[x act(u)]) for u = mu + s x, x standard normal."""
    k = -mu / s
    x, w = rule([k], k if name == "relu" else None)
    v = _act(name, mu + s * x)
    return math.fsum(w * v), math.fsum(w * v * v), math.fsum(w * x * v)


def pair(name, mu_u, s_u, mu_v, s_v, rho):
    """E[act(u) act(v)] for u ~ N(mu_u, s_u^2), v ~ N(mu_v, s_v^2) with correlation rho (|rho| < 1)."""
    r = math.sqrt((1 - rho) * (1 + rho))
    ku = -mu_u / s_u
    feats = [ku] + ([-mu_v / (s_v * rho)] if rho != 0 else [])
    x, w = rule(feats, ku if name == "relu" else None)
    return math.fsum(w * _act(name, mu_u + s_u * x) * _cond(name, mu_v + s_v * rho * x, s_v * r))


def reference_moments(model, data, t0, T, weight, n_gl, panels_per_period=2.0):
    """(U, V_posterior_mean, V_score, c0_posterior_mean, c0_score) for ``model`` (OU schedule)."""
    name = model.act.name
    nodes, wts = time_rule(t0, T, model.K, model.T, n_gl, panels_per_period)
    n, D = data.shape
    p = model.p
    Wx = model.W_x
    norms = np.array([math.sqrt(math.fsum(r * r)) for r in Wx])
    unit = Wx / norms[:, None]
    rho = np.array([[math.fsum(unit[j] * unit[k]) for k in range(p)] for j in range(p)])
    proj = np.array([[math.fsum(x * w) for w in Wx] for x in data])
    U = np.zeros((p, p))
    Vpm, Vsc = np.zeros((D, p)), np.zeros((D, p))
    c0pm = c0sc = 0.0
    terms = {"U": [[[] for _ in range(p)] for _ in range(p)]}
    for t, wq in zip(nodes, wts):
        a, h = math.exp(-t), -math.expm1(-2 * t)
        w = wq * {"1": 1.0, "1/h": 1 / h, "1/h2": 1 / (h * h)}[weight] / n
        ang = [2 * math.pi * k * t / model.T for k in range(1, model.K + 1)]
        phi = np.array([1.0] + [math.sin(v) for v in ang] + [math.cos(v) for v in ang])
        c = np.array([math.fsum(model.W_t[j] * phi) + model.b[j] for j in range(p)])
        sh = math.sqrt(h)
        s = sh * norms
        for i in range(n):
            mu = a * proj[i] + c
            y = a * data[i]
            c0pm += w * math.fsum(y * y) / D
            c0sc += w / h
            for j in range(p):
                m1, m2, mx = single(name, mu[j], s[j])
                terms["U"][j][j].append(w * m2)
                Vpm[:, j] += w * y * m1
                Vsc[:, j] -= w * unit[j] * mx / sh
                for k in range(j + 1, p):
                    terms["U"][j][k].append(w * pair(name, mu[j], s[j], mu[k], s[k], rho[j, k]))
    for j in range(p):
        for k in range(j, p):
            U[j, k] = U[k, j] = math.fsum(terms["U"][j][k])
    return U, Vpm, Vsc, c0pm, c0sc
