"""Benchmark of the per-call tax (issue 17, rows 2 and 3 of its table).

    python -m bench.bench_overhead [--quick] [--rounds R] [--out bench_out/overhead.json]

Two ratios, each against a baseline timed in the same run, in interleaved rounds (baseline and subject
alternate; the reported ratio is the median over rounds of the per-round ratios, so a load change on the
shared machine hits both sides of a ratio alike):

1. ``EmpiricalDensity.score`` at m = 1 (workload W's density: 2000 noisy circle points, D = 2, a = 1, h = 0.04)
   against plain numpy of the same formula (weights by log-sum-exp, posterior mean, score), both on one query.
   Target: <= 2x.
2. One-point ``ridge.project`` (d = 1, tol 1e-10; median over single queries each projected alone) against the
   per-point cost inside one batch of 10^4 queries (2000 with ``--quick``). Target: <= 20x. Also timed in the
   same rounds: the batch core on each single point (what one-point calls ran before the one-point path;
   bit-identical results), reported as the one-point path's speedup. The density's engine is reported: with
   numba installed the compiled pass (``engine="auto"`` at D = 2); ``RFTHEORY_NUMBA=0`` times the numpy pass.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from rftheory import ridge
from rftheory.geometry._ridge_newton import _project_batch

from .bench_ridge import TOL, W_SCHEDULE, circle_workload


def plain_score(x, X, a, h):
    """The score of the smoothed empirical density at one point, written directly in numpy."""
    diff = a * X - x
    lg = -0.5 * np.einsum("nd,nd->n", diff, diff) / h
    w = np.exp(lg - lg.max())
    w /= w.sum()
    return (w @ diff) / h


def _clock(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def bench_score(rounds=7, reps=200):
    dens, q, t = circle_workload(m=16)
    a, h = float(W_SCHEDULE.a(t)), float(W_SCHEDULE.h(t))
    x = q[3]
    s_ref = plain_score(x, dens.data, a, h)
    s = dens.score(x, t)
    err = float(np.abs(s - s_ref).max() / np.abs(s_ref).max())
    ratios, t_lib, t_np = [], [], []
    for _ in range(rounds):
        tn = _clock(lambda: plain_score(x, dens.data, a, h), reps)
        tl = _clock(lambda: dens.score(x, t), reps)
        t_np.append(tn)
        t_lib.append(tl)
        ratios.append(tl / tn)
    r = float(np.median(ratios))
    return {"workload": "score at m = 1, n = 2000, D = 2", "rftheory_us": 1e6 * float(np.median(t_lib)),
            "plain_numpy_us": 1e6 * float(np.median(t_np)), "ratio": r, "round_ratios": ratios,
            "target": "<= 2x", "meets target": "yes" if r <= 2.0 else "no", "relative_difference": err}


def bench_one_point(m=10_000, k_single=40, rounds=3):
    dens, q, t = circle_workload(m=m)
    singles = q[:: max(1, m // k_single)][:k_single]
    ratios, t_one, t_per, t_core, speedups = [], [], [], [], []
    tt = np.full(1, float(t))
    for _ in range(rounds):
        t0 = time.perf_counter()
        pr = ridge.project(dens, q, t, 1, tol=TOL)
        per = (time.perf_counter() - t0) / m
        ts = []
        for x in singles:
            t0 = time.perf_counter()
            ridge.project(dens, x[None], t, 1, tol=TOL)
            ts.append(time.perf_counter() - t0)
        one = float(np.median(ts))
        tc = []
        for x in singles:   # the batch core on the same single point (the path before the one-point path)
            t0 = time.perf_counter()
            _project_batch(dens, x[None], tt, 1, TOL, 200, True, 0.0, None)
            tc.append(time.perf_counter() - t0)
        core = float(np.median(tc))
        t_core.append(core)
        speedups.append(core / one)
        t_one.append(one)
        t_per.append(per)
        ratios.append(one / per)
    r = float(np.median(ratios))
    return {"workload": f"one-point project vs per point in a batch of {m} (W, d = 1, tol 1e-10)",
            "engine": "numba (compiled pass)" if dens._use_fused() else "numpy",
            "one_point_ms": 1e3 * float(np.median(t_one)), "per_point_in_batch_us": 1e6 * float(np.median(t_per)),
            "ratio": r, "round_ratios": ratios, "batch_converged": float(pr.converged.mean()),
            "batch_core_one_point_ms": 1e3 * float(np.median(t_core)),
            "one_point_path_speedup": float(np.median(speedups)),
            "target": "<= 20x", "meets target": "yes" if r <= 20.0 else "no"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_overhead", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="batch of 2000 and fewer rounds (a few seconds)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (median of per-round ratios)")
    ap.add_argument("--out", default=None, help="write the summary as JSON here")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    res = {"score_m1": bench_score(rounds=max(rounds, 3), reps=100 if args.quick else 300),
           "project_one_point": bench_one_point(m=2000 if args.quick else 10_000,
                                                k_single=20 if args.quick else 40, rounds=rounds),
           "note": "ratios are medians over interleaved rounds of (subject / in-run baseline)"}
    print(json.dumps(res, indent=1))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
