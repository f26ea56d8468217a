"""Structured bias ([HQT]): final samples of RF score models (closed-form gradient flow, tau = inf) for five
mode configurations -- 3 modes, square, triangle + hypotenuse midpoint, square + centre, 3x3 grid (spacing 1)
-- with the d = 1 ridge of p_{t_min} (green), the training points a_t x_i (red) and the attractors of the RF's
drift restricted to the ridge predicted by T4 (black crosses: inter-mode ones, farther than 3 sqrt(h) from
every a_t x_i). Same model sizes for every configuration (p = 1000, K = 128, T = 40; quick: p = 160, K = 4, T = 4);
reverse SDE samples, 2000 (quick 300) to t_min = 1e-3 (quick 1e-2). Samples that escaped the data's region
(_hqt.escaped) are counted in the title and left out of the fractions.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, bounds, datasets, ridge

from . import _hqt, _stage
from ._common import FigureResult, save

NAME = "structured"
TITLE = "structured bias: RF samples and predicted inter-mode attractors on five mode configurations"
CAPTION = __doc__
CONFIGS = ("three", "square", "triangle_mid", "square_centre", "grid3")


def _one(name: str, field, s: dict, seed: int) -> dict:
    t = s["t_min"]
    X = datasets.modes(name)
    dens = EmpiricalDensity(X)
    x = _hqt.reverse_samples(field, dens, s, seed + 1).final
    esc = _hqt.escaped(x, X, float(dens.schedule.a(t)))
    x = x[~esc]
    pcs = ridge.trace(dens, t, 1)
    att, _ = bounds.ridge_attractors(field, pcs, t, data=X)
    inter = np.array([a.point for a in att if a.inter_mode]).reshape(-1, 2)
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    dmin = np.min(np.linalg.norm(x[:, None, :] - a * X[None], axis=-1), axis=1)
    far = float(np.mean(dmin > 3 * np.sqrt(h)))
    near_att = float(np.mean(np.min(np.linalg.norm(x[:, None, :] - inter[None], axis=-1), axis=1)
                             <= 3 * np.sqrt(h))) if len(inter) else 0.0
    return {"x": x, "ridge": _hqt.pieces_arrays(pcs), "inter": inter,
            "data": {"inter_mode_attractors": inter.tolist(), "n_attractors": len(att),
                     "fraction_far_from_modes": far, "fraction_near_predicted_attractors": near_att,
                     "n_escaped": int(esc.sum())}}


def _compute(s: dict, seed: int) -> dict:
    """The RF fields in order (moments and flows), then the five configurations' samples, ridges and
    attractors, independent of each other, over the query-thread pool."""
    fields = [_hqt.train_rf(datasets.modes(name), s, seed)[0] for name in CONFIGS]
    per = _hqt.run_parallel(lambda k: _one(CONFIGS[k], fields[k], s, seed), len(CONFIGS))
    return dict(zip(CONFIGS, per))


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    c = _stage.cached(NAME, {"sizes": s, "seed": seed}, lambda: _compute(s, seed))
    fig, axes = plt.subplots(1, len(CONFIGS), figsize=(4 * len(CONFIGS), 4.2))
    data = {}
    t = s["t_min"]
    for ax, name in zip(axes, CONFIGS):
        X = datasets.modes(name)
        a = float(EmpiricalDensity(X).schedule.a(t))
        cn = c[name]
        _hqt.draw_pieces(ax, cn["ridge"])
        _hqt.draw_samples(ax, cn["x"])
        _hqt.draw_training(ax, X, a)
        inter = cn["inter"].reshape(-1, 2)
        if len(inter):
            ax.plot(inter[:, 0], inter[:, 1], "kx", ms=9, mew=2, label="T4 inter-mode attractor")
        data[name] = d = cn["data"]
        if len(inter) == 0:
            d["inter_mode_attractors"] = []
        n_esc = d["n_escaped"]
        note = f"\n({n_esc} escaped, not drawn)" if n_esc else ""
        ax.set_title(f"{name}: {100 * d['fraction_far_from_modes']:.0f}% of samples between modes{note}", fontsize=9)
        ax.set_aspect("equal")
    axes[0].legend(fontsize=7)
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
