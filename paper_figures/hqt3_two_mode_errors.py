"""[HQT] two-mode experiment: modes at (+-3, 0), whose ridge is the x-axis (P2), so normal = y and
tangent = x exactly. For an RF score model trained by gradient flow (closed form, W(0) = A/sqrt(p),
A ~ N(0, 1); with W(0) = 0 the normal error is exactly 0, the data having no y-component) with loss weights
lambda in {1, 1/h, 1/h^2}: the normal and tangential parts of the score error s_tau - s* (root mean square
over x ~ p_t and t on a geometric grid in [t0, T]) and of the final-sample error (RF vs exact-score PF-ODE
samples from the same starts) against training time tau; dashed lines are tau = infinity (the architectural
bias). Log scales; the normal part is orders of magnitude below the tangential one.
Parameters: OU, T = 40 (quick 4), t0 = 1e-3, p = 1000 (quick 160), K = 128 (quick 4), 2000 (quick 200)
samples, Heun PF-ODE to t_min.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, datasets
from rftheory.dynamics.sampling import sample
from rftheory.density.schedules import geometric_grid

from . import _hqt
from ._common import FigureResult, save

NAME = "two_mode"
TITLE = "two-mode normal/tangential score and sample errors vs training time, per loss weight"
CAPTION = __doc__
WEIGHTS = ("1", "1/h", "1/h2")


def score_error_parts(field, dens, times, n_per_time, rng):
    """Root-mean-square normal (y) and tangential (x) score error over x ~ p_t, t in ``times``."""
    sq = np.zeros(2)
    for t in times:
        x = dens.sample(float(t), n_per_time, rng)
        e = field.score(x, float(t)) - dens.score(x, float(t))
        sq += (e**2).mean(axis=0)
    rms = np.sqrt(sq / len(times))
    return float(rms[1]), float(rms[0])


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    taus = [1e1, 1e2, 1e3, 1e4, 1e5, np.inf] if quick else [5, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, np.inf]
    X = datasets.modes("two_sym")
    dens = EmpiricalDensity(X)
    times = np.geomspace(s["t0"], s["T"], 12)
    n_samp = 200 if quick else 2000
    x0 = dens.sample(s["T"], n_samp, np.random.default_rng(seed + 4))
    g = geometric_grid(s["T"], s["t_min"], s["steps"])
    exact = sample(dens, x0, g, "heun").final
    data = {}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = dict(zip(WEIGHTS, ("C0", "C1", "C2")))
    _hqt.moments(X, s, seed, WEIGHTS)     # one assembly for the three weights
    for w in WEIGHTS:
        rows = {"tau": [], "score_normal": [], "score_tangent": [], "sample_normal": [], "sample_tangent": []}
        for tau in taus:
            field, *_ = _hqt.train_rf(X, s, seed, weight=w, tau=tau, init="random")
            sn, st = score_error_parts(field, dens, times, 200, np.random.default_rng(seed + 5))
            fin = sample(field, x0, g, "heun").final
            rows["tau"].append(float(tau))
            rows["score_normal"].append(sn)
            rows["score_tangent"].append(st)
            rows["sample_normal"].append(float(np.sqrt(np.mean((fin[:, 1] - exact[:, 1]) ** 2))))
            rows["sample_tangent"].append(float(np.sqrt(np.mean((fin[:, 0] - exact[:, 0]) ** 2))))
        data[w] = rows
        finite = [i for i, tv in enumerate(rows["tau"]) if np.isfinite(tv)]
        tf = np.array(rows["tau"])[finite]
        for ax, kind in zip(axes, ("score", "sample")):
            ax.plot(tf, np.array(rows[f"{kind}_normal"])[finite], "o-", color=colors[w], label=f"normal, lambda={w}")
            ax.plot(tf, np.array(rows[f"{kind}_tangent"])[finite], "s-", color=colors[w], alpha=0.5,
                    label=f"tangent, lambda={w}")
            ax.axhline(rows[f"{kind}_normal"][-1], ls="--", color=colors[w], lw=0.8)
            ax.axhline(rows[f"{kind}_tangent"][-1], ls="--", color=colors[w], lw=0.8, alpha=0.5)
    axes[0].set(xscale="log", yscale="log", xlabel="training time tau", ylabel="RMS error",
                title="score error s_tau - s* (normal = y, tangent = x)")
    axes[1].set(xscale="log", yscale="log", xlabel="training time tau",
                title="final-sample error vs exact-score samples")
    axes[0].legend(fontsize=7, ncol=2)
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
