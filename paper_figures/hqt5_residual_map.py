"""Ridge residual map ([HQT]): the final samples of a random-feature score model coloured by their ridge
residual |P_perp s*(x, t_min)| normalised by its maximum over the samples; samples below 0.2 count as
"on the ridge" and their fraction is given per panel. Data sets: the 13-point set and the 3-mode set
(0,0), (5,0), (0,5); the d = 1 ridge of p_{t_min} in green, training points a_t x_i in red. RF sizes as in
figure "ridge" (quick sizes in quick mode); reverse SDE (Euler-Maruyama).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, datasets, ridge

from . import _hqt
from ._common import FigureResult, save

NAME = "residual"
TITLE = "ridge residual map of RF samples (normalised residual, on-ridge threshold 0.2)"
CAPTION = __doc__
THRESHOLD = 0.2


def on_ridge(dens, x, t, d=1, threshold=THRESHOLD):
    """(normalised residual, raw residual, on-ridge fraction) of samples x at time t."""
    r = ridge.residual(dens, x, t, d).residual
    rn = r / r.max() if r.max() > 0 else r
    return rn, r, float(np.mean(rn < threshold))


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    sets = {"13-point set": datasets.thirteen_points(), "3 modes": datasets.modes("three")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    data = {}
    t = s["t_min"]
    for ax, (label, X) in zip(axes, sets.items()):
        dens = EmpiricalDensity(X)
        field, *_ = _hqt.train_rf(X, s, seed)
        x = _hqt.reverse_samples(field, dens, s, seed + 1).final
        esc = _hqt.escaped(x, X, float(dens.schedule.a(t)))
        x = x[~esc]                      # one escaped sample would set the max and make every other 0
        rn, r, frac = on_ridge(dens, x, t)
        _hqt.draw_ridge(ax, dens, t)
        sc = ax.scatter(x[:, 0], x[:, 1], c=rn, cmap="viridis", s=6, vmin=0, vmax=1)
        _hqt.draw_training(ax, X, float(dens.schedule.a(t)))
        note = f"; {int(esc.sum())} escaped, left out" if esc.any() else ""
        ax.set_title(f"{label}: {100 * frac:.0f}% on the ridge (normalised residual < {THRESHOLD}{note})",
                     fontsize=9)
        ax.set_aspect("equal")
        data[label] = {"on_ridge_fraction": frac, "residual_median": float(np.median(r)),
                       "residual_max": float(r.max()), "normalised_mean": float(rn.mean()),
                       "n_escaped": int(esc.sum())}
    fig.colorbar(sc, ax=axes, label="|P_perp s*| / max")
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
