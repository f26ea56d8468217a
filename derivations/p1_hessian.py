"""P1: the Hessian of log p_t is the shifted posterior covariance, ``H = -I/h + (a^2/h^2) Cov[x_0 | x]``.

Derived symbolically for n = 2 and n = 3 training points in D = 2: sympy differentiates
``log sum_i exp(-|x - a x_i|^2 / (2h))`` twice and the difference from the covariance form simplifies
to zero. The generated Hessian is then compiled (lambdify) and compared with
``rftheory.EmpiricalDensity.hessian`` at random points.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation
from ._mixture import gaussian_mixture

NAME = "P1"
TITLE = "Hessian of log p_t = -I/h + (a^2/h^2) posterior covariance"


def symbolic_hessian(n: int, D: int = 2):
    """Return (x symbols, data symbols, a, h, H_direct, H_cov) for n points in D dimensions."""
    x, pts, a, h, ell, logp, w = gaussian_mixture(n, D)
    H_direct = sp.hessian(logp, list(x))
    mean = sum((wi * p for wi, p in zip(w, pts)), sp.zeros(D, 1))
    cov = sum(((wi * (p - mean) * (p - mean).T) for wi, p in zip(w, pts)), sp.zeros(D, D))
    H_cov = -sp.eye(D) / h + (a**2 / h**2) * cov
    return x, pts, a, h, H_direct, H_cov


def derive(rng_seed: int = 0) -> Derivation:
    from rftheory import EmpiricalDensity
    from rftheory.density.schedules import OU

    res = Derivation(NAME, TITLE,
                     statement="Hess log p_t(x) = -I/h_t + (a_t^2/h_t^2) * sum_i w_i (x_i - m)(x_i - m)^T",
                     latex=r"\nabla^2 \log p_t(x) = -\frac{I}{h_t} + \frac{a_t^2}{h_t^2}\,"
                           r"\operatorname{Cov}[x_0 \mid x_t = x]")
    rng = np.random.default_rng(rng_seed)
    sched = OU()
    for n in (2, 3):
        x, pts, a, h, Hd, Hc = symbolic_hessian(n)
        # symbolic identity: name each Gaussian factor exp(l_i) = E_i (positive symbols); the difference
        # is then a rational function of E, x, y, a, h and must cancel to 0 entry by entry
        ell = [-((x - a * p).dot(x - a * p)) / (2 * h) for p in pts]
        E = sp.symbols(f"E0:{n}", positive=True)
        diff = (Hd - Hc).xreplace({sp.exp(e): Ei for e, Ei in zip(ell, E)}).applyfunc(sp.cancel)
        res.add_check(f"symbolic n={n}", all(e == 0 for e in diff), "cancel(H_direct - H_cov) == 0")
        # compiled derivation vs the library
        args = list(x) + [s for p in pts for s in p] + [a, h]
        f = sp.lambdify(args, Hd, "numpy")
        worst = 0.0
        for _ in range(5):
            data = rng.normal(size=(n, 2))
            q = rng.normal(size=2)
            t = float(rng.uniform(0.05, 2.0))
            av, hv = float(sched.a(t)), float(sched.h(t))
            Hs = np.array(f(*q, *data.ravel(), av, hv), dtype=float)
            Hn = EmpiricalDensity(data, sched).hessian(q[None], t)[0]
            worst = max(worst, float(np.abs(Hs - Hn).max() / np.abs(Hs).max()))
        res.add_check(f"numeric n={n}", worst < 1e-12, f"max relative difference {worst:.2e} (< 1e-12)")
    return res
