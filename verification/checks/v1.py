"""V1: ``Cov[s~ | x] = (a_t^2/h_t^2) Sigma_t(x) = H_t + I/h_t`` for the proxy ``s~ = (a_t x_0 - x)/h_t``
(docs/theory.md §5), by Monte Carlo.

Predicted: ``rftheory.gtv.variance.proxy_covariance`` (the library's V1, formed from the posterior covariance);
a second row holds ``H_t + I/h_t`` (the library's Hessian, P1) to it at round-off. Measured: the unbiased sample covariance of
N proxy draws, averaged over S seeds (the same cached sweep as the ``tweedie`` check). Tolerance: z * SE,
SE the standard error over the S seeds, z the two-sided Student-t quantile (S-1 dof) at family-wise
alpha = 1e-3 with Bonferroni over every matrix entry compared.
"""
from __future__ import annotations

import numpy as np

from rftheory import variance

from ..protocol import Comparison
from ..stats import DEFAULT_ALPHA, critical_value, seed_mean
from . import _proxy_mc

NAME = "V1"
TITLE = "covariance of the DSM proxy score = H + I/h (Monte Carlo)"
PERTURB = 1.05


def inputs(profile: str) -> dict:
    return _proxy_mc.declared_inputs(profile)


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    X, dens, queries, stacked = _proxy_mc.run_sweep(ctx, s)
    S, D, m = s["reps"], s["D"], s["queries_per_time"]
    draw_sizes = s["draws"][-2:]
    n_comp = len(s["times"]) * len(draw_sizes) * m * D * D
    z = critical_value(DEFAULT_ALPHA, n_comp, dof=S - 1)
    rows = []
    for t in s["times"]:
        x = queries[t]
        h = float(dens.schedule.h(t))
        C = variance.proxy_covariance(dens, x, t)
        HI = dens.hessian(x, t) + np.eye(D)[None] / h
        rows.append(Comparison(
            setting=f"OU t={t:g}, {m} queries, D={D}", quantity="proxy_covariance vs H + I/h (P1)",
            predicted=C, measured=HI, tolerance=64 * np.finfo(float).eps * (np.abs(HI).max() + 2 / h),
            source="round-off: 64 eps (|H + I/h| + 2/h) (the 1/h terms cancel in H + I/h)"))
        for N in draw_sizes:
            sm = seed_mean(stacked[(t, N)]["cov"])
            rows.append(Comparison(
                setting=f"OU t={t:g}, N={N} draws x {S} seeds, {m} queries, D={D}",
                quantity="proxy_covariance vs sample covariance of (a x0 - x)/h",
                predicted=C, measured=sm.mean, tolerance=z * sm.se,
                source=f"z={z:.2f} (t, {S - 1} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over {n_comp}) x SE over "
                       f"{S} seeds"))
    return rows
