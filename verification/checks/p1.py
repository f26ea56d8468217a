"""P1: ``Hess log p_t(x) = -I/h_t + (a_t^2/h_t^2) Cov[x_0 | x_t = x]`` (docs/theory.md §1).

Predicted: the library's Hessian, which is built from the posterior covariance (the P1 form).
Measured, independently of P1:

* central finite differences of the score (which the library forms from the posterior *mean* only),
  along random unit directions, at points drawn from p_t;
* ``mpmath.diff`` of ``log sum_i exp(-|x - a x_i|^2/(2h))`` at 40 digits, on the dangerous cases
  (h_t down to 1e-8 with queries far from the data, equidistant ties, data far from the origin).

Tolerances: finite differences -> Richardson's estimate ``|FD(d) - FD(2d)|`` (= 3x the O(d^2) truncation
error) plus round-off ``e_s/d``, where ``e_s`` is the score's float64 error from a backward-error model
(the spread of the float64 score when x and the data move by 64 eps relative, 4 draws, plus 64 eps |s|).
mpmath -> the same backward-error model for the Hessian plus the reference's own error (its change between
40 and 60 digits).
"""
from __future__ import annotations

import mpmath as mp
import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density.schedules import OU

from ..protocol import Comparison

NAME = "P1"
TITLE = "Hessian of log p_t = -I/h + (a^2/h^2) posterior covariance"
#: factor on the predictions that must make this check fail (tests/test_verification_checks.py)
PERTURB = 1 + 1e-6

EPS = np.finfo(np.float64).eps
_SIZES = {
    "quick": {"n": 20, "D": 3, "queries_per_time": 12, "times": [0.01, 0.3, 2.0], "mp_dps": 40},
    "full": {"n": 200, "D": 5, "queries_per_time": 100, "times": [1e-3, 0.01, 0.1, 0.3, 1.0, 3.0], "mp_dps": 40},
}
_TRI = [[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]]
_FAR = [[5.0, 5.0], [5.3, 5.1], [4.8, 5.2], [5.1, 4.7]]
#: (label, data, queries, OU time) -- the regimes where a float64 implementation breaks
_MP_CASES = [
    ("h=1e-8, far queries", _TRI, [[30.0, -40.0], [1e3, 7.0], [0.01, 0.02], [-9.0, 3.0]], 5e-9),
    ("h=1e-6", _TRI, [[30.0, -40.0], [1.0, 0.2], [2.0, 1e-6]], 5e-7),
    ("equidistant ties, t=0.05", _TRI, [[1.0, -0.5], [1.0, 0.0], [0.5, 0.85]], 0.05),
    ("data at (5,5), t=1e-4", _FAR, [[5.0, 5.0], [5.15, 5.05], [0.0, 0.0], [100.0, -50.0]], 1e-4),
    ("data at (5,5), t=2", _FAR, [[5.0, 5.0], [3.0, 3.0]], 2.0),
]


def inputs(profile: str) -> dict:
    s = _SIZES[profile]
    return {
        "dataset": f"{s['n']} points ~ N(0, 1.5^2 I_{s['D']}) drawn from the run seed; mpmath cases: "
                   f"triangle {_TRI} and cluster {_FAR}",
        "schedule": "OU",
        "sizes": s,
        "seeds": "data, queries (exact draws from p_t) and directions from ctx.rng('P1', ...)",
        "mp_cases": [{"label": c[0], "t": c[3], "queries": c[2]} for c in _MP_CASES],
    }


def _backward_spread(f, X, x, rng, draws=4, rel=64 * EPS):
    """max over draws of |f(X~, x~) - f(X, x)| when X and x move by ``rel`` relative (per entry)."""
    base = f(X, x)
    worst = np.zeros(base.shape, dtype=np.float64)
    for _ in range(draws):
        Xp = X * (1 + rel * rng.uniform(-1, 1, X.shape))
        xp = x * (1 + rel * rng.uniform(-1, 1, x.shape))
        worst = np.maximum(worst, np.abs(f(Xp, xp) - base))
    return base, worst


def _fd_rows(ctx, s):
    rows = []
    rng = ctx.rng(NAME, "data")
    X = 1.5 * rng.standard_normal((s["n"], s["D"]))
    dens = EmpiricalDensity(X, OU())
    for t in s["times"]:
        r = ctx.rng(NAME, "fd", t)
        x = dens.sample(t, s["queries_per_time"], r)
        v = r.standard_normal(x.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        h = float(dens.schedule.h(t))
        d = 1e-3 * np.sqrt(h)
        score = lambda z: dens.score(z, t)  # noqa: E731
        fd1 = (score(x + d * v) - score(x - d * v)) / (2 * d)
        fd2 = (score(x + 2 * d * v) - score(x - 2 * d * v)) / (4 * d)
        Hv = np.einsum("mde,me->md", dens.hessian(x, t), v)
        s0, spread = _backward_spread(lambda XX, xx: EmpiricalDensity(XX, OU()).score(xx, t), X, x, r)
        e_s = np.linalg.norm(spread, axis=1) + 64 * EPS * np.linalg.norm(s0, axis=1)
        tol = np.linalg.norm(fd1 - fd2, axis=1) + e_s / d
        rows.append(Comparison(
            setting=f"OU t={t:g} (h={h:.3g}), n={s['n']}, D={s['D']}, {len(x)} points from p_t, step {d:.2g}",
            quantity="H v vs central differences of the score",
            predicted=Hv, measured=fd1, tolerance=tol, norm_axis=1,
            source="Richardson |FD(d)-FD(2d)| + round-off e_s/d (e_s: backward-error model, 64 eps)"))
    return rows


def _mp_hessian(X, q, a, h, dps):
    with mp.workdps(dps):
        a_, h_ = mp.mpf(a), mp.mpf(h)
        pts = [[mp.mpf(float(v)) for v in row] for row in X]
        D = len(q)

        def logp(*z):
            return mp.log(mp.fsum(mp.exp(-mp.fsum((z[k] - a_ * p[k]) ** 2 for k in range(D)) / (2 * h_))
                                  for p in pts))

        z0 = [mp.mpf(float(v)) for v in q]
        H = mp.matrix(D, D)
        for i in range(D):
            for j in range(i, D):
                order = [0] * D
                order[i] += 1
                order[j] += 1
                H[i, j] = H[j, i] = mp.diff(logp, z0, tuple(order))
        return H


def _mp_rows(ctx, s):
    rows = []
    dps = s["mp_dps"]
    for label, data, queries, t in _MP_CASES:
        X, x = np.array(data, dtype=np.float64), np.array(queries, dtype=np.float64)
        dens = EmpiricalDensity(X, OU())
        a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
        r = ctx.rng(NAME, "mp", label)
        H, spread = _backward_spread(lambda XX, xx: EmpiricalDensity(XX, OU()).hessian(xx, t), X, x, r)
        ref = np.empty_like(H)
        ref_err = np.empty(len(x))
        for k, q in enumerate(x):
            lo, hi = _mp_hessian(X, q, a, h, dps), _mp_hessian(X, q, a, h, dps + 20)
            with mp.workdps(dps + 20):
                ref_err[k] = float(mp.mnorm(lo - hi, "F"))
            ref[k] = np.array(hi.tolist(), dtype=np.float64)
        tol = (np.linalg.norm(spread, axis=(1, 2)) + 64 * EPS * np.linalg.norm(H, axis=(1, 2))
               + ref_err + EPS * np.linalg.norm(ref, axis=(1, 2)))
        rows.append(Comparison(
            setting=f"{label}: OU t={t:g} (h={h:.3g}), n={len(X)}, {len(x)} queries",
            quantity=f"H vs mpmath.diff of log p ({dps} digits)",
            predicted=H, measured=ref, tolerance=tol, norm_axis=(1, 2),
            source="backward-error model (64 eps) + reference error (40 vs 60 digits) + float64 rounding"))
    return rows


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    return _fd_rows(ctx, s) + _mp_rows(ctx, s)
