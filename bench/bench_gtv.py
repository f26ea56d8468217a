"""[GTV] Fig. 2 ensembles (issue 17, row "[GTV] Fig. 2 ensemble vs the notebooks' code"):
``python -m bench.bench_gtv [--quick] [--rounds R] [--M M]``.

Workload: the 15 panels of [GTV] Fig. 2 (eps in 1e-4, 1e-3, 1e-2 x P in 64 ... 1024), each N = 100 ridge fits
of a 16 x 16 Gaussian-feature linear denoiser on P triples from the data {-1, 0, 1} (linear VP, ridge 0.1),
M PF-ODE samples per fit by 30 Euler steps on the uniform grid from 1 to eps, and the per-fit histograms with
their mean and 25/75 % quantiles -- the loop the notebook ``fig2-1d-generalize.ipynb`` of
john-vastola/gtv-iclr25 times.

Baseline: ``notebook_panel`` below, a plain-numpy re-implementation (written here, not copied) of the
notebooks' algorithm: features as normal pdfs of each 1-D factor and their row-wise outer product; the
weighted Gram and cross moment by matrix products; the ridge solve by an explicit inverse; the denoiser
tabulated on a grid of 200 x values by 31 times; Euler steps that look each particle up on that grid
(``searchsorted``, i.e. the x snapped to a grid point) and one ``np.histogram`` per fit. Two departures,
both in the baseline's favour: the notebook builds the Gram twice (a matmul and then an einsum that
overwrites it) and evaluates the pdfs with ``scipy.stats.norm.pdf``; here the Gram is built once and the pdfs
by the plain formula. Ours: ``fit_ensemble`` + ``pf_ode_ensemble`` (exact features at every particle, no grid)
+ ``ensemble_histograms``, as paper_figures/gtv2_gap_filling.py does.

Rounds are interleaved (baseline, ours, baseline, ours, ...) and the medians compared. Target: ours >= 2x
faster. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

EPSILONS = (1e-4, 1e-3, 1e-2)
PS = (64, 128, 256, 512, 1024)
DATA = np.array([-1.0, 0.0, 1.0])
F_X = F_T = 16
N_STEPS = 30
BETA_MIN, BETA_D = 0.1, 19.9


# ----------------------------------------------------------------------------- the notebooks' algorithm
def _pdf(u, mu, sig):
    d = (u[:, None] - mu[None, :]) / sig
    return np.exp(-0.5 * d * d) / (np.sqrt(2.0 * np.pi) * sig)


def notebook_panel(eps: float, P: int, N: int, M: int, rng: np.random.Generator):
    """One panel the notebooks' way; returns (final samples (N, M), mean density, q25, q75)."""
    alpha = lambda t: np.exp(-(BETA_MIN * t + 0.5 * BETA_D * t * t))  # noqa: E731
    sig_sq = lambda t: 1.0 - alpha(t) ** 2  # noqa: E731
    t = np.linspace(eps, 1.0, N_STEPS + 1)[::-1]
    beta_t = BETA_MIN + BETA_D * t
    g_sq_t, a_t, s_t = 2.0 * beta_t, alpha(t), sig_sq(t)
    x_grid = np.linspace(-1.5, 1.5, 200)
    dx = x_grid[1] - x_grid[0]
    bins_x = np.linspace(-1.5 - dx / 2, 1.5 + dx / 2, 201)
    x_c = np.linspace(-1.5, 1.5, F_X)
    t_c = np.linspace(eps, 1.0, F_T)
    sx, st = (x_c[1] - x_c[0]) / 2, (t_c[1] - t_c[0]) / 2
    F = F_X * F_T

    def phi(xv, tv):  # (n, F): row-wise outer product of the x and t factors
        return (_pdf(xv, x_c, sx)[:, :, None] * _pdf(tv, t_c, st)[:, None, :]).reshape(xv.size, F)

    phi_grid = (_pdf(x_grid, x_c, sx)[:, None, :, None] * _pdf(t, t_c, st)[None, :, None, :]).reshape(200, t.size, F)
    # training: N fits of P triples each, weight a^2/h, ridge 0.1, explicit inverse
    comp = rng.integers(0, DATA.size, size=(N, P))
    x0 = DATA[comp]
    ts = rng.uniform(eps, 1.0, size=(N, P))
    xs = alpha(ts) * x0 + np.sqrt(sig_sq(ts)) * rng.standard_normal((N, P))
    ph = phi(xs.ravel(), ts.ravel()).reshape(N, P, F)
    lam = alpha(ts) ** 2 / (sig_sq(ts) + 1e-8)
    Sig = np.swapaxes(ph * lam[..., None], 1, 2) @ ph / P
    A = ((x0 * lam)[:, None, :] @ ph) / P
    W = (A @ np.linalg.inv(Sig + 0.1 * np.eye(F)[None]))[:, 0, :]
    mu_est = np.dot(W, phi_grid.transpose(0, 2, 1))  # (N, 200, 31)
    # sampling: Euler steps, denoiser looked up at the grid point found by searchsorted
    x_t = rng.normal(0.0, np.sqrt(s_t[0]), size=(N, M))
    dt = np.roll(t, -1) - t
    b_ = np.arange(N)[:, None]
    for j in range(N_STEPS):
        i_ = np.clip(np.searchsorted(x_grid, x_t), None, x_grid.size - 1)
        x_t = x_t - (beta_t[j] * x_t + (g_sq_t[j] / 2) * ((a_t[j] * mu_est[b_, i_, j] - x_t) / s_t[j])) * dt[j]
    prob = np.zeros((N, 200))
    for k in range(N):
        prob[k], _ = np.histogram(x_t[k], bins=bins_x, density=True)
    return x_t, prob.mean(0), np.quantile(prob, 0.25, axis=0), np.quantile(prob, 0.75, axis=0)


# ----------------------------------------------------------------------------- ours
def ours_panel(eps: float, P: int, N: int, M: int, rng: np.random.Generator):
    """One panel with rftheory (exact features, quantile starts as in gtv2)."""
    from scipy.stats import norm

    from rftheory.density.schedules import LinearVP, uniform_grid
    from rftheory.gtv.ensembles import ensemble_histograms, fit_ensemble, gaussian_features, pf_ode_ensemble

    sched = LinearVP(BETA_MIN, BETA_D)
    feats = gaussian_features(1, F_X, F_T, (-1.5, 1.5), (eps, 1.0))
    starts = np.sqrt(float(sched.h(1.0))) * norm.ppf((np.arange(M) + 0.5) / M)[:, None]
    ens = fit_ensemble(feats, DATA[:, None], sched, P, N, eps, 1.0, ridge=0.1, rng=rng)
    xs = pf_ode_ensemble(ens, uniform_grid(1.0, eps, N_STEPS + 1), starts)[..., 0]
    dens = ensemble_histograms(xs, np.linspace(-1.5, 1.5, 201))
    return xs, dens.mean(0), np.quantile(dens, 0.25, axis=0), np.quantile(dens, 0.75, axis=0)


def _figure(fn, N, M, seed):
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for eps in EPSILONS:
        for P in PS:
            fn(eps, P, N, M, rng)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_gtv", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M = 1000 samples per fit (else 4000, gtv2's size)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--M", type=int, default=None, help="samples per fit")
    args = ap.parse_args(argv)
    N = 100
    M = args.M or (1000 if args.quick else 4000)
    _figure(ours_panel, 4, 50, 0)  # warm-up (imports, first-call costs) for both
    _figure(notebook_panel, 4, 50, 0)
    base, ours = [], []
    for r in range(args.rounds):
        base.append(_figure(notebook_panel, N, M, r))
        ours.append(_figure(ours_panel, N, M, r))
    tb, to = float(np.median(base)), float(np.median(ours))
    ratio = tb / to
    print(json.dumps({"bench": "gtv_fig2_ensemble", "panels": 15, "N": N, "M": M, "steps": N_STEPS,
                      "rounds": args.rounds, "notebooks_s": [round(v, 2) for v in base],
                      "ours_s": [round(v, 2) for v in ours], "median_notebooks_s": round(tb, 2),
                      "median_ours_s": round(to, 2), "speedup": round(ratio, 2), "target": ">= 2x faster",
                      "meets target": "yes" if ratio >= 2.0 else "no"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
