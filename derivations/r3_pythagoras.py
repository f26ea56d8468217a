"""R3: loss-level Pythagoras. With L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0 and V = W_inf U,
L(W) - L(W_inf) = (1/D) tr((W - W_inf) U (W - W_inf)^T); subtracting L* from both losses gives
L(W(tau)) - L* = (1/D) tr((W(tau) - W_inf) U (W(tau) - W_inf)^T) + (L(W_inf) - L*).

Symbolic: expanded for generic 2 x 3 matrices W, W_inf and a symmetric U with V := W_inf U. Numeric:
rftheory.rf.decomposition.pythagoras on assembled U, V.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation

NAME = "R3"
TITLE = "Pythagoras: L(W) - L(W_inf) = (1/D) tr((W - W_inf) U (W - W_inf)^T)"


def derive() -> Derivation:
    from rftheory.rf.decomposition import pythagoras
    from rftheory.rf.model import RandomFeatureModel, gradient_flow

    res = Derivation(NAME, TITLE,
                     statement="L(W(tau)) - L* = (1/D) tr((W(tau)-W_inf) U (W(tau)-W_inf)^T) + (L(W_inf) - L*)",
                     latex=r"L(W_\tau)-L^* = \tfrac1D\operatorname{tr}\big((W_\tau-W_\infty)U(W_\tau-W_\infty)^\top\big)"
                           r" + L(W_\infty)-L^*")
    D, p = 2, 3
    W = sp.Matrix(D, p, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    Wi = sp.Matrix(D, p, lambda i, j: sp.Symbol(f"z{i}{j}", real=True))
    Us = sp.Matrix(p, p, lambda i, j: sp.Symbol(f"u{min(i, j)}{max(i, j)}", real=True))
    c0 = sp.Symbol("c0", real=True)
    V = Wi * Us
    L = lambda M: ((M * Us * M.T).trace() - 2 * (V * M.T).trace()) / D + c0  # noqa: E731
    dW = W - Wi
    res.add_check("symbolic", sp.expand(L(W) - L(Wi) - (dW * Us * dW.T).trace() / D) == 0, "expand(...) == 0")
    m = RandomFeatureModel(2, 8, 2, 2.0, activation="cos", rng=0)
    mom = m.moments(np.array([[-3.0, 0.0], [3.0, 0.0]]), t0=1e-2, T=2.0, report=False)
    gf = gradient_flow(mom.U, mom.V, np.random.default_rng(1).normal(size=(2, 8)))
    worst = max(pythagoras(mom, gf.predict(tau), gf.W_star)["rel_diff"] for tau in (0.1, 1.0, 10.0))
    res.add_check("numeric (assembled U, V)", worst < 1e-10, f"max rel diff {worst:.1e}")
    return res
