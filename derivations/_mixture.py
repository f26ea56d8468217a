"""The symbolic smoothed empirical density shared by the derivations (P1, V1): n points in D dimensions."""
from __future__ import annotations

import sympy as sp


def gaussian_mixture(n: int, D: int = 2):
    """``(x, pts, a, h, ell, logp, w)``: query symbols x (D x 1), data symbols pts (n of D x 1), the positive
    symbols a, h, the logits ``ell_i = -|x - a x_i|^2/(2h)``, ``log sum_i exp(ell_i)`` and the softmax
    weights ``w_i``. Derivations rename each ``exp(ell_i)`` to a positive symbol E_i before cancelling."""
    a, h = sp.symbols("a h", positive=True)
    x = sp.Matrix(sp.symbols(f"x0:{D}", real=True))
    pts = [sp.Matrix(sp.symbols(f"y{i}_0:{D}", real=True)) for i in range(n)]
    ell = [-((x - a * p).dot(x - a * p)) / (2 * h) for p in pts]
    Z = sum(sp.exp(e) for e in ell)
    logp = sp.log(Z)
    w = [sp.exp(e) / Z for e in ell]
    return x, pts, a, h, ell, logp, w
