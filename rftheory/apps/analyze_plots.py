"""The figure of ``rftheory analyze`` (analyze.png / .pdf): samples over the ridge (coordinates for D <= 3,
the samples' first two principal directions otherwise), the distance histogram against chi_{D-d} with the
calibrated tube, the model's score-error split (or the offset split without a model), d1/d2, nearest-neighbour
distances, and the Hessian spectrum 1 + h_t lambda_k with the dimension criterion. All axes labelled."""
from __future__ import annotations

import numpy as np
from scipy.stats import chi

__all__ = ["plot"]


def _plane(res):
    """2-d view: the coordinates for D <= 3 (x_1, x_2), else the training set's first two principal
    directions through its (scaled) mean. Returns (project, xlabel, ylabel)."""
    if res.D == 1:
        return (lambda P: np.column_stack([P[:, 0], np.zeros(len(P))])), "x_1", "(D = 1)"
    if res.D <= 3:
        return (lambda P: P[:, :2]), "x_1", "x_2"
    S = res.samples
    c = S.mean(axis=0)
    _, _, vt = np.linalg.svd(S - c, full_matrices=False)
    V = vt[:2].T
    return (lambda P: (P - c) @ V), "principal direction 1 (samples)", "principal direction 2 (samples)"


def plot(res, path_png, path_pdf):
    """Draw the six-panel figure of an analysis and save it as PNG (110 dpi) and PDF (module docstring).

    Parameters
    ----------
    res : Analysis
        Result of :func:`rftheory.apps.analyze.analyze_samples`.
    path_png, path_pdf : str or os.PathLike
        Files to write.

    Returns
    -------
    None
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(14, 8))
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 3).ravel()
    conv = res.status == 0
    tb = res.tube
    f, xl, yl = _plane(res)
    P, R = f(res.samples), f(res.proj_points)
    ax[0].scatter(*P[conv & tb.inside].T, s=5, c="#1f77b4", label="in tube")
    ax[0].scatter(*P[conv & ~tb.inside].T, s=5, c="#d62728", label="outside tube")
    ax[0].scatter(*P[~conv].T, s=5, c="0.6", marker="x", label="not counted")
    ax[0].scatter(*R[conv].T, s=2, c="k", label=r"ridge projection $\pi(x)$")
    ax[0].set(title=f"samples over the d = {res.d} ridge", xlabel=xl, ylabel=yl)
    ax[0].legend(fontsize=7, markerscale=2)
    z = tb.z[conv]
    hi = float(max(np.quantile(z, 0.995), 1.3 * tb.radius))
    ax[1].hist(np.minimum(z, hi), bins=50, range=(0, hi), density=True, color="#1f77b4", alpha=0.7,
               label="samples (counted)")
    zz = np.linspace(0, hi, 300)
    ax[1].plot(zz, chi.pdf(zz, res.D - res.d), "k-", lw=1, label=rf"$\chi_{{{res.D - res.d}}}$ (exact draws)")
    ax[1].axvline(tb.radius, color="k", ls="--", lw=0.8, label=f"tube, level {tb.level:g}")
    ax[1].set(title=f"distance to ridge: tube fraction {tb.fraction:.3f} ± {tb.se:.3f}",
              xlabel=r"$|x - \pi(x)| / \sqrt{h_t}$", ylabel="density")
    ax[1].legend(fontsize=7)
    if res.model_error is not None:
        en, ep = res.model_error[:, 0], res.model_error[:, 1]
        ax[2].scatter(en, ep, s=4, c="#9467bd")
        top = float(max(en.max(), ep.max(), 1e-300))
        ax[2].plot([0, top], [0, top], "k:", lw=0.8, label="equal parts")
        ax[2].set(title="model score error split at the samples", xlabel=r"normal part $|P_\perp e|$ (1/length)",
                  ylabel=r"tangent part $|P_\parallel e|$ (1/length)")
        ax[2].legend(fontsize=7)
    else:
        ax[2].scatter(res.normal_offset[conv], res.tangent_offset[conv], s=4)
        ax[2].set(title="offset x - pi(x) split in the ridge frame", xlabel="normal part (length)",
                  ylabel="tangent part (length)")
    r = np.asarray(res.memo.ratios)
    ax[3].hist(r[r < 1 / 3], bins=40, range=(0, 1), color="#d62728", label="memorised (d1/d2 < 1/3)")
    ax[3].hist(r[r >= 1 / 3], bins=40, range=(0, 1), color="#7f7f7f", label="not memorised")
    ax[3].axvline(1 / 3, color="k", ls="--", lw=0.8)
    ax[3].legend(fontsize=7, loc="upper center")
    ax[3].set(title=f"memorised {res.memo.fraction:.3f} (d1/d2 < 1/3)", xlabel="d1/d2 (distinct points)",
              ylabel="samples")
    top = float(max(res.nn_distance.max(), res.train_nn_distance.max(), 1e-300))
    ax[4].hist(res.nn_distance, bins=40, range=(0, top), alpha=0.6, density=True, label="samples")
    ax[4].hist(res.train_nn_distance, bins=40, range=(0, top), alpha=0.6, density=True, label="train (LOO)")
    ax[4].set(title="nearest-neighbour distance", xlabel=r"distance to nearest $a_t x_i$ (length)",
              ylabel="density")
    ax[4].legend(fontsize=8)
    k = np.arange(1, res.D + 1)
    spec = np.median(1.0 + res.h * res.eigenvalues, axis=0)  # posterior variance / noise variance (dimension.py)
    ax[5].plot(k, spec, "o-", ms=3)
    ax[5].xaxis.set_major_locator(MaxNLocator(integer=True))  # k counts directions
    ax[5].axhline(0.5, color="k", ls="--", lw=0.8, label="criterion 1/2")
    ax[5].axvline(res.d + 0.5, color="0.5", ls=":", lw=0.8, label=f"d = {res.d}")
    how = f"chosen, share {res.dimension.share:.2f}" if res.dimension is not None else "given"
    ax[5].set(title=f"Hessian spectrum (d = {res.d} {how})", xlabel="k (descending)",
              ylabel=r"median $1 + h_t \lambda_k$")
    ax[5].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path_png, format="png", dpi=110)
    fig.savefig(path_pdf, format="pdf")
