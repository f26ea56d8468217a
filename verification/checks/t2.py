"""T2: Groenwall bound on the normal offset inside the beta-regular tube (docs/theory.md §3).

For every trajectory, from the time it enters the tube for good (converged beta-regular projection,
|nu| <= beta^{-1/2}, no projection jump wider than that), the bound is integrated from the measured beta,
|P_perp e|, ridge velocity |P_perp d_t pi| and (optionally) the frame-turning rate kappa, started at the
measured offset. T2 is a first-order statement: it is *reported* with its coverage (fraction of tube
trajectories for which it holds at every recorded time), median and worst measured/bound ratios. The judged
row is the typical case: the median over tube trajectories of max_t measured/bound is at most 1 (ratio to a
bound of 1; no sampling tolerance: it is a deterministic statement about these trajectories).
"""
from __future__ import annotations

import numpy as np

from rftheory import bounds

from ..protocol import Comparison
from . import _curved_runs

NAME = "T2"
TITLE = "normal alignment: Groenwall bound on the offset from the ridge (first order; coverage reported)"
PERTURB = 0.9


def inputs(profile: str) -> dict:
    return _curved_runs.declared(profile)


def run(ctx, inputs):
    rows = []
    for (name, kind, amp), (m, _m0) in _curved_runs.runs(ctx, ctx.profile).items():
        setting = f"{name}, {kind}-only error c={amp}, {m.x.shape[1]} trajectories"
        for uk in (True, False):
            rep = bounds.evaluate_t2(m, use_kappa=uk)
            rows.append(Comparison(setting=setting, quantity=f"{rep.name}: coverage in tube ({rep.n_tube} traj.)",
                                   predicted=1.0, measured=rep.coverage, tolerance=0.0, kind="info",
                                   source="reported, not judged (first-order bound)"))
            rows.append(Comparison(setting=setting, quantity=f"{rep.name}: median / worst measured/bound",
                                   predicted=rep.median_ratio, measured=rep.worst_ratio, tolerance=0.0, kind="info",
                                   source="reported, not judged"))
        r = bounds.evaluate_t2(m, use_kappa=True).max_ratios
        if r.size:
            rows.append(Comparison(setting=setting, quantity="T2+kappa: median over tube trajectories of max_t "
                                   "measured/bound <= 1", predicted=1.0, measured=float(np.median(r)),
                                   tolerance=0.0, kind="upper",
                                   source="deterministic bound on these trajectories (no sampling tolerance)"))
    return rows
