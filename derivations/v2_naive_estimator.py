"""V2: one Euler step of the naive estimator has the mean and covariance of the effective SDE's step.

Step of size dt with drift coefficient D on the score: ``dx = dt (beta x + D s_hat)``,
``s_hat = s* + sqrt(kappa/dt) (s~ - s*)``, ``s~ = (a x_i - x)/h`` with ``i ~ w``. Symbolically for n = 3
points in D = 1 (weights as free symbols summing to one, s* their weighted mean of the proxies):

    E[dx]   = dt (beta x + D s*)                  (the drift of the base dynamics)
    Var[dx] = kappa dt D^2 C,   C = (a/h)^2 Var_w[x_i]

which are the first two moments of the effective SDE's Euler-Maruyama step with diffusion
``kappa D C D``. (Higher moments differ at O(dt^{3/2}); both schemes converge weakly to the same SDE.)
"""
from __future__ import annotations

import sympy as sp

from ._base import Derivation

NAME = "V2"
TITLE = "Naive interleaved estimator = effective SDE with diffusion kappa D C D (per-step moments)"


def derive() -> Derivation:
    res = Derivation(NAME, TITLE,
                     statement="E[dx] = dt (beta x + D s*), Cov[dx] = kappa dt D C D for "
                               "dx = dt (beta x + D (s* + sqrt(kappa/dt)(s~ - s*)))",
                     latex=r"\mathbb{E}[\Delta x]=\Delta t(\beta x+D s^*),\quad "
                           r"\operatorname{Cov}[\Delta x]=\kappa\,\Delta t\,D\,C\,D")
    n = 3
    x, a, h, dt, kappa, beta, Dc = sp.symbols("x a h dt kappa beta D", positive=True)
    y = sp.symbols(f"y0:{n}", real=True)
    w = list(sp.symbols(f"w0:{n - 1}", positive=True))
    w.append(1 - sum(w))
    prox = [(a * yi - x) / h for yi in y]
    s_star = sum(wi * p for wi, p in zip(w, prox))
    steps = [dt * (beta * x + Dc * (s_star + sp.sqrt(kappa / dt) * (p - s_star))) for p in prox]
    mean = sum(wi * st for wi, st in zip(w, steps))
    var = sum(wi * (st - mean) ** 2 for wi, st in zip(w, steps))
    m_y = sum(wi * yi for wi, yi in zip(w, y))
    C = (a / h) ** 2 * sum(wi * (yi - m_y) ** 2 for wi, yi in zip(w, y))
    res.add_check("mean", sp.simplify(sp.expand(mean - dt * (beta * x + Dc * s_star))) == 0,
                  "E[dx] - dt(beta x + D s*) simplifies to 0")
    res.add_check("covariance", sp.simplify(sp.expand(var - kappa * dt * Dc**2 * C)) == 0,
                  "Var[dx] - kappa dt D^2 C simplifies to 0")
    return res
