"""V1: the proxy score's posterior covariance, ``C = Cov[s~ | x] = (a^2/h^2) Cov[x_0 | x] = H + I/h``.

The proxy score of training point i is ``s~_i = (a x_i - x)/h``. Symbolically, for n = 2 and 3 points in
D = 2 (the trick of p1_hessian.py: each Gaussian factor ``exp(l_i)`` is renamed to a positive symbol E_i,
after which every difference is a rational function that must cancel to 0):

1. ``sum_i w_i s~_i`` equals the gradient of ``log sum_i exp(l_i)`` (the posterior mean of s~ is s*);
2. ``sum_i w_i (s~_i - s*)(s~_i - s*)^T`` equals ``(a^2/h^2) sum_i w_i (x_i - m)(x_i - m)^T``;
3. it equals the Hessian of ``log sum_i exp(l_i)`` plus ``I/h``.

The compiled definition (2.) is then compared with ``rftheory.gtv.variance.proxy_covariance`` at random points.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation
from ._mixture import gaussian_mixture

NAME = "V1"
TITLE = "Proxy-score covariance C = Cov[s~|x] = (a^2/h^2) Sigma_t = H_t + I/h_t"


def symbolic_proxy(n: int, D: int = 2):
    """``(x, pts, a, h, ell, s_direct, s_mean, C_def, C_sigma, H_direct)`` for n points in D dims."""
    x, pts, a, h, ell, logp, w = gaussian_mixture(n, D)
    s_direct = sp.Matrix([sp.diff(logp, xi) for xi in x])
    H_direct = sp.hessian(logp, list(x))
    proxies = [(a * p - x) / h for p in pts]
    s_mean = sum((wi * q for wi, q in zip(w, proxies)), sp.zeros(D, 1))
    C_def = sum((wi * (q - s_mean) * (q - s_mean).T for wi, q in zip(w, proxies)), sp.zeros(D, D))
    m = sum((wi * p for wi, p in zip(w, pts)), sp.zeros(D, 1))
    C_sigma = (a**2 / h**2) * sum((wi * (p - m) * (p - m).T for wi, p in zip(w, pts)), sp.zeros(D, D))
    return x, pts, a, h, ell, s_direct, s_mean, C_def, C_sigma, H_direct


def derive(rng_seed: int = 0) -> Derivation:
    from rftheory import EmpiricalDensity
    from rftheory.density.schedules import GTVFig1, OU
    from rftheory.gtv.variance import proxy_covariance

    res = Derivation(NAME, TITLE,
                     statement="Cov[(a x_0 - x)/h | x_t = x] = (a^2/h^2) Cov[x_0 | x] = Hess log p_t(x) + I/h; "
                               "E[(a x_0 - x)/h | x] = grad log p_t(x)",
                     latex=r"C(x,t)=\operatorname{Cov}\!\left[\tfrac{a_t x_0 - x}{h_t}\,\middle|\,x\right]"
                           r"=\frac{a_t^2}{h_t^2}\Sigma_t(x)=\nabla^2\log p_t(x)+\frac{I}{h_t}")
    rng = np.random.default_rng(rng_seed)
    for n in (2, 3):
        x, pts, a, h, ell, s_dir, s_mean, C_def, C_sig, H_dir = symbolic_proxy(n)
        E = sp.symbols(f"E0:{n}", positive=True)
        sub = {sp.exp(e): Ei for e, Ei in zip(ell, E)}

        def zero(M):
            return all(sp.cancel(e) == 0 for e in M.xreplace(sub))

        res.add_check(f"mean is the score n={n}", zero(s_mean - s_dir), "cancel(E[s~|x] - grad log p) == 0")
        res.add_check(f"C = (a/h)^2 Sigma n={n}", zero(C_def - C_sig), "cancel(Cov[s~] - (a/h)^2 Sigma) == 0")
        res.add_check(f"C = H + I/h n={n}", zero(C_def - (H_dir + sp.eye(2) / h)),
                      "cancel(Cov[s~] - (Hess log p + I/h)) == 0")
        # compiled definition vs the library, two schedules
        args = list(x) + [s for p in pts for s in p] + [a, h]
        f = sp.lambdify(args, C_def, "numpy")
        worst = 0.0
        for sched in (OU(), GTVFig1()):
            for _ in range(4):
                data = rng.normal(size=(n, 2))
                q = rng.normal(size=2)
                t = float(rng.uniform(0.05, 0.9))
                av, hv = float(sched.a(t)), float(sched.h(t))
                Cs = np.array(f(*q, *data.ravel(), av, hv), dtype=float)
                Cn = proxy_covariance(EmpiricalDensity(data, sched), q[None], t)[0]
                scale = np.abs(Cs).max() + 1.0 / hv  # the scale of H, whose round-off C inherits
                worst = max(worst, float(np.abs(Cs - Cn).max() / scale))
        res.add_check(f"numeric n={n}", worst < 1e-12,
                      f"max |C_sympy - C_lib| / (|C| + 1/h) = {worst:.2e} (< 1e-12)")
    return res
