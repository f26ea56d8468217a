"""T3: tangential slide bound (docs/theory.md §3): for trajectories of the learned and the exact score from the
same start, |P_par (x_learned - x_exact)| <= int_t^T exp(int_t^u (1 + lambda_1^+)) |P_par e| du, lambda_1 and
|P_par e| measured along the learned path, over the stretch where both stay beta-regular.

REPORTED ONLY (verdict "info", never "pass"): coverage, median and worst
measured/bound ratios, and for the tangent-only error (where the first-order statement applies) the median
over pairs of max_t measured/bound. There is no stated coverage target, and the slack of that median below 1
means no perturbation <= 1.1 could fail it (issue 19), so it is a report. With a normal-only error
|P_par e| = 0, the bound is 0 and any second-order tangential drift violates it.
"""
from __future__ import annotations

import numpy as np

from rftheory import bounds

from ..protocol import Comparison
from . import _curved_runs

NAME = "T3"
TITLE = "tangential slide: Groenwall bound on the deviation along the ridge (first order; coverage reported)"
REPORTED_ONLY = True  # first-order bound, no stated target: see the docstring


def inputs(profile: str) -> dict:
    return _curved_runs.declared(profile)


def run(ctx, inputs):
    rows = []
    for (name, kind, amp), (m, m0) in _curved_runs.runs(ctx, ctx.profile).items():
        setting = f"{name}, {kind}-only error c={amp}, {m.x.shape[1]} trajectories"
        rep = bounds.evaluate_t3(m, m0)
        rows.append(Comparison(setting=setting, quantity=f"T3: coverage ({rep.n_tube} regular pairs)", predicted=1.0,
                               measured=rep.coverage, tolerance=0.0, kind="info",
                               source="reported, not judged (first-order bound)"))
        rows.append(Comparison(setting=setting, quantity="T3: median / worst measured/bound",
                               predicted=rep.median_ratio, measured=rep.worst_ratio, tolerance=0.0, kind="info",
                               source="reported, not judged"))
        if kind == "tangent":
            r = rep.max_ratios
            rows.append(Comparison(setting=setting, quantity="T3: median over pairs of max_t measured/bound "
                                   "(bound holds where <= 1)", predicted=1.0, measured=float(np.median(r)),
                                   tolerance=0.0, kind="info",
                                   source="reported, not judged (first-order bound; no stated target)"))
    return rows
