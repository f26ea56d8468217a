"""R1: exact Gaussian moments of the activations (docs/theory.md §4, rftheory/rf/features.py).

Predicted: ``Activation.mean(mu, s) = E[sigma(u)]`` and ``Activation.pair(mu_u, s_u, mu_v, s_v, rho) =
E[sigma(u) sigma(v)]`` for relu, erf, cos (closed forms) and tanh (Gauss-Hermite fallback).

Measured, two independent ways:

* Monte Carlo: N correlated normal pairs (``ctx.rng``) per case, sample means of sigma(u) and sigma(u)sigma(v).
  Tolerance ``z * SE``, the SE NOT from the judged draws (issue 19): an independent pilot of 64 replicates
  of 2500 draws each (``ctx.rng(NAME, "pilot", ...)``) gives the variance of a replicate's mean by the
  robust median-of-means estimator (:func:`verification.stats.pilot_se`, 8 blocks), scaled to the N judged
  draws (= N/2500 replicates); z the two-sided Student-t quantile with 32 dof (half the pilot replicates:
  conservative for the robust variance) at family-wise alpha = 1e-3, Bonferroni over every Monte Carlo
  comparison in the check. These rows declare their own perturbation ``MC_PERTURB`` = 1.1 (a Monte Carlo
  row cannot resolve the check's 1 + 1e-6, which the mpmath rows are held to); every case has moments of
  at least 0.2 standard deviations of a draw, so a 10 % error is > 3 tolerances. (The former case mu = 0
  predicted E[erf(u)] = E[tanh(u)] = 0, which no factor can move.)
* mpmath (20 digits quick, 30 full; tanh 20) on the dangerous points (rho = +-0.999, |mu|/s = 30): a 1-D
  tanh-sinh integral over x after doing the conditional expectation over the other variable in closed form at
  full precision
  (relu: ``r g((b + rho x)/r)``, erf: ``erf(.../sqrt(1 + 2 s_v^2 (1-rho^2)))``, cos: ``cos(.) e^{-s_v^2(1-rho^2)/2}``),
  integrand rescaled to a peak of 1 (mpmath stops on an absolute error). Compared relative to |reference|.
  Tolerance: round-off -- a backward-error model (the spread of the float64 value when (mu, s, rho) move
  by 64 eps relative, 4 draws; this is the conditioning, e.g. |alpha|^2 * 64 eps at alpha = -30) + 64 eps
  + the reference's own error (its change when the precision is raised: 20 -> 25 digits quick, 30 -> 45 full,
  tanh 20 -> 25). For tanh (a quadrature, not a closed form) the library's own a-posteriori error estimate (n vs
  2n nodes) is added: it is not round-off.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np

from rftheory.rf.features import get_activation

from ..protocol import Comparison
from ..stats import DEFAULT_ALPHA, critical_value, pilot_se

NAME = "R1"
TITLE = "Gaussian moments of relu/erf/cos/tanh: closed forms vs Monte Carlo and mpmath"
PERTURB = 1 + 1e-6
MC_PERTURB = 1.1          # the Monte Carlo rows' own declared perturbation (Comparison.power)

EPS = np.finfo(np.float64).eps
ACTS = ("relu", "erf", "cos", "tanh")
#: Monte Carlo cases (mu_u, s_u, mu_v, s_v, rho)
_MC_CASES = [(0.3, 1.0, -0.5, 2.0, 0.6), (2.0, 0.5, 1.0, 1.5, -0.999), (-1.0, 1.2, 0.4, 0.3, 0.999),
             (0.7, 1.2, 0.8, 1.0, 0.0)]
PILOT_REPS, PILOT_DRAWS, PILOT_BLOCKS = 64, 2500, 8
#: dangerous points for the mpmath reference
_MP_CASES = [(-30.0, 1.0, 0.7, 1.0, 0.999), (30.0, 1.0, -2.0, 1.0, -0.999), (2.5, 1.0, 0.7, 1.0, 0.999),
             (-3.0, 0.1, 30.0, 1.0, -0.999), (1.0, 1.0, -1.0, 1.0, -0.999), (0.3, 2.0, -0.2, 0.5, 0.999)]
#: tanh's reference is a nested tanh-sinh integral: 38 s per point at 20 digits, far more at 30/45 (a full run
#: had not finished its six points after 40 min). Its moments are a Gauss-Hermite quadrature whose own error
#: estimate (~1e-13) enters the tolerance, so 20 digits checked against 25 is ample.
_TANH_DPS = (20, 5)
_SIZES = {"quick": {"mc_draws": 400_000, "mp_dps": 20, "mp_dps_check": 5, "mp_acts": ["relu", "erf", "cos"]},
          "full": {"mc_draws": 4_000_000, "mp_dps": 30, "mp_dps_check": 15, "mp_acts": ["relu", "erf", "cos", "tanh"]}}


def inputs(profile: str) -> dict:
    return {"dataset": "none (moments of scalar Gaussians)", "schedule": "none", "sizes": _SIZES[profile],
            "seeds": "Monte Carlo normals and backward-error draws from ctx.rng('R1', ...)",
            "mc_cases": _MC_CASES, "mp_cases": _MP_CASES}


def _draws(rng, n, case):
    mu_u, s_u, mu_v, s_v, rho = case
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho * rho) * rng.standard_normal(n)
    return mu_u + s_u * x, mu_v + s_v * y


def _mc_rows(ctx, N):
    rows = []
    n_comp = len(ACTS) * len(_MC_CASES) * 2
    z = critical_value(DEFAULT_ALPHA, n_comp, dof=PILOT_REPS // 2)
    n_rep = N / PILOT_DRAWS                      # the judged mean is a mean of N/2500 replicates' worth
    for act in ACTS:
        f = get_activation(act)
        for k, case in enumerate(_MC_CASES):
            mu_u, s_u, mu_v, s_v, rho = case
            u, v = _draws(ctx.rng(NAME, "mc", act, k), N, case)
            fu, fv = f(u), f(v)
            pu, pv = _draws(ctx.rng(NAME, "pilot", act, k), PILOT_REPS * PILOT_DRAWS, case)
            pfu, pfv = f(pu), f(pv)
            reps = lambda a: a.reshape(PILOT_REPS, PILOT_DRAWS).mean(1)  # noqa: E731
            se_u = float(pilot_se(reps(pfu), 1, PILOT_BLOCKS)) / np.sqrt(n_rep)
            se_p = float(pilot_se(reps(pfu * pfv), 1, PILOT_BLOCKS)) / np.sqrt(n_rep)
            src = (f"z={z:.2f} (t, {PILOT_REPS // 2} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over {n_comp}) x SE "
                   f"of the mean of N={N} draws, the SE from an independent pilot ({PILOT_REPS} x {PILOT_DRAWS} "
                   f"draws, median-of-means variance, {PILOT_BLOCKS} blocks)")
            setting = f"{act}: mu=({mu_u:g},{mu_v:g}) s=({s_u:g},{s_v:g}) rho={rho:g}, N={N}"
            rows.append(Comparison(setting=setting, quantity="E[sigma(u)] closed form vs Monte Carlo",
                                   predicted=float(f.mean(mu_u, s_u)), measured=float(fu.mean()),
                                   tolerance=z * se_u, source=src, power=MC_PERTURB))
            rows.append(Comparison(setting=setting, quantity="E[sigma(u)sigma(v)] vs Monte Carlo",
                                   predicted=float(f.pair(mu_u, s_u, mu_v, s_v, rho)),
                                   measured=float((fu * fv).mean()), tolerance=z * se_p, source=src,
                                   power=MC_PERTURB))
    return rows


def _rg(c):
    return c * mp.ncdf(c) + mp.npdf(c)


def _mp_pair(act, mu_u, s_u, mu_v, s_v, rho, dps):
    """E[sigma(u) sigma(v)] = int phi(x) sigma(mu_u + s_u x) E[sigma(v) | x] dx at ``dps`` digits."""
    with mp.workdps(dps + 5):
        mu_u, s_u, mu_v, s_v, rho = (mp.mpf(v) for v in (mu_u, s_u, mu_v, s_v, rho))
        r = mp.sqrt((1 - rho) * (1 + rho))
        if act == "relu":
            a, b = mu_u / s_u, mu_v / s_v

            def f(x):
                return s_u * s_v * (a + x) * mp.npdf(x) * r * _rg((b + rho * x) / r)
            lo = -a
        elif act == "erf":
            q = mp.sqrt(1 + 2 * s_v**2 * (1 - rho**2))

            def f(x):
                return mp.npdf(x) * mp.erf(mu_u + s_u * x) * mp.erf((mu_v + s_v * rho * x) / q)
            lo = -mp.inf
        elif act == "cos":
            damp = mp.exp(-s_v**2 * (1 - rho**2) / 2)

            def f(x):
                return mp.npdf(x) * mp.cos(mu_u + s_u * x) * mp.cos(mu_v + s_v * rho * x) * damp
            lo = -mp.inf
        else:  # tanh: nested (inner 1-D over the independent part)
            def f(x):
                inner = mp.quad(lambda y: mp.npdf(y) * mp.tanh(mu_v + s_v * (rho * x + r * y)), [-mp.inf, 0, mp.inf])
                return mp.npdf(x) * mp.tanh(mu_u + s_u * x) * inner
            lo = -mp.inf
        pts = set()
        if lo == -mp.inf:
            pts.update(mp.mpf(k) for k in (-12, -4, -1, 0, 1, 4, 12))
            start = -mp.inf
        else:
            w = 1 / max(1, abs(lo))
            pts.update(lo + w * k for k in (0, 0.3, 3, 30, 300))
            pts.update(mp.mpf(k) for k in (-12, -6, -3, -1, 0, 1, 3, 6, 12) if k > lo)
            if rho != 0:
                x0 = -b / rho
                pts.update(x0 + k * r / abs(rho) for k in (-10, -1, 0, 1, 10) if x0 + k * r / abs(rho) > lo)
            start = lo
        pts = sorted(p for p in pts if p > start) if start != -mp.inf else sorted(pts)
        nodes = ([start] if start != -mp.inf else [-mp.inf]) + pts + [mp.inf]
        peak = max(abs(f(p)) for p in pts) or mp.mpf(1)
        val = mp.quad(lambda x: f(x) / peak, nodes)
        return val * peak


def _spread(fn, args, rng, draws=4, rel=64 * EPS):
    base = float(fn(*args))
    worst = 0.0
    for _ in range(draws):
        pa = [v * (1 + rel * rng.uniform(-1, 1)) for v in args]
        pa[-1] = float(np.clip(pa[-1], -1.0, 1.0))
        worst = max(worst, abs(float(fn(*pa)) - base))
    return base, worst


def _mp_rows(ctx, s):
    rows = []
    for act in s["mp_acts"]:
        dps, dps_check = _TANH_DPS if act == "tanh" else (s["mp_dps"], s["mp_dps_check"])
        f = get_activation(act)
        pred, meas, tol = [], [], []
        for k, args in enumerate(_MP_CASES):
            v, spread = _spread(f.pair, list(args), ctx.rng(NAME, "mp", act, k))
            lo = _mp_pair(act, *args, dps)
            hi = _mp_pair(act, *args, dps + dps_check)
            ref = float(hi)
            with mp.workdps(dps + 25):
                ref_err = float(abs(lo - hi))
            extra = float(f.error_estimate(*args)) if act == "tanh" else 0.0
            sc = abs(ref)
            pred.append(v / sc)
            meas.append(ref / sc)
            tol.append((spread + 64 * EPS * abs(v) + ref_err + EPS * sc + 2 * extra) / sc)
        rows.append(Comparison(
            setting=f"{act}: {len(_MP_CASES)} dangerous points (rho=+-0.999, |mu|/s=30), relative to |ref|",
            quantity=f"E[sigma(u)sigma(v)] vs mpmath ({dps} digits)",
            predicted=np.array(pred), measured=np.array(meas), tolerance=np.array(tol),
            source="round-off: backward-error model (64 eps relative on mu, s, rho) + 64 eps + mpmath error "
                   f"({dps} vs {dps + dps_check} digits)" + (" + 2 x Gauss-Hermite error estimate (n vs 2n)"
                                                     if act == "tanh" else "")))
    return rows


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    return _mc_rows(ctx, s["mc_draws"]) + _mp_rows(ctx, s)
