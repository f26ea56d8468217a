"""V4: the first-order sandwich / V-kernel vs the measured ensemble covariance of the score (docs/theory.md §5).

Setting ([GTV] Fig. 2): data {-1, 0, 1}, linear VP, t in [eps, 1] with eps = 1e-2, 6 x 6 Gaussian features
(F = 36), ridge 0.1; 39 test points z_j (13 x-values in [-1.2, 1.2] x t in {0.05, 0.2, 0.5}).

Prediction (complete first-order form, ``gtv.ensembles`` module docstring): the score of a fit is
``s_hat = (a/h) W phi - x/h``, so the summed score variance over the test points is ``|W_n - Wbar|^2_K`` with
``K = sum_j (a_j/h_j)^2 phi_j phi_j^T``, and to first order ``Cov(W_P) = A^{-1} S A^{-1}/P`` with
``S = Cov(lam r phi^T)``: the summed variance is ``c_K/P``, ``c_K = tr(A^{-1} K A^{-1} S)`` -- docs/theory.md's
``(1/P){E[lam^2 K (C + b b^T) K] - M M^T}`` summed over the test points. ``c_K`` and the variance of one
fit's ``P |W_n - W_inf|^2_K`` are computed by deterministic quadrature (geometric Gauss-Legendre panels in t,
Gauss-Legendre in z, exact sum over the data: :func:`verification.checks.v3.population`); the quadrature error
is the change from half the panels.

Judged: at F/P = 1/256 (quick), measured (sample variance over N fits, summed over the test points) x P / c_K = 1.
Tolerance, none of it from the fits judged: z x the analytic SE (t quantile, alpha = 1e-3; the variance is
first order, so it is inflated by its excess measured on the F/P = 1/64 ensemble, / 4: the SD over the fits
there is 1.3-1.4 x the analytic one, from heavy tails) + the next-order
O(F/P) term, bounded by linear extrapolation from an independent ensemble at F/P = 1/64:
(|r_1/64 - 1| + z SE_1/64)/4 (conservative if the excess grows at least linearly in F/P: about 0.02 at
1/256, 0.03-0.14 at 1/64 over seeds, 0.4 at 1/16) + the quadrature error. Declared perturbation 1.25 (a 25 %
error): the tolerance is 0.06-0.09, so a factor 1.1 is not always rejected -- the next-order bound is the
limit, since the per-fit squared norms are heavy-tailed at F/P = 1/64 (rare fits whose Gram is poorly sampled
at small t, lam = a^2/h ~ 500). The ``full`` profile judges F/P = 1/1024 with the next-order bound from
1/256 (16000 fits each): measured 1.008, tolerance 0.044 (seed 0), so 1.1 is rejected
(tests/test_verification_checks.py::test_v4_full_profile_rejects_a_10_percent_error, slow).
Info: ``gtv.ensembles.vkernel_comparison`` (population by Monte Carlo over Q triples) at every F/P: measured /
complete form and measured / C-only form ``(1/P) E[lam^2 K C K]`` (the expressive-feature limit b = 0, up to
3x off at small t); the prediction is asymptotic only and underestimates the covariance as F/P grows.
"""
from __future__ import annotations

import numpy as np

from rftheory.gtv.ensembles import fit_ensemble, gaussian_features, vkernel_comparison
from rftheory.density.schedules import LinearVP

from ..protocol import Comparison
from ..stats import DEFAULT_ALPHA, critical_value
from .v3 import population, var_pd2

NAME = "V4"
TITLE = "first-order sandwich / V-kernel vs measured ensemble score covariance (asymptotic in F/P)"
PERTURB = 1.25  # a 25 % error; 1.1 is not always rejected at quick size (tests: _LACKS_POWER)

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS_T, RIDGE = 1e-2, 0.1
INFO_FPS = [1 / 16, 1 / 4, 1.0]
# (judged, next-order) F/P: quick 1/256 and 1/64 (rejects a 25 % error); full 1/1024 and 1/256, where the
# next-order bound shrinks to 0.017: measured 1.008, tolerance 0.044, so 1.1 fails (issue 19, seed 0, 8 CPU-min)
_SIZES = {"quick": {"n_x": 6, "n_t": 6, "F_over_P": (1 / 256, 1 / 64), "N_judged": 6000, "N_next": 4000,
                    "N_info": 100, "Q": 30_000, "t_panels": 32, "z_panels": 64},
          "full": {"n_x": 6, "n_t": 6, "F_over_P": (1 / 1024, 1 / 256), "N_judged": 16000, "N_next": 16000,
                   "N_info": 400, "Q": 200_000, "t_panels": 32, "z_panels": 64}}


def inputs(profile: str) -> dict:
    return {"dataset": "{-1, 0, 1}", "schedule": f"linear VP, t in [{EPS_T}, 1], ridge {RIDGE}",
            "sizes": dict(_SIZES[profile], F_over_P_info=INFO_FPS),
            "seeds": "fits and population draws from ctx.rng('V4', ...)"}


def test_points():
    return np.repeat(np.linspace(-1.2, 1.2, 13)[:, None], 3, axis=0), np.tile([0.05, 0.2, 0.5], 13)


def rows_from(F, N, c_K, q_err, r, var, sd_next, fps=(1 / 256, 1 / 64)):
    """The judged row from ``r`` = measured summed variance x P / c_K at the (judged, next) F/P, the analytic
    variances ``var`` of one fit's P |dW|^2_K there, and ``sd_next``, the SD over the fits of the independent
    next-order ensemble (per fit, / c_K)."""
    (Nj, Nn), (rj, rn), (fj, fn) = N, r, fps
    k = round(fn / fj)
    z = critical_value(DEFAULT_ALPHA, 2, dof=min(Nj, Nn) - 1)
    an_n = float(np.sqrt(var[1]) / c_K)
    # the analytic variance is first order; its next-order excess, measured on the independent next-order
    # ensemble, is extrapolated linearly in F/P to the judged one (x 1/k)
    infl = 1.0 + max(0.0, (sd_next / an_n) ** 2 - 1.0) * fj / fn
    se_j = float(np.sqrt(var[0] * infl / Nj) / c_K)
    se_n = sd_next / np.sqrt(Nn)
    nxt = (abs(rn - 1) + z * se_n) * fj / fn
    tol = z * se_j + nxt + q_err / c_K
    return [Comparison(
        setting=f"F/P=1/{round(1 / fj)} (F={F}, P={round(F / fj)}), N={Nj} fits, 39 test points",
        quantity="measured summed score variance x P / c_K (complete first-order form, quadrature)",
        predicted=1.0, measured=rj, tolerance=tol,
        source=f"z={z:.2f} (t, {min(Nj, Nn) - 1} dof, alpha={DEFAULT_ALPHA:g} over 2 ensembles) x SE {se_j:.4f} "
               f"(analytic variance of one fit's P|dW|^2_K x {infl:.3f}, its next-order excess from the F/P = "
               f"1/{round(1 / fn)} ensemble / {k}; none from the fits judged) + next-order O(F/P) bound {nxt:.4f} "
               f"= (|r - 1| + z SE)/{k} from an independent ensemble of {Nn} fits at F/P = 1/{round(1 / fn)} "
               f"(r = {rn:.4f}, SE {se_n:.4f} "
               f"over its fits, SD {sd_next:.3f} vs analytic {an_n:.3f}) + quadrature {q_err / c_K:.1e}")]


def _summed_variance(W, K):
    """The sample variance over the fits summed over the test points, and each fit's share (x N)."""
    dev = W - W.mean(0, keepdims=True)
    per = np.einsum("ndf,fg,ndg->n", dev, K, dev) * W.shape[0] / (W.shape[0] - 1)
    return float(per.mean()), per


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    sched = LinearVP()
    feats = gaussian_features(1, s["n_x"], s["n_t"], (-1.5, 1.5), (EPS_T, 1.0))
    X, T = test_points()
    ph = feats(X, T)
    c = sched.a(T) / sched.h(T)
    K = (ph * (c * c)[:, None]).T @ ph
    pop = dict(t_range=(EPS_T, 1.0), ridge=RIDGE, metric=K, geometric=True, data=DATA)
    _, _, c_K, var_q, tr2 = population(feats, sched, s["t_panels"], s["z_panels"], **pop)
    q_err = abs(population(feats, sched, s["t_panels"] // 2, s["z_panels"] // 2, **pop)[2] - c_K)
    r, var, info, sd_next = [], [], [], None
    fj, fn = s["F_over_P"]
    for fp, n in ((fj, s["N_judged"]), (fn, s["N_next"])) + tuple((f, s["N_info"]) for f in INFO_FPS):
        P = int(round(feats.F / fp))
        ens = fit_ensemble(feats, DATA, sched, P, n, EPS_T, 1.0, ridge=RIDGE, rng=ctx.rng(NAME, "fit", fp))
        sv, per = _summed_variance(ens.W, K)
        if fp in (fj, fn):
            r.append(sv * P / c_K)
            var.append(var_pd2(P, var_q, tr2))
        if fp == fn:
            sd_next = float(per.std(ddof=1) * P / c_K)
        info.append((fp, n, P * sv / c_K,
                     vkernel_comparison(ens, X, T, Q=s["Q"], rng=ctx.rng(NAME, "pop", fp))))
    rows = rows_from(feats.F, (s["N_judged"], s["N_next"]), c_K, q_err, r, var, sd_next, (fj, fn))
    for fp, n, rq, cmp in info:
        se = cmp.ratio_se * cmp.ratio_sandwich / cmp.ratio
        rows.append(Comparison(
            setting=f"F/P={fp:.4g}, N={n}", quantity="measured / complete first-order form (info)",
            predicted=1.0, measured=rq, tolerance=0.0, kind="info",
            source=f"reported only: against c_K by quadrature; against vkernel_comparison's Monte Carlo "
                   f"population (Q = {s['Q']}) {cmp.ratio_sandwich:.3f} +- {se:.3f}"))
        rows.append(Comparison(
            setting=f"F/P={fp:.4g}, N={n}", quantity="measured / C-only form (1/P) E[lam^2 K C K] (info)",
            predicted=1.0, measured=cmp.ratio, tolerance=0.0, kind="info",
            source=f"reported only; SE {cmp.ratio_se:.3f}; {cmp.note}"))
    rows.append(f"c_K = {c_K:.6g} (quadrature error {q_err:.1e}); analytic SD of one fit's P|dW|^2_K / c_K: "
                f"{np.sqrt(var[0]) / c_K:.3f} at F/P = 1/{round(1 / fj)}, {np.sqrt(var[1]) / c_K:.3f} at "
                f"1/{round(1 / fn)}")
    return rows
