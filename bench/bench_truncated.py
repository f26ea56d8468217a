"""TruncatedDensity vs the dense pass (issue 17, row "TruncatedDensity never slower than dense"):
``python -m bench.bench_truncated [--quick] [--rounds R] [--min-time S]``.

Data in D = 32, n = 1e5 (2e4 with --quick), three geometries: near a 2-plane (uniform on [-1, 1]^2, 0.01 noise in
the other 30 coordinates), clustered (20 Gaussian clusters, std 0.05, centres N(0, I)) and isotropic (N(0, I)).
Queries: m samples of p_t at times chosen so that the kept count runs from tens to all of n. For each
(geometry, t), R interleaved rounds (default 15); each round times ``EmpiricalDensity.moments`` (score), ``TruncatedDensity
.moments`` and ``EmpiricalDensity.moments`` of a second instance on the same data, in an order that rotates from
round to round, each timing over enough repeated calls to last ``--min-time`` (default 0.02 s: one call at
full size). The truncated density's dense pass
is the first instance itself (its ``_dense``, else it builds its own): two instances over the same data can differ
by several per cent for where their arrays lie in memory (the A/A column shows it), and the comparison is with
the very dense call the route hands its queries to. Per round: truncated / that instance's dense time, and the
A/A ratio dense / dense (the second instance's time over the first's) -- the noise floor of this machine and of
the arrays' placement at this moment. Reported per row: the medians over the rounds; overall: the worst
truncated/dense (target <= 1: truncation never slower, because each query goes to whichever is cheaper) and the
A/A spread. The same ratios are also reported in process CPU time, which a loaded machine disturbs less (the
passes here run on one thread; the verdict is on wall time). Also the median kept count and the share of
queries sent to the dense pass, and the time of the routing alone (``TruncatedDensity._plan``: the subsample
counts, and the search for the queries routed to the truncated sum) against the dense time: where every query is
routed dense, that is all a call pays on top of the dense call, measured without the dense pass's noise.
Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density.neighbours import TruncatedDensity

D = 32
TIMES = (1e-4, 3e-4, 3e-3, 3e-2)


def geometries(n: int, rng: np.random.Generator) -> dict:
    plane = np.zeros((n, D))
    plane[:, :2] = rng.uniform(-1, 1, (n, 2))
    plane[:, 2:] = 0.01 * rng.standard_normal((n, D - 2))
    centres = rng.standard_normal((20, D))
    clustered = centres[rng.integers(0, 20, n)] + 0.05 * rng.standard_normal((n, D))
    return {"near-plane": plane, "clustered": clustered, "isotropic": rng.standard_normal((n, D))}


def _time(fn, reps: int, cpu: bool = False):
    """Seconds per call over ``reps`` calls: wall, or with ``cpu`` (wall, process CPU) both."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    wall = (time.perf_counter() - t0) / reps
    return (wall, (time.process_time() - c0) / reps) if cpu else wall


def measure(dense, dense2, trunc, rounds: int, min_time: float) -> dict:
    """Interleaved rounds of (dense, truncated, second dense), rotated; medians of the per-round ratios."""
    reps = max(1, math.ceil(min_time / max(_time(dense, 1), 1e-6)))
    order = ("A", "T", "B")
    ratios, aa, cpu_ratios, cpu_aa, dense_s, trunc_s = [], [], [], [], [], []
    for r in range(rounds):
        got = {}
        for k in order[r % 3:] + order[:r % 3]:
            got[k] = _time({"A": dense, "T": trunc, "B": dense2}[k], reps, cpu=True)
        (a, ca), (b, cb), (t, ct) = got["A"], got["B"], got["T"]
        ratios.append(t / a)
        aa.append(b / a)
        cpu_ratios.append(ct / ca)
        cpu_aa.append(cb / ca)
        dense_s += [a, b]
        trunc_s.append(t)
    return {"reps": reps, "dense_s": float(np.median(dense_s)), "truncated_s": float(np.median(trunc_s)),
            "ratio": float(np.median(ratios)), "aa": float(np.median(aa)),
            "cpu_ratio": float(np.median(cpu_ratios)), "cpu_aa": float(np.median(cpu_aa))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_truncated", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.02,
                    help="seconds each timing lasts at least (repeated calls); default 0.02: short timings in many "
                         "rounds pair the calls closely, and the medians of their ratios drift less than long "
                         "blocks' (session 19: the A/A spread of 5 rounds of 0.2 s was 0.87-1.04)")
    args = ap.parse_args(argv)
    if args.rounds < 3:
        ap.error("--rounds must be >= 3 (medians of interleaved rounds)")
    n, m = (20_000, 60) if args.quick else (100_000, 120)
    min_time = args.min_time
    rng = np.random.default_rng(0)
    rows = []
    for name, X in geometries(n, rng).items():
        full, full2 = EmpiricalDensity(X), EmpiricalDensity(X)  # two instances: the A/A check sees their spread
        tr = TruncatedDensity(X)
        tr._dense = full  # its dense pass is the baseline's instance (module docstring)
        for t in TIMES:
            x = full.sample(t, m, rng)
            tr.moments(x[:2], t)  # warm-up (the dense density and the squared norms are built once)
            res = measure(lambda: full.moments(x, t), lambda: full2.moments(x, t), lambda: tr.moments(x, t),
                          args.rounds, min_time)
            a, h = float(tr.schedule.a(t)), float(tr.schedule.h(t))
            route_s = float(np.median([_time(lambda: tr._plan(x, a, h), 10) for _ in range(args.rounds)]))
            kept = tr.kept(x, t)
            rows.append({"geometry": name, "t": t, "kept_median": int(np.median(kept)),
                         "dense_share": round(float(np.mean(kept == n)), 3), "reps": res["reps"],
                         "dense_s": round(res["dense_s"], 4), "truncated_s": round(res["truncated_s"], 4),
                         "truncated/dense": round(res["ratio"], 3), "A/A dense/dense": round(res["aa"], 3),
                         "cpu truncated/dense": round(res["cpu_ratio"], 3),
                         "cpu A/A": round(res["cpu_aa"], 3),
                         "route_s": round(route_s, 6), "route/dense": round(route_s / res["dense_s"], 4)})
            print(json.dumps(rows[-1]), flush=True)
    worst = max(r["truncated/dense"] for r in rows)
    aa = [r["A/A dense/dense"] for r in rows]
    routed_dense = [r["truncated/dense"] for r in rows if r["dense_share"] == 1.0]
    cpu_worst = max(r["cpu truncated/dense"] for r in rows)
    route_dense = [r["route/dense"] for r in rows if r["dense_share"] == 1.0]
    cpu_aa = [r["cpu A/A"] for r in rows]
    print(json.dumps({"bench": "truncated_vs_dense", "D": D, "n": n, "m": m, "rounds": args.rounds,
                      "min_time_s": min_time, "worst truncated/dense": worst,
                      "worst where all routed dense": max(routed_dense) if routed_dense else None,
                      "A/A noise floor (min, max of per-row medians)": [min(aa), max(aa)],
                      "target": "<= 1 (never slower than dense)",
                      "within the A/A noise floor": "yes" if worst <= max(aa) else "no",
                      "cpu (process time; less sensitive to load) worst truncated/dense": cpu_worst,
                      "cpu A/A (min, max)": [min(cpu_aa), max(cpu_aa)],
                      "routing cost / dense where all routed dense (the excess over the dense call)":
                          max(route_dense) if route_dense else None,
                      "meets target": "yes" if worst <= 1.0 else "no"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
