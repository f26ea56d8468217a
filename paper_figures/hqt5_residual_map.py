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

from . import _hqt, _stage
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


def _one(X, field, s: dict, seed: int) -> dict:
    t = s["t_min"]
    dens = EmpiricalDensity(X)
    x = _hqt.reverse_samples(field, dens, s, seed + 1).final
    esc = _hqt.escaped(x, X, float(dens.schedule.a(t)))
    x = x[~esc]                      # one escaped sample would set the max and make every other 0
    rn, r, frac = on_ridge(dens, x, t)
    return {"x": x, "rn": rn, "ridge": _hqt.pieces_arrays(ridge.trace(dens, t, 1)),
            "data": {"on_ridge_fraction": frac, "residual_median": float(np.median(r)),
                     "residual_max": float(r.max()), "normalised_mean": float(rn.mean()),
                     "n_escaped": int(esc.sum())}}


def _compute(s: dict, seed: int) -> dict:
    """The RF fields in order, then the two sets' samples, residuals and ridges over the query-thread pool
    (within one figure run the samples are those of figures "ridge" and "structured": _hqt.reverse_samples)."""
    sets = _sets()
    fields = [_hqt.train_rf(X, s, seed)[0] for X in sets.values()]
    per = _hqt.run_parallel(lambda k: _one(list(sets.values())[k], fields[k], s, seed), len(sets))
    return {f"set{k}": v for k, v in enumerate(per)}


def _sets() -> dict:
    return {"13-point set": datasets.thirteen_points(), "3 modes": datasets.modes("three")}


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    c = _stage.cached(NAME, {"sizes": s, "seed": seed}, lambda: _compute(s, seed))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    data = {}
    t = s["t_min"]
    for k, (ax, (label, X)) in enumerate(zip(axes, _sets().items())):
        ck = c[f"set{k}"]
        a = float(EmpiricalDensity(X).schedule.a(t))
        x, rn = ck["x"], ck["rn"]
        _hqt.draw_pieces(ax, ck["ridge"])
        sc = ax.scatter(x[:, 0], x[:, 1], c=rn, cmap="viridis", s=6, vmin=0, vmax=1)
        _hqt.draw_training(ax, X, a)
        data[label] = d = ck["data"]
        frac, n_esc = d["on_ridge_fraction"], d["n_escaped"]
        note = f"; {n_esc} escaped, left out" if n_esc else ""
        ax.set_title(f"{label}: {100 * frac:.0f}% on the ridge (normalised residual < {THRESHOLD}{note})",
                     fontsize=9)
        ax.set_aspect("equal")
    fig.colorbar(sc, ax=axes, label="|P_perp s*| / max")
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
