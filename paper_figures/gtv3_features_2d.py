"""[GTV] Fig. 3: 2-D generalization depends on the features and on the data's orientation."""
from __future__ import annotations

import numpy as np

from rftheory.data.datasets import circle
from rftheory.gtv.ensembles import fit_ensemble, fourier_features, gaussian_features, pf_ode_ensemble
from rftheory.density.schedules import LinearVP, edm_grid, uniform_grid

from . import _stage
from ._common import TRAIN, FigureResult, plt, save

NAME = "gtv3"
TITLE = "GTV Fig. 3: 2-D ensembles, Gaussian vs Fourier features x 3 rotations"
CAPTION = ("Mean learned density (log colour scale, 2-D histogram over [-1.5, 1.5]^2) of N = 100 linear "
           "denoisers (N = 8 with --quick), each fitted by ridge regression (weight a_t^2/h_t, ridge 0.1) "
           "on P = 500 triples from 4 points on the unit circle rotated by 0, pi/8, pi/4 (columns; red), "
           "with F = 10 x 10 x 10 product features in (x_1, x_2, t): Gaussian bumps (top; x centres on "
           "[-1.5, 1.5], t centres on [eps, 1], widths half the spacing) or Fourier modes (bottom; period "
           "the interval's length L, the notebooks' choice; fourier_period=2 gives ours before, 2L). Linear VP, "
           "eps = 1e-2, PF-ODE with 30 Euler steps on a uniform grid in t (the notebooks'; grid='edm' for an "
           "EDM rho = 7 grid), 1000 samples per fit (300 with --quick). Colour: log10 of the density (+1e-3). "
           "Which gaps are filled depends on both the feature set and the orientation. 'near' = fraction of "
           "samples within 0.25 of a training point.")
GRIDS = ("uniform", "edm")

ROTATIONS = (0.0, np.pi / 8, np.pi / 4)
KINDS = ("gaussian", "fourier")
EPS = 1e-2
P = 500
N_STEPS = 30


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True, grid: str = "uniform",
           fourier_period: float = 1.0) -> FigureResult:
    """``grid``: "uniform" ([GTV]'s, default) or "edm"; ``fourier_period``: the Fourier features' period in
    units of each interval's length, 1 ([GTV]'s, default) or 2 (ours before)."""
    from tqdm.auto import tqdm

    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}; got {grid!r}")

    rng = np.random.default_rng(seed)
    N, M = (8, 300) if quick else (100, 1000)
    sched = LinearVP()
    tg = uniform_grid(1.0, EPS, N_STEPS + 1) if grid == "uniform" else edm_grid(1.0, EPS, N_STEPS + 1, rho=7.0)
    edges = np.linspace(-1.5, 1.5, 61 if quick else 101)
    fig, axes = plt.subplots(len(KINDS), len(ROTATIONS), figsize=(3.2 * len(ROTATIONS), 3.2 * len(KINDS)),
                             sharex=True, sharey=True)
    out = {"rotations": np.array(ROTATIONS), "kinds": KINDS, "P": P, "F": 1000, "N": N, "M": M,
           "edges": edges, "density": np.zeros((len(KINDS), len(ROTATIONS), edges.size - 1, edges.size - 1)),
           "near_mass": np.zeros((len(KINDS), len(ROTATIONS))), "finite": True, "grid": grid,
           "fourier_period": float(fourier_period)}
    def compute():
        bar = tqdm(total=len(KINDS) * len(ROTATIONS), disable=not progress, desc=NAME)
        for r, kind in enumerate(KINDS):
            if kind == "gaussian":
                feats = gaussian_features(2, 10, 10, (-1.5, 1.5), (EPS, 1.0))
            else:
                feats = fourier_features(2, 10, 10, (-1.5, 1.5), (EPS, 1.0), period_factor=fourier_period)
            for c, th in enumerate(ROTATIONS):
                X = circle(4, 1.0, offset=th)
                ens = fit_ensemble(feats, X, sched, P, N, EPS, 1.0, ridge=0.1, rng=rng)
                starts = rng.standard_normal((N, M, 2)) * np.sqrt(float(sched.h(1.0)))
                xs = pf_ode_ensemble(ens, tg, starts)
                out["finite"] = out["finite"] and bool(np.all(np.isfinite(xs)))
                flat = xs.reshape(-1, 2)
                H, _, _ = np.histogram2d(flat[:, 0], flat[:, 1], bins=[edges, edges])
                H = H / (flat.shape[0] * np.diff(edges)[0] ** 2)
                out["density"][r, c] = H
                d = np.linalg.norm(flat[:, None, :] - float(sched.a(EPS)) * X[None], axis=-1).min(axis=1)
                out["near_mass"][r, c] = float(np.mean(d < 0.25))
                bar.update()
        bar.close()
        return out

    # the computed arrays through the figure cache (paper_figures/_stage.py): from cache this figure only draws
    out = _stage.cached(NAME, {"seed": seed, "quick": quick, "grid": grid, "fourier_period": float(fourier_period)},
                        compute)
    for r, kind in enumerate(KINDS):
        for c, th in enumerate(ROTATIONS):
            X = circle(4, 1.0, offset=th)
            H = out["density"][r, c]
            ax = axes[r, c]
            im = ax.imshow(np.log10(H.T + 1e-3), origin="lower", extent=(-1.5, 1.5, -1.5, 1.5), cmap="magma",
                           vmin=-3, vmax=2)
            ax.scatter(X[:, 0], X[:, 1], s=14, c=TRAIN)
            ax.text(0.03, 0.04, f"near {out['near_mass'][r, c]:.2f}", transform=ax.transAxes, color="w",
                    fontsize=7)
            if r == 0:
                ax.set_title(f"rotation {th / np.pi:g} pi", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{kind} features")
    fig.colorbar(im, ax=axes, shrink=0.8, label="log10(density + 1e-3)")
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, out)
