"""R1: Gaussian moments of activations.

Symbolic: E[(mu + s x)+] = mu Phi(mu/s) + s phi(mu/s); E[cos(mu + s x)] = cos(mu) e^{-s^2/2};
E[erf(mu + s x)] = erf(mu / sqrt(1 + 2 s^2)) (by differentiating in mu under the integral); for the bivariate
ReLU moment G(a, b; rho) = E[(a + x)+ (b + y)+] the closed form of docs/theory.md §4 is differentiated in rho and
compared with E[1{x > -a} 1{y > -b}] = Phi2(a, b; rho) (Price's theorem), its rho = 0 value is shown to
factorise into g(a) g(b), and both are checked against rftheory.rf.features.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation

NAME = "R1"
TITLE = "Gaussian moments of ReLU, cos, erf (1-D) and the bivariate ReLU moment"


def derive() -> Derivation:
    from rftheory.rf.features import Cos, Erf, ReLU, bvn_cdf, relu_pair_std

    res = Derivation(NAME, TITLE,
                     statement="E[u+] = mu Phi(mu/s) + s phi(mu/s); E[cos u] = cos mu e^{-s^2/2}; "
                               "E[erf u] = erf(mu/sqrt(1+2s^2)); dG/drho = Phi2(a,b;rho), G(rho=0) = g(a) g(b)",
                     latex=r"\partial_\rho \mathbb{E}[(a+x)_+(b+y)_+] = \Phi_2(a,b;\rho)")
    x = sp.symbols("x", real=True)
    mu = sp.symbols("mu", real=True)
    s = sp.symbols("s", positive=True)
    phi = sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)
    Phi = lambda z: (1 + sp.erf(z / sp.sqrt(2))) / 2  # noqa: E731
    npdf = lambda z: sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731
    # ReLU: integrate (mu + s x) phi over x > -mu/s
    relu = sp.integrate((mu + s * x) * phi, (x, -mu / s, sp.oo))
    closed = mu * Phi(mu / s) + s * npdf(mu / s)
    dif = sp.simplify(relu - closed)
    ok = dif == 0
    worst = 0.0
    if not ok:  # sympy may leave erfc/Piecewise forms: check at random rational points, 30 digits
        rng0 = np.random.default_rng(1)
        for _ in range(5):
            vals = {mu: sp.Rational(int(rng0.integers(-300, 300)), 100), s: sp.Rational(int(rng0.integers(10, 300)), 100)}
            worst = max(worst, abs(float(sp.N(dif.subs(vals), 30))))
        ok = worst < 1e-25
    res.add_check("E[u+] symbolic", ok, f"integrate((mu+sx)phi, x>-mu/s) - closed: residual {worst:.1e}")
    cosm = sp.integrate(sp.cos(mu + s * x) * phi, (x, -sp.oo, sp.oo))
    res.add_check("E[cos u] symbolic", sp.simplify(cosm - sp.cos(mu) * sp.exp(-s**2 / 2)) == 0, "")
    # erf: d/dmu E[erf(mu + s x)] = E[2/sqrt(pi) exp(-(mu+sx)^2)] integrates in closed form; compare derivatives
    d_lhs = sp.simplify(sp.integrate(2 / sp.sqrt(sp.pi) * sp.exp(-(mu + s * x) ** 2) * phi, (x, -sp.oo, sp.oo)))
    d_rhs = sp.diff(sp.erf(mu / sp.sqrt(1 + 2 * s**2)), mu)
    res.add_check("E[erf u] symbolic (d/dmu, both vanish at mu=0 by oddness)", sp.simplify(d_lhs - d_rhs) == 0, "")
    # bivariate closed form of docs/theory.md §4 (R1)
    a, b = sp.symbols("a b", real=True)
    rho = sp.symbols("rho", real=True)
    r = sp.sqrt(1 - rho**2)
    P2 = sp.Function("Phi2")(a, b, rho)
    G = ((a * b + rho) * P2 + a * npdf(b) * Phi((a - rho * b) / r) + b * npdf(a) * Phi((b - rho * a) / r)
         + r / (2 * sp.pi) * sp.exp(-(a**2 - 2 * rho * a * b + b**2) / (2 * r**2)))
    phi2 = sp.exp(-(a**2 - 2 * rho * a * b + b**2) / (2 * r**2)) / (2 * sp.pi * r)
    dG = sp.diff(G, rho).subs(sp.Derivative(P2, rho), phi2)
    dG = dG.subs(sp.Subs(sp.Derivative(sp.Function("Phi2")(a, b, sp.Symbol("_xi_3")), sp.Symbol("_xi_3")), sp.Symbol("_xi_3"), rho), phi2)
    diff_expr = sp.simplify(sp.expand(dG - P2))
    ok_sym = diff_expr == 0
    # random-point check at 30 digits if simplify leaves residue
    worst = 0.0
    rng = np.random.default_rng(0)
    if not ok_sym:
        for _ in range(5):
            vals = {a: sp.Rational(int(rng.integers(-200, 200)), 100), b: sp.Rational(int(rng.integers(-200, 200)), 100),
                    rho: sp.Rational(int(rng.integers(-90, 90)), 100)}
            worst = max(worst, abs(float(sp.N(diff_expr.subs(vals).subs(P2.subs(vals), 0), 30))))
        ok_sym = worst < 1e-25
    res.add_check("dG/drho = Phi2 (symbolic, phi2 substituted)", ok_sym, f"residual {worst:.1e}")
    G0 = sp.simplify(G.subs(rho, 0).subs(sp.Function("Phi2")(a, b, 0), Phi(a) * Phi(b)))
    g = lambda z: z * Phi(z) + npdf(z)  # noqa: E731
    res.add_check("G(rho=0) = g(a) g(b)", sp.simplify(sp.expand(G0 - g(a) * g(b))) == 0, "")
    # numeric: library vs the derivative identity (central differences) and the closed form in the bulk
    worst = 0.0
    for _ in range(6):
        av, bv, rv = rng.normal(), rng.normal(), rng.uniform(-0.8, 0.8)
        dd = 1e-4
        fd = (relu_pair_std(av, bv, rv + dd) - relu_pair_std(av, bv, rv - dd)) / (2 * dd)
        worst = max(worst, abs(fd - bvn_cdf(av, bv, rv)))
    res.add_check("numeric dG/drho vs bvn_cdf", worst < 1e-8, f"max |FD - Phi2| = {worst:.1e} (FD error ~1e-9)")
    f_closed = sp.lambdify((a, b, rho, P2), G, "mpmath")
    worst = 0.0
    for _ in range(6):
        av, bv, rv = rng.normal(), rng.normal(), rng.uniform(-0.9, 0.9)
        ref = float(f_closed(av, bv, rv, float(bvn_cdf(av, bv, rv))))
        worst = max(worst, abs(ref - float(relu_pair_std(av, bv, rv))) / abs(ref))
    res.add_check("closed form (THEORY) vs relu_pair_std (bulk)", worst < 1e-12, f"max rel {worst:.1e}")
    m1 = abs(float(ReLU().mean(0.4, 1.3)) - float(closed.subs({mu: 0.4, s: 1.3}).evalf(20)))
    m2 = abs(float(Cos().mean(0.4, 1.3)) - float(np.cos(0.4) * np.exp(-1.3**2 / 2)))
    m3 = abs(float(Erf().mean(0.4, 1.3)) - float(sp.erf(0.4 / sp.sqrt(1 + 2 * 1.69)).evalf(20)))
    res.add_check("numeric 1-D means", max(m1, m2, m3) < 1e-14, f"{max(m1, m2, m3):.1e}")
    return res
