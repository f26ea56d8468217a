"""Tweedie / score identity ``E[s~ | x_t = x] = s*(x, t)`` for the DSM proxy ``s~ = (a_t x_0 - x)/h_t``
(docs/theory.md §1, §5), by Monte Carlo on the forward process (checks/_proxy_mc.py).

Tested through test functions g: ``E[s~ g(x)] = E[s*(x) g(x)]`` with (x_0, z) drawn from the data and the
Gaussian, not from the library's posterior; the left side uses only the draws, the right side only the
library's s*. One row per t: predicted = the replicate mean of s* g, measured = that of s~ g (same draws),
tolerance = z * SE with SE from independent pilot replicates (robust variance), z the two-sided Student-t
quantile at family-wise alpha = 1e-3, Bonferroni over every element compared.
"""
from __future__ import annotations

from ..protocol import Comparison
from . import _proxy_mc

NAME = "tweedie"
TITLE = "score = conditional mean of the DSM proxy (forward-process Monte Carlo, test functions)"
PERTURB = 1.1


def inputs(profile: str) -> dict:
    return _proxy_mc.declared_inputs(profile)


def rows_from(stacked, s):
    D, G = s["D"], s["D"] + s["bumps"]
    n_comp = len(s["times"]) * G * D
    rows = []
    for t in s["times"]:
        pred, meas, tol, src = _proxy_mc.judge(stacked, t, "proxy_g", "score_g", n_comp, s)
        rows.append(Comparison(
            setting=f"OU t={t:g}, {s['reps']} replicates x {s['draws']} forward draws, D={D}, "
                    f"g in (x_1..x_{D}, {s['bumps']} bumps)",
            quantity="E[s* g] (library) vs E[(a x0 - x)/h g] (draws)",
            predicted=pred, measured=meas, tolerance=tol, source=src))
    return rows


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    _, _, _, stacked = _proxy_mc.run_sweep(ctx, s)
    return rows_from(stacked, s)
