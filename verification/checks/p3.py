"""P3 (blurred circle): for n points evenly spaced on a circle of radius rho, as n -> infinity the 1-D ridge
of p_t is the circle of radius r solving ``r = a rho I_1(a rho r/h)/I_0(a rho r/h)`` (docs/theory.md §2).

Predicted: ``rftheory.geometry.ridge.blurred_circle_radius`` (Brent root of the Bessel equation). Measured: the
radii ``|pi(x)|`` of points projected onto the d = 1 ridge by ``rftheory.geometry.ridge.project`` from random starts.
Finite n enters through aliasing only: by Jacobi-Anger the angular sum over n points equals the circle
average plus ``2 sum_k I_{kn}(u) cos(kn theta)``, u = a rho r/h, a relative perturbation
``eps_alias = 2 sum_{k=1..3} I_{kn}(u)/I_0(u)`` (< 1e-28 at the sizes used).

Tolerance per point: ``1.5 (residual + e_s)/beta`` (first-order distance to the zero of the normal score,
beta the normal curvature; 1.5 covers the neglected second-order term, relatively ~|d beta/dr| dr/beta
< 1e-6 at these residuals) + ``4 a rho eps_alias/|F'(r)|`` (aliasing moves the root of F(r) = r - a rho
I_1/I_0 by at most that) + Brent's xtol (1e-15 + 4 eps r) + 64 eps r. ``e_s``: the score's float64 error
from the backward-error model (64 eps, 4 draws). docs/theory.md §2 quotes r = 0.8768 (h = 0.2) and 0.5897 (h = 0.4)
for a = rho = 1 to four digits: those rows (VE schedule, a = 1) use a tolerance of half a unit in the 4th
decimal. Those 4-digit values cannot be judged with power (a 1e-6 perturbation is far inside half a unit
in the 4th decimal), so they are reported as info rows (issue 19); what is judged at round-off instead is the
library's root itself against an independent 30-digit mpmath root of the same equation (same float a, h, rho):
tolerance 2 (xtol + 4 eps r) (brentq's stopping rule) + 16 eps (r + a rho)/|F'(r)| (the float64 error of
F, moved to the root by its slope) + the reference's own error (30 vs 40 digits).
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
from scipy import special

from rftheory import EmpiricalDensity, datasets, ridge
from rftheory.density.schedules import OU, VE

from ..protocol import Comparison

NAME = "P3"
TITLE = "blurred circle: ridge radius r = a rho I1(a rho r/h)/I0(a rho r/h)"
PERTURB = 1 + 1e-6

EPS = np.finfo(np.float64).eps
_QUOTED = {0.2: 0.8768, 0.4: 0.5897}  # docs/theory.md §2, a = rho = 1
_SIZES = {
    "quick": {"n": 64, "rho": 1.0, "ou_times": [0.02, 0.08, 0.15], "ve_h": [0.2, 0.4], "queries": 32},
    "full": {"n": 256, "rho": 1.5, "ou_times": [0.005, 0.02, 0.05, 0.08, 0.12, 0.15], "ve_h": [0.2, 0.4],
             "queries": 256},
}


def inputs(profile: str) -> dict:
    s = _SIZES[profile]
    return {"dataset": f"{s['n']} points evenly spaced on a circle of radius {s['rho']} (a circle of radius 1 "
                       "for the VE rows)",
            "schedule": "OU at ou_times; VE (a = 1, sigma_min 0.01, sigma_max 50) at h in ve_h",
            "sizes": s, "seeds": "query angles and radii from ctx.rng('P3', ...)"}


def _alias(n, u):
    return 2.0 * sum(special.ive(k * n, u) / special.ive(0, u) for k in (1, 2, 3))


def _root_slope(r, a, rho, h):
    k = a * rho / h

    def F(z):
        return z - a * rho * special.i1e(k * z) / special.i0e(k * z)
    d = 1e-6 * r
    return abs(F(r + d) - F(r - d)) / (2 * d)


def _mp_root(h, a, rho, guess, dps):
    """Root of r = a rho I1(a rho r/h)/I0(a rho r/h) at ``dps`` digits (independent of scipy/brentq)."""
    with mp.workdps(dps):
        A, H, R = mp.mpf(a), mp.mpf(h), mp.mpf(rho)
        k = A * R / H
        return mp.findroot(lambda r: r - A * R * mp.besseli(1, k * r) / mp.besseli(0, k * r), mp.mpf(guess))


def _root_row(h, a, rho, r_pred, setting, quoted=None):
    lo, hi = _mp_root(h, a, rho, r_pred, 30), _mp_root(h, a, rho, r_pred, 40)
    ref, ref_err = float(hi), float(abs(lo - hi))
    tol = 2 * (1e-15 + 4 * EPS * r_pred) + 16 * EPS * (r_pred + a * rho) / _root_slope(r_pred, a, rho, h) + ref_err
    rows = [Comparison(setting=setting, quantity="ridge radius: blurred_circle_radius vs 30-digit mpmath root",
                       predicted=r_pred, measured=ref, tolerance=tol,
                       source="round-off: 2 (brentq xtol 1e-15 + 4 eps r) + 16 eps (r + a rho)/|F'(r)| "
                              f"+ mpmath error {ref_err:.1e} (30 vs 40 digits)")]
    if quoted is not None:
        rows.append(Comparison(setting=setting, quantity="ridge radius: THEORY.md's 4-digit value vs the exact root",
                               predicted=quoted, measured=ref, tolerance=5e-5, kind="info",
                               source="reported only: half a unit in the 4th decimal cannot see a 1e-6 error"))
    return rows


def _setting_rows(ctx, X, rho, sched, t, label, m, quoted=None):
    dens = EmpiricalDensity(X, sched)
    a, h = float(sched.a(t)), float(sched.h(t))
    r_pred = ridge.blurred_circle_radius(h, a, rho)
    if not np.isfinite(r_pred):
        raise ValueError(f"P3 setting {label} has no ridge (a^2 rho^2/(2h) <= 1)")
    rng = ctx.rng(NAME, label)
    th = rng.uniform(0, 2 * np.pi, m)
    rad = rng.uniform(0.3, 1.3, m) * r_pred
    x = np.column_stack([rad * np.cos(th), rad * np.sin(th)])
    pr = ridge.project(dens, x, t, 1)
    if not pr.converged.all():
        raise ValueError(f"P3 {label}: {int((~pr.converged).sum())}/{m} projections did not converge "
                         f"(status {sorted(set(pr.status_names))})")
    p = pr.points
    s0 = dens.score(p, t)
    spread = np.zeros(m)
    for _ in range(4):
        Xp = X * (1 + 64 * EPS * rng.uniform(-1, 1, X.shape))
        pp = p * (1 + 64 * EPS * rng.uniform(-1, 1, p.shape))
        spread = np.maximum(spread, np.linalg.norm(EmpiricalDensity(Xp, sched).score(pp, t) - s0, axis=1))
    e_s = spread + 64 * EPS * np.linalg.norm(s0, axis=1)
    radii = np.linalg.norm(p, axis=1)
    alias = _alias(X.shape[0], a * rho * r_pred / h)
    tol = (1.5 * (pr.residual + e_s) / pr.beta + 4 * a * rho * alias / _root_slope(r_pred, a, rho, h)
           + 1e-15 + 4 * EPS * r_pred + 64 * EPS * radii)
    setting = f"{label} (a={a:.4g}, h={h:.4g}), n={X.shape[0]}, rho={rho:g}, {m} projected points"
    rows = [Comparison(setting=setting, quantity="ridge radius: Bessel root vs |pi(x)|",
                       predicted=np.full(m, r_pred), measured=radii, tolerance=tol,
                       source=f"1.5 (residual + e_s)/beta + aliasing {alias:.1e} + Brent xtol + 64 eps r")]
    return rows + _root_row(h, a, rho, r_pred, setting, quoted)


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    rows = []
    X = datasets.circle(s["n"], rho=s["rho"])
    for t in s["ou_times"]:
        rows += _setting_rows(ctx, X, s["rho"], OU(), t, f"OU t={t:g}", s["queries"])
    ve = VE()
    X1 = datasets.circle(s["n"], rho=1.0)
    for h in s["ve_h"]:
        t = float(np.log(h / ve.sigma_min**2) / (2 * np.log(ve.sigma_max / ve.sigma_min)))
        rows += _setting_rows(ctx, X1, 1.0, ve, t, f"VE h={h:g}", s["queries"], quoted=_QUOTED.get(h))
    return rows
