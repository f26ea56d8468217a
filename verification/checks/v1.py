"""V1: ``Cov[s~ | x] = C(x) = (a_t^2/h_t^2) Sigma_t(x) = H_t + I/h_t`` for the proxy ``s~ = (a_t x_0 - x)/h_t``
(docs/theory.md §5), by Monte Carlo on the forward process (checks/_proxy_mc.py).

Tested through test functions g (1 and Gaussian bumps): ``E[s~ s~^T g(x)] = E[(C(x) + s* s*^T) g(x)]``, the
left side from the draws only, the right side from the library's ``proxy_covariance`` and score only. A
first row holds ``proxy_covariance`` to ``H_t + I/h_t`` (the library's Hessian, P1) at round-off. Tolerance
of the Monte Carlo rows: z * SE, SE from independent pilot replicates (robust variance), z the two-sided
Student-t quantile at family-wise alpha = 1e-3 with Bonferroni over every element compared.
"""
from __future__ import annotations

import numpy as np

from rftheory import variance

from ..protocol import Comparison
from . import _proxy_mc

NAME = "V1"
TITLE = "covariance of the DSM proxy score = H + I/h (forward-process Monte Carlo, test functions)"
PERTURB = 1.1


def inputs(profile: str) -> dict:
    return _proxy_mc.declared_inputs(profile)


def rows_from(dens, centres, stacked, s):
    D, G = s["D"], 1 + s["bumps"]
    n_comp = len(s["times"]) * G * D * D
    rows = []
    for t in s["times"]:
        x = centres[t]
        h = float(dens.schedule.h(t))
        C = variance.proxy_covariance(dens, x, t)
        HI = dens.hessian(x, t) + np.eye(D)[None] / h
        rows.append(Comparison(
            setting=f"OU t={t:g}, {len(x)} points, D={D}", quantity="proxy_covariance vs H + I/h (P1)",
            predicted=C, measured=HI, tolerance=64 * np.finfo(float).eps * (np.abs(HI).max() + 2 / h),
            source="round-off: 64 eps (|H + I/h| + 2/h) (the 1/h terms cancel in H + I/h)"))
        pred, meas, tol, src = _proxy_mc.judge(stacked, t, "proxy2_g", "cov_g", n_comp, s)
        rows.append(Comparison(
            setting=f"OU t={t:g}, {s['reps']} replicates x {s['draws']} forward draws, D={D}, "
                    f"g in (1, {s['bumps']} bumps)",
            quantity="E[(C + s* s*^T) g] (library) vs E[s~ s~^T g] (draws)",
            predicted=pred, measured=meas, tolerance=tol, source=src))
    return rows


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    _, dens, centres, stacked = _proxy_mc.run_sweep(ctx, s)
    return rows_from(dens, centres, stacked, s)
