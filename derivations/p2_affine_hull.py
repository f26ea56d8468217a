"""P2: data sharing a normal component c. Then ``P_N s* = -(P_N x - a c)/h`` and ``H`` restricted to N is
``-I/h`` (no coupling to the hull directions), for all x and t (docs/theory.md §2).

sympy: three points ``(x_i, c)`` on a horizontal line in D = 2 (hull direction e_1, normal e_2); the score's
e_2 component and the Hessian's e_2 row are differentiated from ``log sum_i exp(-|x - a x_i|^2/(2h))`` and
simplify to the stated forms. Numerically: the ridge projection of the library lands on the line.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Derivation

NAME = "P2"
TITLE = "score and Hessian normal to the affine hull of the data"


def derive(rng_seed: int = 0) -> Derivation:
    from rftheory import EmpiricalDensity, ridge

    a, h = sp.symbols("a h", positive=True)
    x, y, c = sp.symbols("x y c", real=True)
    xs = sp.symbols("x1:4", real=True)
    ell = [-((x - a * xi) ** 2 + (y - a * c) ** 2) / (2 * h) for xi in xs]
    logp = sp.log(sum(sp.exp(l) for l in ell))
    E = sp.symbols("E1:4", positive=True)
    rep = {sp.exp(l): Ei for l, Ei in zip(ell, E)}
    sy = sp.cancel(sp.diff(logp, y).xreplace(rep))
    Hyy = sp.cancel(sp.diff(logp, y, 2).xreplace(rep))
    Hxy = sp.cancel(sp.diff(logp, x, y).xreplace(rep))
    res = Derivation(NAME, TITLE, statement="P_N s* = -(P_N x - a c)/h;  H_NN = -I/h;  H_NA = 0",
                     latex=r"P_N s^* = -\frac{P_N x - a_t c}{h_t},\quad P_N H P_N = -\frac{1}{h_t} I_N")
    res.add_check("normal score", sp.simplify(sy + (y - a * c) / h) == 0, f"d/dy log p = {sp.simplify(sy)}")
    res.add_check("normal Hessian", sp.simplify(Hyy + 1 / h) == 0 and Hxy == 0,
                  f"d2/dy2 log p = {sp.simplify(Hyy)}, d2/dxdy log p = {Hxy}")
    # numeric: projections onto the d = 1 ridge of three collinear points land on the line a_t * hull
    rng = np.random.default_rng(rng_seed)
    X = np.column_stack([rng.normal(size=3), np.full(3, 0.7)])
    dens = EmpiricalDensity(X)
    t = 0.5
    at, ht = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    q = np.column_stack([rng.uniform(-1, 1, 30), at * 0.7 + np.sqrt(ht) * rng.normal(size=30)])
    pr = ridge.project(dens, q, t, 1, tol=1e-12)
    off = np.abs(pr.points[pr.converged, 1] - at * 0.7).max()
    res.add_check("numeric", pr.converged.mean() > 0.9 and off < 1e-10,
                  f"{pr.converged.sum()}/30 converged; max distance from a_t * hull {off:.1e} (< 1e-10)")
    return res
