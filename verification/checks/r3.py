"""R3: the error split of a random-feature score model (docs/theory.md §4, rftheory/rf/decomposition.py).

Setting: two modes (+-3, 0), OU, cos features (entire, so Gauss-Hermite in z is exact to round-off),
weight lambda = 1, W0 = A/sqrt(p), W(tau) from the closed-form flow.

* Loss-level Pythagoras ``L(W(tau)) - L(W_inf) = (1/D) tr((W(tau) - W_inf) U (W(tau) - W_inf)^T)``:
  (a) with L from the assembled moments (``rf_model.loss``): tolerance the summation round-off bound
  gamma_n = n eps with n = 2 p^2 terms times the sum of the terms' absolute values;
  (b) with L integrated directly -- ``(1/(nD)) sum_i int lambda E_z |f_W - a x_i|^2 dt`` on the same time
  rule and an nz x nz Gauss-Hermite rule in z -- an independent evaluation of the left side, summed
  summand by summand as ``(r_W - r_inf).(r_W + r_inf)`` (two separately integrated losses would cancel:
  at tau = 20 the difference is 1e-5 of the losses, and a bound on their round-off could not see a 1e-6
  error; issue 19). Tolerance: gamma_n (n = the number of summands) times the sum of the summands'
  absolute values + the z-rule's error estimated by the refined rule (nz + 8 nodes; the rule is exact to
  round-off for cos features, the estimate shows it) + the bound of (a) for the right side.
* Pointwise split: optimization error (s_tau - s_inf) + architectural bias (s_inf - s*) = s_tau - s* at points
  drawn from p_t; tolerance 4 eps (|s_tau| + 2 |s_inf| + |s*|) (three float64 subtractions).
* Normal/tangent parts are orthogonal: |P_perp e|^2 + |P_par e|^2 = |e|^2 per point; tolerance 16 D eps |e|^2
  (round-off of a projection on an eigh-orthonormal frame).
"""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.rf.decomposition import architectural_bias, optimization_error, pythagoras
from rftheory.rf.model import RandomFeatureModel, gradient_flow
from rftheory.rf.moments import time_rule, weight_fn
from rftheory.density.schedules import OU

from ..protocol import Comparison

NAME = "R3"
TITLE = "error split: loss Pythagoras, optimization error + architectural bias, orthogonal normal/tangent parts"
PERTURB = 1 + 1e-6

EPS = np.finfo(np.float64).eps
X2 = np.array([[-3.0, 0.0], [3.0, 0.0]])
_SIZES = {
    "quick": {"p": 10, "K": 2, "T": 2.0, "t0": 1e-2, "n_gl": 6, "nz": 40, "taus": [0.05, 1.0, 20.0],
              "times": [0.05, 0.3, 1.0], "points": 40},
    "full": {"p": 40, "K": 8, "T": 4.0, "t0": 1e-2, "n_gl": 8, "nz": 48, "taus": [0.01, 0.1, 1.0, 10.0, 100.0],
             "times": [0.01, 0.05, 0.3, 1.0, 3.0], "points": 400},
}


def inputs(profile: str) -> dict:
    return {"dataset": "two modes (+-3, 0)", "schedule": "OU, weight 1, posterior-mean parametrization",
            "sizes": _SIZES[profile], "seeds": "model, W0 and query points from ctx.rng('R3', ...)"}


def _direct_loss_diff(model, W, W_inf, data, t0, T, n_gl, nz):
    """L(W) - L(W_inf) integrated directly, summand by summand as (r_W - r_inf).(r_W + r_inf) (no
    cancellation between two large losses): the difference, the number of summands and the sum of the
    summands' absolute values (the round-off bound's scale)."""
    sched = OU()
    nodes, wts = time_rule(t0, T, model.K, model.T, n_gl)
    g, gw = np.polynomial.hermite_e.hermegauss(nz)
    gw = gw / np.sqrt(2 * np.pi)
    Z = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    Wz = np.outer(gw, gw).ravel()
    lam = weight_fn("1")
    dW = W - W_inf
    tot = tot_abs = 0.0
    for t, w in zip(nodes, wts):
        a, h = sched.a_h(t)
        for x in data:
            phi = model.features(a * x + np.sqrt(h) * Z, t)
            d = phi @ dW.T
            terms = np.sum(d * (d + 2 * (phi @ W_inf.T - a * x)), 1)
            tot += w * lam(h) * float(Wz @ terms)
            tot_abs += w * lam(h) * float(Wz @ np.abs(terms))
    k = len(data) * model.D
    return tot / k, nodes.size * len(data) * Z.shape[0] * model.D, tot_abs / k


def _abs_terms(W, mom):
    aW, aU, aV = np.abs(W), np.abs(mom.U), np.abs(mom.V)
    return float(np.einsum("dj,jk,dk->", aW, aU, aW) + 2 * np.sum(aV * aW))


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    p, D = s["p"], 2
    model = RandomFeatureModel(D, p, s["K"], s["T"], activation="cos", rng=ctx.rng(NAME, "model"))
    mom = model.moments(X2, t0=s["t0"], weight="1", T=s["T"], n_gl=s["n_gl"], report=False)
    W0 = ctx.rng(NAME, "W0").standard_normal((D, p)) / np.sqrt(p)
    gf = gradient_flow(mom.U, mom.V, W0)
    W_inf = gf.W_star
    rows = []
    gam = 2 * p * p * EPS
    for tau in s["taus"]:
        W = gf.predict(tau)
        py = pythagoras(mom, W, W_inf)
        dW = W - W_inf
        tol_rhs = gam * (_abs_terms(W, mom) + _abs_terms(W_inf, mom)
                         + float(np.einsum("dj,jk,dk->", np.abs(dW), np.abs(mom.U), np.abs(dW)))) / D
        rows.append(Comparison(
            setting=f"cos p={p}, K={s['K']}, tau={tau:g}", quantity="L(W_tau)-L(W_inf) vs (1/D) tr(dW U dW^T)",
            predicted=py["rhs"], measured=py["lhs"], tolerance=tol_rhs,
            source=f"summation round-off gamma_n = 2 p^2 eps x sum of |terms| (n = {2 * p * p})"))
        Ld, n_terms, abs_sum = _direct_loss_diff(model, W, W_inf, X2, s["t0"], s["T"], s["n_gl"], s["nz"])
        Ld_ref, _, _ = _direct_loss_diff(model, W, W_inf, X2, s["t0"], s["T"], s["n_gl"], s["nz"] + 8)
        quad = abs(Ld - Ld_ref)
        rows.append(Comparison(
            setting=f"cos p={p}, K={s['K']}, tau={tau:g}, {s['nz']}^2 Gauss-Hermite z-nodes",
            quantity="directly integrated DSM loss difference vs (1/D) tr(dW U dW^T)",
            predicted=py["rhs"], measured=Ld, tolerance=n_terms * EPS * abs_sum + quad + tol_rhs,
            source=f"summation round-off gamma_n x sum |summands|, n = {n_terms}; + z-rule error {quad:.1e} "
                   f"({s['nz']} vs {s['nz'] + 8} nodes); + the moment-side bound"))
    dens = EmpiricalDensity(X2, OU())
    W_tau = gf.predict(s["taus"][1])
    f_tau, f_inf = model.score_field(W_tau), model.score_field(W_inf)
    for t in s["times"]:
        x = dens.sample(t, s["points"], ctx.rng(NAME, "points", t))
        opt = optimization_error(f_tau, f_inf, dens, x, t, 1)
        bias = architectural_bias(f_inf, dens, x, t, 1)
        st, si, ss = f_tau.score(x, t), f_inf.score(x, t), dens.score(x, t)
        rows.append(Comparison(
            setting=f"t={t:g}, {len(x)} points from p_t, tau={s['taus'][1]:g}",
            quantity="optimization error + architectural bias vs s_tau - s*",
            predicted=opt.error + bias.error, measured=st - ss,
            tolerance=4 * EPS * (np.abs(st) + 2 * np.abs(si) + np.abs(ss)),
            source="round-off: 4 eps (|s_tau| + 2|s_inf| + |s*|), three subtractions"))
        for lab, sp in (("optimization error", opt), ("architectural bias", bias)):
            e2 = np.sum(sp.error**2, 1)
            rows.append(Comparison(
                setting=f"t={t:g}, {len(x)} points, d=1", quantity=f"{lab}: |P_perp e|^2 + |P_par e|^2 vs |e|^2",
                predicted=sp.normal_norm**2 + sp.tangent_norm**2, measured=e2, tolerance=16 * D * EPS * e2,
                source="round-off of a projection on an eigh-orthonormal frame: 16 D eps |e|^2"))
    return rows
