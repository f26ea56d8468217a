"""Tweedie / score identity: ``s*(x,t) = E[(a_t x_0 - x)/h_t | x_t = x]`` (docs/theory.md §1, §5), by Monte Carlo.

Predicted: the library's exact score. Measured: the mean of the proxy score over N posterior draws of x_0,
repeated over S independent seeds (a dask sweep over t x N x seed, cached per task). Two kinds of row:

* identity, per (t, N): the mean over seeds vs s*; tolerance = z * SE with SE the standard error over the
  S seeds and z the two-sided Student-t quantile (S-1 dof) at family-wise alpha = 1e-3, Bonferroni over
  every component compared in the check;
* rate, per t: the slope of log RMS error against log N, predicted -1/2 (the Monte Carlo rate); the RMS
  error at each N comes with its standard error over seeds, and the weighted least-squares slope's SE times
  the t quantile (S-1 dof, Bonferroni over the times) is the tolerance.
"""
from __future__ import annotations

import numpy as np

from ..protocol import Comparison
from ..stats import DEFAULT_ALPHA, critical_value, loglog_slope, seed_mean
from . import _proxy_mc

NAME = "tweedie"
TITLE = "score = posterior mean of the DSM proxy (Monte Carlo, 1/sqrt(N) rate)"
PERTURB = 1.05


def inputs(profile: str) -> dict:
    return _proxy_mc.declared_inputs(profile)


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    X, dens, queries, stacked = _proxy_mc.run_sweep(ctx, s)
    S = s["reps"]
    n_comp = len(s["times"]) * len(s["draws"]) * s["queries_per_time"] * s["D"]
    z = critical_value(DEFAULT_ALPHA, n_comp, dof=S - 1)
    z_rate = critical_value(DEFAULT_ALPHA, len(s["times"]), dof=S - 1)
    rows = []
    for t in s["times"]:
        x = queries[t]
        s_star = dens.score(x, t)
        mse, mse_se = [], []
        for N in s["draws"]:
            est = stacked[(t, N)]["mean"]
            sm = seed_mean(est)
            rows.append(Comparison(
                setting=f"OU t={t:g}, N={N} draws x {S} seeds, {len(x)} queries, D={s['D']}",
                quantity="s* vs mean of (a x0 - x)/h",
                predicted=s_star, measured=sm.mean, tolerance=z * sm.se,
                source=f"z={z:.2f} (t, {S - 1} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over {n_comp}) x SE over "
                       f"{S} seeds"))
            per_seed = np.mean((est - s_star[None]) ** 2, axis=(1, 2))
            pm = seed_mean(per_seed)
            mse.append(float(pm.mean))
            mse_se.append(float(pm.se))
        mse, mse_se = np.array(mse), np.array(mse_se)
        slope, se = loglog_slope(np.array(s["draws"], dtype=float), mse, mse_se / mse)
        rows.append(Comparison(
            setting=f"OU t={t:g}, N in {s['draws']}, {S} seeds",
            quantity="Monte Carlo rate: d log RMS error / d log N",
            predicted=-0.5, measured=slope / 2, tolerance=z_rate * se / 2,
            source=f"z={z_rate:.2f} (t, {S - 1} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over {len(s['times'])}) x "
                   "SE of the weighted log-log fit (delta method, SE of each MSE over seeds)"))
        rows.append(Comparison(
            setting=f"OU t={t:g}", quantity="RMS error at the largest N (info)",
            predicted=np.sqrt(mse[-1]), measured=np.sqrt(mse[-1]), tolerance=0.0, kind="info",
            source="reported only"))
    return rows
