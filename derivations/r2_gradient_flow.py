"""R2: the gradient flow dW/dtau = -2 (W U - V) is solved by W(tau) = W* + (W0 - W*) e^{-2 tau U},
W* = V U^+ + W0 (I - U U^+); full-batch GD with step eta gives W_k = W* + (W0 - W*)(I - 2 eta U)^k.

Symbolic in the eigenbasis of U (each mode decouples): for eigenvalue m > 0, w(tau) = w* + (w0 - w*) e^{-2 tau m}
with w* = v/m solves w' = -2 (w m - v); for m = 0 (v = 0 on the null space, V = W* U) w stays w0; the GD
recursion w_{k+1} = w_k - 2 eta (m w_k - v) is solved by w* + (w0 - w*)(1 - 2 eta m)^k (induction). Numeric:
rftheory.rf.model.gradient_flow and gd against these formulas.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation

NAME = "R2"
TITLE = "Gradient flow and gradient descent of the RF loss in closed form"


def derive() -> Derivation:
    from rftheory.rf.model import gd, gradient_flow

    res = Derivation(NAME, TITLE,
                     statement="W(tau) = W* + (W0 - W*) exp(-2 tau U), W* = V U^+ + W0 (I - U U^+); "
                               "W_k = W* + (W0 - W*)(I - 2 eta U)^k",
                     latex=r"W(\tau) = W^* + (W_0 - W^*)e^{-2\tau U}")
    tau, eta = sp.symbols("tau eta", nonnegative=True)
    m = sp.symbols("m", positive=True)
    v, w0 = sp.symbols("v w0", real=True)
    k = sp.symbols("k", integer=True, nonnegative=True)
    ws = v / m
    w = ws + (w0 - ws) * sp.exp(-2 * tau * m)
    res.add_check("ODE solved (m > 0)", sp.simplify(sp.diff(w, tau) + 2 * (w * m - v)) == 0, "w' + 2(wm - v) = 0")
    res.add_check("initial value", sp.simplify(w.subs(tau, 0) - w0) == 0, "w(0) = w0")
    wk = ws + (w0 - ws) * (1 - 2 * eta * m) ** k
    step = wk - 2 * eta * (m * wk - v)
    res.add_check("GD recursion", sp.simplify(step - wk.subs(k, k + 1)) == 0, "w_{k+1} = w_k - 2 eta (m w_k - v)")
    res.add_check("GD start", sp.simplify(wk.subs(k, 0) - w0) == 0, "")
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 4))
    U = A @ A.T                         # rank 4 of 6: a genuine null space
    W0 = rng.normal(size=(2, 6))
    V = rng.normal(size=(2, 6)) @ U     # V in the range of U, as assembled
    gf = gradient_flow(U, V, W0)
    mu, Q = np.linalg.eigh(U)
    worst = 0.0
    for t in (0.0, 0.01, 1.0, 50.0):
        E = Q @ np.diag(np.exp(-2 * t * np.where(mu > gf.cutoff, mu, 0))) @ Q.T
        ref = gf.W_star + (W0 - gf.W_star) @ E
        worst = max(worst, np.abs(gf.predict(t) - ref).max())
    res.add_check("predict vs expm formula", worst < 1e-10, f"max abs diff {worst:.1e}")
    null = Q[:, mu <= gf.cutoff]
    res.add_check("null-space part of W0 frozen", np.abs((gf.W_star - W0) @ null).max() < 1e-10, "")
    eta_v = 0.4 / mu[-1]
    Wk = gd(U, V, W0, eta_v, 25)
    ref = gf.W_star + (W0 - gf.W_star) @ np.linalg.matrix_power(np.eye(6) - 2 * eta_v * U, 25)
    err = np.abs(Wk - ref).max() / np.abs(ref).max()
    res.add_check("gd vs (I - 2 eta U)^k", err < 1e-10, f"rel {err:.1e}")
    return res
