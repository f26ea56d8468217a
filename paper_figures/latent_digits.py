"""[HQT] latent digits: ridge residual of RF-model samples in the PCA latent of one digit class."""
from __future__ import annotations

import numpy as np

from rftheory.apps.latent import FULL, GAP_THRESHOLDS, QUICK, run_latent
from rftheory.density.schedules import OU

from ._common import FigureResult, plt, save

NAME = "latent"
TITLE = "[HQT] latent digits: ridge residual, eigengap spectrum, memorisation (sklearn digits '1', PCA-16)"
CAPTION = ("Digit '1' of scikit-learn's 8x8 handwritten digits (182 images, pixels/16) mapped by an exact PCA "
           "to K = 16 dimensions (one global scale: unit mean variance per coordinate). A ReLU random-feature "
           "score model (posterior-mean parametrisation, Fourier time embedding, loss weight 1/h_t, t in "
           "[1e-3, T = 10]; U by stratified Monte Carlo over z, V exact; closed-form gradient flow to tau = inf; "
           "p = 2048, K = 16 frequencies, 8 draws; --quick: p = 512, K = 8, 4 draws) is sampled by the reverse "
           "OU SDE (Euler-Maruyama, geometric grid, 1000 steps and 2000 samples; --quick: 200 and 400) down to "
           "t_min = 1e-3. (a) Hessian eigengap spectrum lambda_k - lambda_{k+1} of log p_t at the samples "
           "(median, quartile band) at t_min and at t = 0.1; d* is the k with the largest median gap. (b) the "
           "d sweep: on-ridge fraction (max-normalised residual < 0.2) and mean normalised residual. (c) "
           "histogram of the max-normalised residual |P_perp s*| at d*; (d) the raw residual in noise units "
           "sqrt(h_t)|P_perp s*|; (e) its evolution over reverse time (median and quartiles, normalised per "
           "time); (f) mean normalised residual over samples whose eigengap exceeds 1e-4 / 1e-3 / 1e-2 "
           "(counts above the bars). Bottom: decoded samples (top row) above their nearest training images "
           "(latent distance to a_t x_i). The memorised fraction (d_1/d_2 < 1/3) is in the title with its 95% "
           "bootstrap interval.")


def _mosaic(top, bottom, side=8, pad=1):
    k = top.shape[0]
    canvas = np.zeros((2 * side + 3 * pad, k * (side + pad) + pad))  # white gaps (gray_r)
    for j in range(k):
        c0 = pad + j * (side + pad)
        canvas[pad:pad + side, c0:c0 + side] = top[j].reshape(side, side)
        canvas[2 * pad + side:2 * pad + 2 * side, c0:c0 + side] = bottom[j].reshape(side, side)
    return canvas


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    cfg = QUICK if quick else FULL
    res = run_latent(cfg, rng=seed, progress=progress)
    sched = OU()
    tm = cfg.t_min
    fig = plt.figure(figsize=(14, 11))
    gs = fig.add_gridspec(3, 3, height_ratios=[1, 1, 0.8])
    ax = [fig.add_subplot(gs[i, j]) for i in range(2) for j in range(3)]
    k = np.arange(1, res.latent.shape[1])
    ax[0].semilogy(k, np.maximum(res.gap_median, 1e-16), "o-", ms=3, label=f"t = {tm:g}")
    ax[0].fill_between(k, np.maximum(res.gap_q25, 1e-16), np.maximum(res.gap_q75, 1e-16), alpha=0.25)
    for te, e in res.extra.items():
        ax[0].semilogy(k, np.maximum(e["gap_median"], 1e-16), "s-", ms=3, label=f"t = {te:g}")
        ax[0].fill_between(k, np.maximum(e["gap_q25"], 1e-16), np.maximum(e["gap_q75"], 1e-16), alpha=0.15)
    ax[0].axvline(res.d_star, color="k", ls="--", lw=0.8)
    ax[0].set(title=f"(a) eigengap spectrum, d* = {res.d_star}", xlabel=r"k: $\lambda_k-\lambda_{k+1}$",
              ylabel="median over samples (floored at 1e-16)")
    ax[0].legend(fontsize=8)
    ax[1].plot(res.sweep["d"], res.sweep["on_ridge"], "o-", ms=3, label="on-ridge fraction")
    ax[1].plot(res.sweep["d"], res.sweep["residual_norm_mean"], "s-", ms=3, label="mean normalised residual")
    ax[1].set(title=f"(b) d sweep at t = {tm:g}", xlabel="ridge dimension d", ylim=(0, 1))
    ax[1].legend(fontsize=8)
    ax[2].hist(res.residual_norm, bins=40, range=(0, 1), color="#1f77b4")
    ax[2].axvline(0.2, color="k", ls="--", lw=0.8)
    ax[2].set(title=f"(c) normalised residual: mean {res.residual_norm.mean():.3f}, median "
                    f"{np.median(res.residual_norm):.3f}\non ridge {res.on_ridge_fraction:.3f}",
              xlabel="r / max r")
    ax[3].hist(np.sqrt(float(sched.h(tm))) * res.residual, bins=40, color="#1f77b4")
    ax[3].set(title="(d) raw residual (noise units)", xlabel=r"$\sqrt{h_t}\,|P_\perp s^*|$")
    ev = res.evolution
    ax[4].semilogx(res.times, ev["norm_median"], "o-", ms=3, label="normalised (median)")
    ax[4].fill_between(res.times, ev["norm_q25"], ev["norm_q75"], alpha=0.25)
    ax[4].invert_xaxis()
    ax[4].set(title="(e) residual over reverse time", xlabel="t (reverse time runs left to right)",
              ylabel="r / max r", ylim=(0, 1))
    tw = ax[4].twinx()
    tw.semilogx(res.times, ev["scaled_median"], "r.-", ms=3)
    tw.set_ylabel(r"median $\sqrt{h_t}\,r$", color="r")
    labels = ["all"] + [f">{g:g}" for g in GAP_THRESHOLDS]
    vals = [res.residual_norm.mean()] + [res.gap_means[g][1] for g in GAP_THRESHOLDS]
    cnts = [res.residual_norm.size] + [res.gap_means[g][0] for g in GAP_THRESHOLDS]
    ax[5].bar(labels, np.nan_to_num(vals), color="#2ca02c")
    for i, c in enumerate(cnts):
        ax[5].text(i, np.nan_to_num(vals[i]) + 0.02, f"n={c}", ha="center", fontsize=8)
    ax[5].set(title="(f) mean normalised residual by eigengap", xlabel="eigengap threshold", ylim=(0, 1))
    axi = fig.add_subplot(gs[2, :])
    nshow = min(12, res.samples.shape[0])
    dec = np.clip(res.pca.decode(res.samples[:nshow]), 0, 1)
    near = res.images[res.nn_index[:nshow]]
    axi.imshow(_mosaic(dec, near), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axi.set_axis_off()
    axi.set_title("decoded samples (top) and their nearest training images (bottom)")
    m = res.memo
    fig.suptitle(f"{TITLE}\nmemorised {m.fraction:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]"
                 f"{' (quick)' if quick else ''}", fontsize=11)
    fig.tight_layout()
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, {"summary": res.summary(), "result": res})
