"""[HQT] Fig. 1 analogue: the d = 1 log-density ridge of p_t (green) at six times from T to t_min, the
samples of a random-feature score model trained in closed form (blue) at the same times of one reverse-SDE
run, and the training points a_t x_i (red), on the project's 13-point set (rftheory.data.datasets.THIRTEEN).
Samples first *reach* a tube around the ridge, their offset then *aligns* with it, and they *slide* along it.
Parameters: OU; RF with ReLU features, p = 1000, K = 128, T = 40 (the papers' sizes), weight 1/h, tau = inf
(quick: p = 160, K = 4, T = 4); 2000 samples (quick 300), Euler-Maruyama on a geometric grid to t_min = 1e-3
(quick 1e-2).
The numbers behind it: the fraction of samples within r = 3 sqrt(h_t) of the ridge at each time.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, datasets, ridge

from . import _hqt, _stage
from ._common import FigureResult, save

NAME = "ridge"
TITLE = "ridge of p_t and RF samples at six times (reach -> align -> slide)"
CAPTION = __doc__


def _compute(s: dict, seed: int) -> dict:
    """One reverse run recorded at six times; then, per time (independent, over the query-thread pool), the
    traced ridge and the samples' distances to it."""
    X = datasets.thirteen_points()
    dens = EmpiricalDensity(X)
    field, *_ = _hqt.train_rf(X, s, seed)
    times = np.geomspace(s["T"], s["t_min"], 6)
    tr = _hqt.reverse_samples(field, dens, s, seed + 1, record=list(times))

    def one(k):
        t = float(tr.times[k])
        a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
        esc = _hqt.escaped(tr.states[k], X, a)
        xs = tr.states[k][~esc]
        pcs = _hqt.pieces_arrays(ridge.trace(dens, t, 1))
        dist, pr = ridge.distance(dens, xs, t, 1)
        r = 3 * np.sqrt(h)
        ok = pr.status <= 2
        frac = float(np.mean(dist[ok] <= r)) if ok.any() else float("nan")
        return {"xs": xs, "ridge": pcs, "frac": frac, "n_escaped": int(esc.sum()),
                "median": float(np.median(dist[ok])) if ok.any() else float("nan"), "r": r}

    per = _hqt.run_parallel(one, len(tr.times))
    return {"times": tr.times, **{f"t{k}": v for k, v in enumerate(per)}}


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    X = datasets.thirteen_points()
    dens = EmpiricalDensity(X)
    c = _stage.cached(NAME, {"sizes": s, "seed": seed}, lambda: _compute(s, seed))
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    data = {"times": c["times"].tolist(), "tube_fraction": [], "median_distance": [], "r_tube": [],
            "n_escaped": []}
    for k, (ax, t) in enumerate(zip(axes.ravel(), c["times"])):
        t = float(t)
        ck = c[f"t{k}"]
        a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
        _hqt.draw_pieces(ax, ck["ridge"], label=k == 0)
        _hqt.draw_samples(ax, ck["xs"], label=k == 0)
        _hqt.draw_training(ax, X, a, label=k == 0)
        n_esc, frac = ck["n_escaped"], ck["frac"]
        data["n_escaped"].append(n_esc)
        data["tube_fraction"].append(frac)
        data["median_distance"].append(ck["median"])
        data["r_tube"].append(ck["r"])
        note = f" ({n_esc} escaped)" if n_esc else ""
        ax.set_title(f"t = {t:.3g}: {100 * frac:.0f}% within 3$\\sqrt{{h_t}}$ of the ridge{note}", fontsize=9)
        lim = 1.15 * max(np.abs(a * X).max() + 3 * np.sqrt(h), 1e-3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.suptitle("Reach, align, slide: RF samples around the ridge of $p_t$ (13-point set)")
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
