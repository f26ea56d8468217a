"""TruncatedDensity vs the dense pass (issue 17, row "TruncatedDensity never slower than dense"):
``python -m bench.bench_truncated [--quick] [--rounds R]``.

Data in D = 32, n = 1e5 (2e4 with --quick), three geometries: near a 2-plane (uniform on [-1, 1]^2, 0.01 noise in
the other 30 coordinates), clustered (20 Gaussian clusters, std 0.05, centres N(0, I)) and isotropic (N(0, I)).
Queries: m samples of p_t at times chosen so that the kept count runs from tens to all of n. For each
(geometry, t): the time of ``TruncatedDensity.moments`` (score) against ``EmpiricalDensity.moments`` on the same
queries, interleaved rounds, medians; ratio = truncated / dense (target <= 1: truncation never slower, because
each query goes to whichever is cheaper). Also the median kept count and the share of queries sent to the
dense pass. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density.neighbours import TruncatedDensity

D = 32


def geometries(n: int, rng: np.random.Generator) -> dict:
    plane = np.zeros((n, D))
    plane[:, :2] = rng.uniform(-1, 1, (n, 2))
    plane[:, 2:] = 0.01 * rng.standard_normal((n, D - 2))
    centres = rng.standard_normal((20, D))
    clustered = centres[rng.integers(0, 20, n)] + 0.05 * rng.standard_normal((n, D))
    return {"near-plane": plane, "clustered": clustered, "isotropic": rng.standard_normal((n, D))}


def _time(fn, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_truncated", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    n, m = (20_000, 60) if args.quick else (100_000, 120)
    rng = np.random.default_rng(0)
    rows, worst = [], 0.0
    for name, X in geometries(n, rng).items():
        full = EmpiricalDensity(X)
        tr = TruncatedDensity(X)
        for t in (1e-4, 3e-4, 3e-3, 3e-2):
            x = full.sample(t, m, rng)
            tr.moments(x[:2], t)  # warm-up (the dense density and the squared norms are built once)
            dense_s, trunc_s = [], []
            for _ in range(args.rounds):  # interleaved
                dense_s += _time(lambda: full.moments(x, t), 1)
                trunc_s += _time(lambda: tr.moments(x, t), 1)
            kept = tr.kept(x, t)
            ratio = float(np.median(trunc_s) / np.median(dense_s))
            worst = max(worst, ratio)
            rows.append({"geometry": name, "t": t, "kept_median": int(np.median(kept)),
                         "dense_share": float(np.mean(kept == n)), "dense_s": round(float(np.median(dense_s)), 4),
                         "truncated_s": round(float(np.median(trunc_s)), 4), "truncated/dense": round(ratio, 3)})
            print(json.dumps(rows[-1]))
    print(json.dumps({"bench": "truncated_vs_dense", "D": D, "n": n, "m": m, "rounds": args.rounds,
                      "worst truncated/dense": round(worst, 3), "target": "<= 1 (never slower than dense)",
                      "meets target": "yes" if worst <= 1.0 else "no"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
