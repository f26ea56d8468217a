"""Shared Monte Carlo of the DSM proxy score on the forward process (the ``tweedie`` and ``V1`` checks).

Draws come from the forward process, not from the library: ``i`` uniform over the data, ``z ~ N(0, I)``,
``x = a_t x_i + sqrt(h_t) z``, and the proxy ``s~ = (a_t x_i - x)/h_t``. The conditional identities

    tweedie   E[s~ | x] = s*(x)                 tested as  E[s~ g(x)]      = E[s*(x) g(x)]
    V1        Cov[s~ | x] = C(x)                tested as  E[s~ s~^T g(x)] = E[(C(x) + s* s*^T) g(x)]

are tested through test functions g (for tweedie ``g = x_d`` -- where both sides equal -I by integration
by parts -- and Gaussian bumps; for V1 ``g = 1`` and the bumps). The left sides use only the draws; the right
sides only the library's ``s*`` and ``C`` evaluated at the drawn x. One sweep task = one (t, replicate,
role): N draws, the per-replicate means of both sides. Role "judged" replicates are compared; role "pilot"
replicates (independent seeds) give the standard error of the replicate mean of (left - right), by the
robust variance of :func:`verification.stats.pilot_se`: the judged replicates never set their own
tolerance, and one corrupted pilot replicate cannot widen it.
"""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density.schedules import get_schedule
from rftheory.gtv.variance import proxy_covariance

from ..stats import DEFAULT_ALPHA, critical_value, pilot_se

SWEEP_VERSION = "2"
#: width of the Gaussian-bump test functions (the data's scale is 1.5)
BUMP_WIDTH = 1.0
#: blocks of the pilot's median-of-means variance
PILOT_BLOCKS = 8

SIZES = {
    "quick": {"n": 8, "D": 2, "times": [0.05, 0.5], "bumps": 3, "draws": 4000, "reps": 32, "pilot": 48},
    "full": {"n": 32, "D": 3, "times": [0.01, 0.1, 0.5, 2.0], "bumps": 6, "draws": 16000, "reps": 64,
             "pilot": 96},
}


def declared_inputs(profile: str) -> dict:
    s = SIZES[profile]
    return {
        "dataset": f"{s['n']} points ~ N(0, 1.5^2 I_{s['D']}) from the run seed; test functions x_d and "
                   f"{s['bumps']} Gaussian bumps (width {BUMP_WIDTH}) centred at a_t x_k",
        "schedule": "OU",
        "sizes": s,
        "seeds": f"{s['reps']} judged and {s['pilot']} pilot replicates of {s['draws']} forward draws per t; "
                 "per-task SeedSequence spawned from --seed (verification.sweep.task_seed)",
    }


def _test_functions(x, centres, linear: bool):
    """(N, G): the columns x_d (if ``linear``) or 1, then the bumps."""
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    bumps = np.exp(-0.5 * d2 / BUMP_WIDTH**2)
    first = x if linear else np.ones((x.shape[0], 1))
    return np.concatenate([first, bumps], axis=1)


def proxy_task(params, rng):
    """Sweep task: N forward draws; per-replicate means of both sides of both identities."""
    X = np.asarray(params["data"], dtype=np.float64)
    centres = np.asarray(params["centres"], dtype=np.float64)
    t, N = float(params["t"]), int(params["N"])
    dens = EmpiricalDensity(X, get_schedule(params["schedule"]))
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    i = rng.integers(0, X.shape[0], size=N)
    z = rng.standard_normal((N, X.shape[1]))
    x = a * X[i] + np.sqrt(h) * z
    proxy = (a * X[i] - x) / h                                   # draws only
    C, s = proxy_covariance(dens, x, t, return_score=True)      # library only
    g1, g0 = _test_functions(x, centres, True), _test_functions(x, centres, False)
    return {"proxy_g": np.einsum("ng,nd->gd", g1, proxy) / N,
            "score_g": np.einsum("ng,nd->gd", g1, s) / N,
            "proxy2_g": np.einsum("ng,nd,ne->gde", g0, proxy, proxy) / N,
            "cov_g": np.einsum("ng,nde->gde", g0, C + s[:, :, None] * s[:, None, :]) / N}


def setup(ctx, sizes: dict):
    """Data, density and bump centres per time (deterministic in the run seed)."""
    rng = ctx.rng("proxy_mc", "data")
    X = 1.5 * rng.standard_normal((sizes["n"], sizes["D"]))
    dens = EmpiricalDensity(X, "ou")
    centres = {t: float(dens.schedule.a(t)) * X[: sizes["bumps"]] for t in sizes["times"]}
    return X, dens, centres


def run_sweep(ctx, sizes: dict):
    """``(X, dens, centres, stacked)``; ``stacked[(t, role)][key]`` is (replicates, ...) for each task output."""
    X, dens, centres = setup(ctx, sizes)
    grid = [(t, role, r) for t in sizes["times"] for role, R in (("judged", sizes["reps"]),
                                                                 ("pilot", sizes["pilot"])) for r in range(R)]
    params = [{"data": X, "schedule": "ou", "t": t, "centres": centres[t], "N": sizes["draws"], "role": role,
               "rep": r} for t, role, r in grid]
    res = ctx.sweep(proxy_task, params, name="proxy_mc", version=SWEEP_VERSION)
    stacked = {}
    for (t, role, _), out in zip(grid, res.results):
        d = stacked.setdefault((t, role), {})
        for k, v in out.items():
            d.setdefault(k, []).append(v)
    return X, dens, centres, {k: {kk: np.stack(vv) for kk, vv in v.items()} for k, v in stacked.items()}


def judge(stacked, t, left: str, right: str, comparisons: int, sizes: dict):
    """(predicted, measured, tolerance, source) for one time: the judged replicates' means of the library
    side (``right``) and of the draws' side (``left``); tolerance z * SE with SE from the pilot replicates."""
    J, P = stacked[(t, "judged")], stacked[(t, "pilot")]
    S = J[left].shape[0]
    se = pilot_se(P[left] - P[right], S, PILOT_BLOCKS)
    # the median-of-means variance of 8 blocks of 6 spreads like a sample variance with ~P/2 dof
    # (measured: relative SD 0.25 for P = 48, i.e. 2/0.25^2 = 32 dof); P/2 is the conservative choice
    dof = P[left].shape[0] // 2
    z = critical_value(DEFAULT_ALPHA, comparisons, dof=dof)
    src = (f"z={z:.2f} (t, {dof} dof, alpha={DEFAULT_ALPHA:g} Bonferroni over {comparisons}) x SE of the mean "
           f"of {S} judged replicates x {sizes['draws']} draws, from {P[left].shape[0]} independent pilot "
           f"replicates (median-of-means variance, {PILOT_BLOCKS} blocks)")
    return J[right].mean(0), J[left].mean(0), z * se, src
