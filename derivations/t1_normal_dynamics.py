"""T1: exact normal dynamics off the affine hull for the OU schedule (docs/theory.md §3).

Off the hull, with ``y = P_N x - a_t c`` and normal score error ``e`` (constant here; the time-varying case
is the same linear ODE with e(u) under the integral), the reverse-time equations in forward time t are

    PF-ODE  dy/dt = (1/h - 1) y - e              y(T) = y_T
    SDE     dm/dt = (2/h - 1) m - 2 e            (mean)
            dv/dt = 2 (2/h - 1) v - 2            (variance per coordinate)

with ``h = 1 - e^{-2t}``. sympy solves the PF-ODE (dsolve) and verifies that the closed forms used by
``rftheory.dynamics.bounds`` satisfy the equations and the end conditions, that ``v = h`` is the variance started from
p_T, and that the numeric functions equal the symbolic ones at random points.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation

NAME = "T1"
TITLE = "exact normal dynamics off the affine hull (OU)"


def derive(rng_seed: int = 0) -> Derivation:
    from rftheory import bounds

    t, T, u = sp.symbols("t T u", positive=True)
    yT, e, vT = sp.symbols("y_T e v_T", real=True)
    h = lambda s: 1 - sp.exp(-2 * s)  # noqa: E731
    a = lambda s: sp.exp(-s)  # noqa: E731
    res = Derivation(NAME, TITLE,
                     statement="y(t) = sqrt(h_t/h_T) y(T) + sqrt(h_t) int_t^T h_u^{-1/2} e du;  SDE mean "
                               "(h_t/a_t)(a_T/h_T) y(T) + 2 (h_t/a_t) int_t^T (a_u/h_u) e du;  SDE variance "
                               "(h_t/a_t)^2 (1/h_t - 1/h_T) (+ propagated v_T), = h_t from p_T",
                     latex=r"y(t)=\sqrt{h_t/h_T}\,y(T)+\sqrt{h_t}\int_t^T h_u^{-1/2}P_N e\,du")
    # --- PF-ODE: closed form (int h^{-1/2} = arccosh(e^u)) satisfies the ODE and y(T) = y_T
    Y = sp.sqrt(h(t) / h(T)) * yT + sp.sqrt(h(t)) * e * (sp.acosh(sp.exp(T)) - sp.acosh(sp.exp(t)))
    ode_res = sp.simplify(sp.diff(Y, t) - ((1 / h(t) - 1) * Y - e))
    res.add_check("ODE solution", ode_res == 0 and sp.simplify(Y.subs(t, T) - yT) == 0,
                  f"dY/dt - ((1/h-1)Y - e) simplifies to {ode_res}; Y(T) = y_T")
    integrand_ok = sp.simplify(sp.diff(sp.acosh(sp.exp(u)), u) - 1 / sp.sqrt(h(u))) == 0
    res.add_check("antiderivative", integrand_ok, "d/du arccosh(e^u) = h_u^{-1/2}")
    # dsolve agrees (homogeneous part): the general solution is C sqrt(h_t)
    f = sp.Function("f")
    sol = sp.dsolve(sp.Eq(f(t).diff(t), (1 / h(t) - 1) * f(t)), f(t))
    ratio = sp.simplify(sol.rhs / sp.sqrt(h(t)))
    res.add_check("dsolve homogeneous", ratio.free_symbols <= {sp.Symbol("C1")} | set(),
                  f"dsolve: f = {sol.rhs}; f / sqrt(h_t) = {ratio} (a constant)")
    # --- SDE mean
    r = lambda s: h(s) / a(s)  # noqa: E731
    Ia = sp.Rational(1, 2) * sp.log(sp.tanh(T / 2) / sp.tanh(t / 2))
    m = r(t) / r(T) * yT + 2 * r(t) * e * Ia
    mean_res = sp.simplify((sp.diff(m, t) - ((2 / h(t) - 1) * m - 2 * e)).rewrite(sp.exp))
    ia_ok = sp.simplify((sp.diff(-sp.Rational(1, 2) * sp.log(sp.tanh(u / 2)), u) + a(u) / h(u)).rewrite(sp.exp)) == 0
    res.add_check("SDE mean", mean_res == 0 and ia_ok and sp.simplify(m.subs(t, T) - yT) == 0,
                  f"residual {mean_res}; int a/h = -(1/2) log tanh(u/2)")
    # --- SDE variance: propagated v_T plus injected noise; equals h_t when v_T = h_T
    v = (r(t) / r(T)) ** 2 * vT + r(t) ** 2 * (1 / h(t) - 1 / h(T))
    var_res = sp.simplify(sp.diff(v, t) - (2 * (2 / h(t) - 1) * v - 2))
    stat = sp.simplify((v.subs(vT, h(T)) - h(t)).rewrite(sp.exp))
    res.add_check("SDE variance", var_res == 0 and stat == 0,
                  f"residual {var_res}; v(t) - h_t from p_T = {stat}")
    # --- numeric functions = symbolic closed forms
    rng = np.random.default_rng(rng_seed)
    worst = 0.0
    for _ in range(5):
        Tv = float(rng.uniform(1, 10))
        tv = float(rng.uniform(1e-3, 0.9 * Tv))
        yv, ev, vv = (float(z) for z in rng.normal(size=3))
        subs = {t: tv, T: Tv, yT: yv, e: ev, vT: abs(vv)}
        pairs = [(bounds.t1_ode(np.array([yv]), Tv, tv, np.array([ev]))[0], Y.subs(subs)),
                 (bounds.t1_sde_mean(np.array([yv]), Tv, tv, np.array([ev]))[0], m.subs(subs)),
                 (bounds.t1_sde_var(Tv, tv, var_T=abs(vv)), v.subs(subs))]
        for num, sym in pairs:
            sym = float(sp.N(sym, 30))
            worst = max(worst, abs(num - sym) / max(abs(sym), 1e-300))
    res.add_check("numeric", worst < 1e-12, f"max relative difference {worst:.2e} (< 1e-12)")
    return res
