"""[GTV] Fig. 1: relative variance of the proxy score, tr C / (tr C + |s*|^2), for four six-point sets."""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.data.datasets import gtv_set
from rftheory.density.schedules import GTVFig1
from rftheory.gtv.variance import relative_variance_map

from ._common import TRAIN, FigureResult, plt, save

NAME = "gtv1"
TITLE = "GTV Fig. 1: relative variance of the proxy score (4 data sets x 5 times)"
CAPTION = ("Relative variance tr C/(tr C + |s*|^2) of the DSM proxy score s~ = (a_t x_0 - x)/h_t, with "
           "C = Cov[s~|x] = (a_t^2/h_t^2) Sigma_t(x) = H_t + I/h_t (V1), for four six-point training sets "
           "(rows: hexagon, line from (-1,-1) to (1,1), L-shape, random) at t = 0.05, 0.1, 0.2, 0.5, 0.75 "
           "(columns) under h_t = t, a_t = sqrt(1 - t), on a 100 x 100 grid of [-2, 2]^2 (40 x 40 with "
           "--quick). Red: the scaled training points a_t x_i. The variance is largest between training "
           "points and vanishes on top of them at small t.")

SETS = ("hexagon", "line", "L", "random")
TIMES = (0.05, 0.1, 0.2, 0.5, 0.75)


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    from tqdm.auto import tqdm

    n_grid = 40 if quick else 100
    sched = GTVFig1()
    fig, axes = plt.subplots(len(SETS), len(TIMES), figsize=(2.2 * len(TIMES), 2.2 * len(SETS)),
                             sharex=True, sharey=True)
    maps = {}
    im = None
    for r, name in enumerate(tqdm(SETS, disable=not progress, desc=NAME)):
        X = gtv_set(name)
        mp = relative_variance_map(EmpiricalDensity(X, sched), TIMES, lim=2.0, n_grid=n_grid)
        maps[name] = mp.values
        for c, t in enumerate(TIMES):
            ax = axes[r, c]
            im = ax.imshow(mp.values[c], origin="lower", extent=(-2, 2, -2, 2), vmin=0, vmax=1,
                           cmap="viridis", interpolation="nearest")
            aX = float(sched.a(t)) * X
            ax.scatter(aX[:, 0], aX[:, 1], s=8, c=TRAIN)
            ax.set_xticks([-2, 0, 2])
            ax.set_yticks([-2, 0, 2])
            if r == 0:
                ax.set_title(f"t = {t}")
            if c == 0:
                ax.set_ylabel(name)
    fig.colorbar(im, ax=axes, shrink=0.6, label="tr C / (tr C + |s*|^2)")
    files = save(fig, out_dir, NAME)
    grid = np.linspace(-2.0, 2.0, n_grid)
    return FigureResult(NAME, files, {"maps": maps, "times": np.array(TIMES), "grid": grid,
                                      "sets": {n: gtv_set(n) for n in SETS}})
