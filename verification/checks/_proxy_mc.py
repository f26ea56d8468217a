"""Shared Monte Carlo of the DSM proxy score ``s~ = (a_t x_0 - x)/h_t`` with ``x_0 ~ w(x, t)``.

Used by the ``tweedie`` check (its mean is the score s*) and the ``V1`` check (its covariance is
``(a^2/h^2) Sigma_t = H_t + I/h_t``). One sweep task = one (t, N, rep): N posterior draws at every query
point, returning the sample mean (m, D) and the unbiased sample covariance (m, D, D) of s~. Both checks
submit identical tasks, so with a cache the second one loads the first one's results.
"""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density.schedules import get_schedule

SWEEP_VERSION = "1"
#: queries are drawn from p_t but kept only when the posterior is not one-hot (max weight <= this), so that
#: N draws resolve the covariance: a near-one-hot posterior gives a sample variance of exactly 0 while the
#: truth is tiny but positive, a case no standard error can cover
MAX_WEIGHT = 0.95

SIZES = {
    "quick": {"n": 8, "D": 2, "times": [0.05, 0.5], "queries_per_time": 4, "draws": [250, 1000, 4000, 16000],
              "reps": 32},
    "full": {"n": 32, "D": 3, "times": [0.01, 0.1, 0.5, 2.0], "queries_per_time": 16,
             "draws": [1000, 4000, 16000, 64000], "reps": 64},
}


def declared_inputs(profile: str) -> dict:
    s = SIZES[profile]
    return {
        "dataset": f"{s['n']} points ~ N(0, 1.5^2 I_{s['D']}) from the run seed; {s['queries_per_time']} "
                   f"queries per time drawn from p_t with max posterior weight <= {MAX_WEIGHT}",
        "schedule": "OU",
        "sizes": s,
        "seeds": f"{s['reps']} repetitions per (t, N); per-task SeedSequence spawned from --seed "
                 "(verification.sweep.task_seed)",
    }


def proxy_task(params, rng):
    """Sweep task: N draws of x_0 from the posterior at each query; mean and covariance of the proxy."""
    X = np.asarray(params["data"], dtype=np.float64)
    x = np.asarray(params["x"], dtype=np.float64)
    t, N = float(params["t"]), int(params["N"])
    dens = EmpiricalDensity(X, get_schedule(params["schedule"]))
    w = dens.weights(x, t)
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    m, D = x.shape
    mean = np.empty((m, D))
    cov = np.empty((m, D, D))
    for j in range(m):
        idx = rng.choice(X.shape[0], size=N, p=w[j])
        s = (a * X[idx] - x[j]) / h
        mean[j] = s.mean(axis=0)
        c = s - mean[j]
        cov[j] = (c.T @ c) / (N - 1)
    return {"mean": mean, "cov": cov}


def setup(ctx, sizes: dict):
    """Data, density and queries per time (deterministic in the run seed)."""
    rng = ctx.rng("proxy_mc", "data")
    X = 1.5 * rng.standard_normal((sizes["n"], sizes["D"]))
    dens = EmpiricalDensity(X, "ou")
    queries = {}
    for t in sizes["times"]:
        r = ctx.rng("proxy_mc", "queries", t)
        keep = []
        for _ in range(1000):
            cand = dens.sample(t, 256, r)
            ok = dens.weights(cand, t).max(axis=1) <= MAX_WEIGHT
            keep.extend(cand[ok])
            if len(keep) >= sizes["queries_per_time"]:
                break
        if len(keep) < sizes["queries_per_time"]:
            raise ValueError(f"could not find {sizes['queries_per_time']} queries with max posterior weight "
                             f"<= {MAX_WEIGHT} at t={t}")
        queries[t] = np.array(keep[: sizes["queries_per_time"]])
    return X, dens, queries


def run_sweep(ctx, sizes: dict):
    """``(X, dens, queries, stacked)``; ``stacked[(t, N)] = {"mean": (S, m, D), "cov": (S, m, D, D)}``."""
    X, dens, queries = setup(ctx, sizes)
    grid = [(t, N, r) for t in sizes["times"] for N in sizes["draws"] for r in range(sizes["reps"])]
    params = [{"data": X, "schedule": "ou", "t": t, "x": queries[t], "N": N, "rep": r} for t, N, r in grid]
    res = ctx.sweep(proxy_task, params, name="proxy_mc", version=SWEEP_VERSION)
    stacked = {}
    for (t, N, _), out in zip(grid, res.results):
        d = stacked.setdefault((t, N), {"mean": [], "cov": []})
        d["mean"].append(out["mean"])
        d["cov"].append(out["cov"])
    stacked = {k: {kk: np.stack(vv) for kk, vv in v.items()} for k, v in stacked.items()}
    return X, dens, queries, stacked
