"""V3: the ensemble-mean linear-feature denoiser approaches the best fit the features allow (docs/theory.md §5).

Setting: data {-1, 0, 1}, linear VP, t in [0.2, 1], 16 x 8 Gaussian bump features on x in [-2.5, 2.5],
ridge 1e-3, ensembles of N weighted-ridge fits (``feature_ensembles.fit_ensemble``) on P triples each.

The best fit (P -> infinity) is the population ridge solution ``W_inf = B A^{-1}`` with ``A = E[lam phi phi^T]
+ ridge I`` and ``B = E[lam x_0 phi^T]`` computed by deterministic quadrature over the training distribution
(composite Gauss-Legendre in t, Gauss-Hermite in z, exact sum over the data); its quadrature error is
estimated by doubling both rules (reported). The gap of the ensemble mean ``Wbar_P`` is the lambda-weighted
L^2 distance over the training distribution, ``gap^2 = tr((Wbar - W_inf) A_0 (Wbar - W_inf)^T)``
(A_0 = A without the ridge), evaluated by the same quadrature.

Predicted: to first order in 1/P the fits fluctuate around W_inf with covariance O(1/P) and the estimator's
bias is O(1/P), so E[gap^2] = c_1/(P N) + c_2/P^2 + ... with positive leading terms: gap^2 shrinks at
least as fast as 1/P, i.e. its log-log slope in P is <= -1 (kind "upper"). Judged for the ensemble-mean
gap^2 (SE of each by the jackknife over the N fits) and, with far more power, for the per-fit mean square
E|W_n - W_inf|^2_{A_0} (SE over the N fits); tolerance: t quantile (N - 1 dof, alpha = 1e-3) x SE of the
weighted log-log fit. The slope is NOT -1 at these P: measured about -1.2 to -1.3 (the 1/P^2 terms are
still large with ridge 1e-3), so the first-order rate is judged only as a bound, never as an equality.
Also judged: the per-fit mean square at the largest P is below that at the smallest P times P_min/P_max (the
1/P law as a bound; tolerance z x the combined SEs). Stated alternatives these rows must reject: a slope of
-0.5, a gap tripled at the largest P (see :func:`rows_from`). The ensemble-mean slope is reported only (its
jackknife SE at N = 16 cannot reject -0.5).
"""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity  # noqa: F401  (kept for symmetry with V4)
from rftheory.gtv.ensembles import fit_ensemble, gaussian_features
from rftheory.density.schedules import LinearVP

from ..protocol import Comparison
from ..stats import DEFAULT_ALPHA, critical_value, loglog_slope

NAME = "V3"
TITLE = "ensemble-mean linear-feature denoiser -> best fit of the features as P grows (1/P)"
PERTURB = 1.6

DATA = np.array([[-1.0], [0.0], [1.0]])
T_MIN, T_MAX, RIDGE = 0.2, 1.0, 1e-3
_SIZES = {
    "quick": {"n_x": 16, "n_t": 8, "P": [512, 2048, 8192], "N": 16, "gl_panels": 16, "gh": 80},
    "full": {"n_x": 16, "n_t": 8, "P": [512, 2048, 8192, 32768], "N": 100, "gl_panels": 64, "gh": 200},
}


def inputs(profile: str) -> dict:
    return {"dataset": "{-1, 0, 1}", "schedule": f"linear VP, t in [{T_MIN}, {T_MAX}], weight a^2/h, ridge {RIDGE}",
            "sizes": _SIZES[profile], "seeds": "ensemble fits from ctx.rng('V3', P)"}


_GH_MAX = 300


def _population(feats, sched, panels, n_gh):
    """A_0 = E[lam phi phi^T], B = E[lam x0 phi^T] over x0 ~ U(data), t ~ U[T_MIN, T_MAX], z ~ N(0,1)."""
    g, gw = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(T_MIN, T_MAX, panels + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    tn = (mid[:, None] + half[:, None] * g[None]).ravel()
    tw = (half[:, None] * gw[None]).ravel() / (T_MAX - T_MIN)
    z, zw = np.polynomial.hermite_e.hermegauss(n_gh)
    if not np.all(np.isfinite(zw)):
        raise ValueError(f"Gauss-Hermite rule with {n_gh} nodes has non-finite weights")
    zw = zw / np.sqrt(2 * np.pi)
    F = feats.F
    A0, B = np.zeros((F, F)), np.zeros((1, F))
    for x0 in DATA[:, 0]:
        a, h = sched.a(tn), sched.h(tn)
        xt = (a[:, None] * x0 + np.sqrt(h)[:, None] * z[None]).ravel()[:, None]
        tt = np.repeat(tn, z.size)
        w = (tw[:, None] * zw[None]).ravel() * np.repeat(a * a / h, z.size) / DATA.shape[0]
        ph = feats(xt, tt)
        A0 += (ph * w[:, None]).T @ ph
        B += x0 * (w @ ph)[None]
    return A0, B


def _gap2(dW, A0):
    return np.einsum("...df,fg,...dg->...", dW, A0, dW)


def rows_from(Ps, N, F, g2, g2_se, d2, d2_se):
    """The judged rows from the measured gap^2 (ensemble mean) and per-fit mean squares at each P with SEs.

    Stated alternatives they must reject (tests/test_verification_checks.py::test_v3_rejects_its_alternatives):
    a slope of -0.5 where -1 is claimed (the per-fit slope row), and a gap tripled at the largest P (the gap
    row, which bounds the per-fit mean square at P_max by the 1/P law from P_min). The ensemble-mean slope
    is reported only: with N = 16 fits its jackknife SE cannot reject either alternative."""
    z = critical_value(DEFAULT_ALPHA, 2, dof=N - 1)
    P = np.array(Ps, dtype=float)
    slope, sse = loglog_slope(P, g2, g2_se / g2)
    slope_d, sse_d = loglog_slope(P, d2, d2_se / d2)
    ratio = P[0] / P[-1]
    src = f"z={z:.2f} (t, {N - 1} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over 2 rows) x "
    return [Comparison(
        setting=f"F={F}, N={N} fits, P in {list(Ps)}",
        quantity="d log gap^2 / d log P (ensemble mean vs W_inf; info: its jackknife SE, ~50 % of gap^2 at "
                 "N = 16, cannot reject a slope of -0.5)",
        predicted=slope, measured=slope, tolerance=0.0, kind="info",
        source=f"reported only: slope {slope:.2f} +- {sse:.2f} (weighted log-log fit)"),
        Comparison(
        setting=f"F={F}, N={N} fits, P in {list(Ps)}",
        quantity="d log E|W_n - W_inf|^2 / d log P (per-fit mean square = N x the ensemble-mean variance + bias^2)",
        predicted=-1.0, measured=slope_d, tolerance=z * sse_d, kind="upper",
        source=src + "SE of the weighted log-log fit (SE of each mean over the N fits)"),
        Comparison(
        setting=f"F={F}, N={N}, P={Ps[0]} -> {Ps[-1]}",
        quantity=f"E|W_n - W_inf|^2 at P_max <= that at P_min x P_min/P_max (the 1/P law as a bound, "
                 f"P_min/P_max = {ratio:g})",
        predicted=d2[0] * ratio, measured=d2[-1],
        tolerance=z * float(np.hypot(d2_se[0] * ratio, d2_se[-1])), kind="upper",
        source=src + "combined SE over the fits of the two mean squares")]


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    F, g2, g2_se, d2, d2_se, q_err, ref = measure(ctx, s)
    N = s["N"]
    rows = rows_from(s["P"], N, F, g2, g2_se, d2, d2_se)
    for P, v, e in zip(s["P"], g2, g2_se):
        rows.append(Comparison(setting=f"P={P}, N={N}", quantity="relative gap |Wbar - W_inf|/|W_inf| (lambda-L2, info)",
                               predicted=np.sqrt(v / ref), measured=np.sqrt(v / ref), tolerance=0.0, kind="info",
                               source=f"reported only (gap^2 = {v:.3g} +- {e:.2g})"))
    rows.append(f"population fit quadrature error (gap^2 between the rule and the refined rule: twice the panels, "
                f"{min(2 * s['gh'], _GH_MAX)} Gauss-Hermite nodes): {q_err:.2e}, "
                f"vs the smallest measured gap^2 {g2.min():.2e}")
    return rows


def measure(ctx, s):
    """``(F, g2, g2_se, d2, d2_se, quadrature error, |W_inf|^2)``: the ensemble-mean gap^2 and the per-fit mean
    square at each P with their SEs (jackknife / over the fits)."""
    sched = LinearVP()
    feats = gaussian_features(1, s["n_x"], s["n_t"], (-2.5, 2.5), (T_MIN, T_MAX))
    A0, B = _population(feats, sched, s["gl_panels"], s["gh"])
    # NumPy's hermegauss overflows (NaN weights) above ~370 nodes: the refined rule is capped at 300
    A0b, Bb = _population(feats, sched, 2 * s["gl_panels"], min(2 * s["gh"], _GH_MAX))
    A = A0 + RIDGE * np.eye(feats.F)
    W_inf = np.linalg.solve(A, B.T).T
    W_inf2 = np.linalg.solve(A0b + RIDGE * np.eye(feats.F), Bb.T).T
    q_err = float(_gap2(W_inf - W_inf2, A0))
    N = s["N"]
    g2, g2_se, d2, d2_se = [], [], [], []
    for P in s["P"]:
        ens = fit_ensemble(feats, DATA, sched, P, N, T_MIN, T_MAX, ridge=RIDGE, rng=ctx.rng(NAME, P))
        Wbar = ens.W.mean(0)
        full = float(_gap2(Wbar - W_inf, A0))
        loo = (N * Wbar[None] - ens.W) / (N - 1)              # leave-one-out means
        jk = _gap2(loo - W_inf[None], A0)
        se = float(np.sqrt((N - 1) / N * np.sum((jk - jk.mean()) ** 2)))
        g2.append(full)
        g2_se.append(se)
        per = _gap2(ens.W - W_inf[None], A0)                   # (N,) each fit's squared distance
        d2.append(float(per.mean()))
        d2_se.append(float(per.std(ddof=1) / np.sqrt(N)))
    return (feats.F, np.array(g2), np.array(g2_se), np.array(d2), np.array(d2_se), q_err,
            float(_gap2(W_inf, A0)))
