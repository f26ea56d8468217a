"""[HQT] two-mode experiment: modes at (+-3, 0), whose ridge is the x-axis (P2), so normal = y and
tangent = x exactly. An RF score model (posterior-mean parametrization) trained by gradient flow (closed form,
W(0) = A/sqrt(p), A ~ N(0, 1); with W(0) = 0 the normal error is exactly 0, the data having no y-component) with
loss weights lambda in {1, 1/h, 1/h^2}, against training time tau (bottom axis: ours, the flow
dW/dtau = -2(WU - V); top axis: the paper's, tau_paper = p tau, their U, V carrying a 1/p). Dashed: tau = inf.
Two measures of the same error, side by side:
(a) the paper's, loss-level: the excess DSM loss L(W) - L* over the exact denoiser's loss L*, split into
normal and tangent parts (1/D) int_{t0}^{T} lambda(t) h_t^2 E_{x~p_t} |P (s_tau - s*)|^2 dt (posterior-mean
units; rftheory.rf.decomposition.loss_split, L* by Monte Carlo in x, 400 draws per time node, its standard
error in the JSON);
(b) ours until now: the root mean square of the score error s_tau - s* in score units, over x ~ p_t and an
equally weighted geometric grid of 12 times in [t0, T];
(c) why (b) is large for lambda = 1: its t-profile at tau = inf, which grows like 1/h_t toward t0 (a fit
weighted by lambda = 1 leaves a posterior-mean error O(1) there, i.e. a score error O(1/h_t));
(d) the final-sample error (RF vs exact-score Heun PF-ODE samples from the same starts).
Parameters: OU, T = 40 (quick 4), t0 = 1e-3, p = 1000 (quick 160), K = 128 (quick 4), 2000 (quick 200)
samples, Heun PF-ODE to t_min.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, datasets
from rftheory.dynamics.sampling import sample
from rftheory.density.schedules import OU, geometric_grid
from rftheory.rf.decomposition import irreducible_loss, loss_split

from . import _hqt, _stage
from ._common import FigureResult, save

NAME = "two_mode"
TITLE = "two-mode normal/tangential errors vs training time, per loss weight: loss-level split and RMS score error"
CAPTION = __doc__
WEIGHTS = _hqt.TWO_MODE_WEIGHTS
NORMAL = np.array([[0.0], [1.0]])        # the ridge normal of two modes on the x-axis, exactly (P2)
LSTAR_DRAWS = 400


def score_error_parts(field, dens, times, n_per_time, rng, per_time=False):
    """Root-mean-square normal (y) and tangential (x) score error over x ~ p_t, t in ``times`` (equal weights);
    with ``per_time`` also the (len(times), 2) per-time RMS (normal, tangent)."""
    prof = np.zeros((len(times), 2))
    for k, t in enumerate(times):
        x = dens.sample(float(t), n_per_time, rng)
        e = field.score(x, float(t)) - dens.score(x, float(t))
        prof[k] = (e**2).mean(axis=0)[::-1]
    rms = np.sqrt(prof.mean(axis=0))
    out = (float(rms[0]), float(rms[1]))
    return (out, np.sqrt(prof)) if per_time else out


def _compute(s: dict, taus, times, n_samp: int, seed: int) -> dict:
    """The numbers behind the figure, per weight: every (weight, tau) job -- loss split, RMS score error, Heun
    samples -- is independent of the others, so they run over the query-thread pool (rftheory._blas; BLAS on one
    thread meanwhile); each job's arithmetic is that of a serial run, so the numbers do not depend on it."""
    from rftheory._blas import blas_single, run_blocks

    X = datasets.modes("two_sym")
    dens = EmpiricalDensity(X)
    x0 = dens.sample(s["T"], n_samp, np.random.default_rng(seed + 4))
    g = geometric_grid(s["T"], s["t_min"], s["steps"])
    model, moms = _hqt.moments(X, s, seed, WEIGHTS)     # one assembly for the three weights
    # the fields in order (one eigendecomposition of U per weight, _hqt.train_rf), before the threads start
    fields = {(w, tau): _hqt.train_rf(X, s, seed, weight=w, tau=tau, init="random")[0]
              for w in WEIGHTS for tau in taus}
    jobs = [("exact", None, None)] + [("Ls", w, None) for w in WEIGHTS] + \
           [("tau", w, tau) for w in WEIGHTS for tau in taus]
    out = [None] * len(jobs)
    mom_of = dict(zip(WEIGHTS, moms))

    def run(k):
        kind, w, tau = jobs[k]
        if kind == "exact":
            out[k] = sample(dens, x0, g, "heun").final
        elif kind == "Ls":
            out[k] = irreducible_loss(model, X, mom_of[w], OU(), NORMAL, LSTAR_DRAWS,
                                      np.random.default_rng([seed, 13]), n_gl=s.get("n_gl", 12))
        else:
            field = fields[w, tau]
            out[k] = (field.W, score_error_parts(field, dens, times, 200, np.random.default_rng(seed + 5), True),
                      sample(field, x0, g, "heun").final)

    with blas_single():
        run_blocks(run, range(len(jobs)))
    exact = out[0]
    Ls_of = dict(zip(WEIGHTS, out[1:1 + len(WEIGHTS)]))
    res = {}
    for k, (kind, w, tau) in enumerate(jobs):
        if kind != "tau":
            continue
        rows = res.setdefault(w, {k2: [] for k2 in ("tau", "tau_paper", "loss_normal", "loss_tangent",
                                                    "score_normal", "score_tangent", "sample_normal",
                                                    "sample_tangent")})
        W, ((sn, st), prof), fin = out[k]
        ls = loss_split(model, W, X, mom_of[w], NORMAL, OU(), n_gl=s.get("n_gl", 12), L_star=Ls_of[w])
        rows["tau"].append(float(tau))
        rows["tau_paper"].append(float(tau) * s["p"])
        rows["loss_normal"].append(ls.normal)
        rows["loss_tangent"].append(ls.tangent)
        rows["score_normal"].append(sn)
        rows["score_tangent"].append(st)
        rows["sample_normal"].append(float(np.sqrt(np.mean((fin[:, 1] - exact[:, 1]) ** 2))))
        rows["sample_tangent"].append(float(np.sqrt(np.mean((fin[:, 0] - exact[:, 0]) ** 2))))
        if tau == taus[-1]:
            Ls = Ls_of[w]
            rows.update({"loss_se_normal": Ls.se_normal, "loss_se_tangent": Ls.se_tangent, "L_star": Ls.value,
                         "L_star_se": Ls.se, "L_star_draws_per_node": LSTAR_DRAWS, "L_inf": ls.loss,
                         "t_profile_rms_normal_inf": prof[:, 0].tolist(),
                         "t_profile_rms_tangent_inf": prof[:, 1].tolist()})
    return res


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    taus = [1e1, 1e2, 1e3, 1e4, 1e5, np.inf] if quick else [5, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, np.inf]
    X = datasets.modes("two_sym")
    dens = EmpiricalDensity(X)
    times = np.geomspace(s["t0"], s["T"], 12)
    n_samp = 200 if quick else 2000
    data = {"measures": {
        "loss_normal/loss_tangent": "paper's: (1/D) int_{t0}^{T} lambda h_t^2 E_{p_t}|P(s_tau - s*)|^2 dt, "
                                    "parts of L(W) - L* (posterior-mean units)",
        "score_normal/score_tangent": "RMS of s_tau - s* (score units) over x ~ p_t and 12 geometric t in [t0, T]",
        "sample_normal/sample_tangent": "RMS of final RF sample - exact-score sample (same starts, Heun PF-ODE)",
        "tau": "ours (dW/dtau = -2(WU - V)); tau_paper = p * tau"},
        "p": s["p"], "K": s["K"], "T": s["T"], "t0": s["t0"], "t_profile_times": times.tolist()}
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    colors = dict(zip(WEIGHTS, ("C0", "C1", "C2")))
    res = _stage.cached(NAME, {"sizes": s, "seed": seed, "taus": taus, "n_samp": n_samp},
                        lambda: _compute(s, taus, times, n_samp, seed))
    for w in WEIGHTS:
        rows = data[w] = res[w]
        prof = np.stack([rows["t_profile_rms_normal_inf"], rows["t_profile_rms_tangent_inf"]], axis=1)
        finite = [i for i, tv in enumerate(rows["tau"]) if np.isfinite(tv)]
        tf = np.array(rows["tau"])[finite]
        for ax, kind in zip((axes[0, 0], axes[0, 1], axes[1, 1]), ("loss", "score", "sample")):
            nrm = np.array(rows[f"{kind}_normal"])
            ax.plot(tf, np.maximum(nrm[finite], 1e-30), "o-", color=colors[w], label=f"normal, lambda={w}")
            ax.plot(tf, np.array(rows[f"{kind}_tangent"])[finite], "s-", color=colors[w], alpha=0.5,
                    label=f"tangent, lambda={w}")
            if nrm[-1] > 1e-30:
                ax.axhline(nrm[-1], ls="--", color=colors[w], lw=0.8)
            ax.axhline(rows[f"{kind}_tangent"][-1], ls="--", color=colors[w], lw=0.8, alpha=0.5)
        axes[1, 0].plot(times, prof[:, 1], "s-", color=colors[w], alpha=0.6, label=f"tangent, lambda={w}")
        axes[1, 0].plot(times, prof[:, 0], "o-", color=colors[w], label=f"normal, lambda={w}")
    p = s["p"]
    for ax in (axes[0, 0], axes[0, 1], axes[1, 1]):
        ax.set(xscale="log", yscale="log", xlabel="training time tau (ours)")
        top = ax.secondary_xaxis("top", functions=(lambda v: v * p, lambda v: v / p))
        top.set_xlabel(f"tau_paper = p tau (p = {p})")
    axes[0, 0].set(ylabel="excess loss part", title="(a) paper's measure: L(W) - L* split, normal = y, tangent = x")
    axes[0, 1].set(ylabel="RMS error (1/length)", title="(b) RMS score error over x ~ p_t, 12 geometric t")
    axes[1, 0].set(xscale="log", yscale="log", xlabel="diffusion time t", ylabel="RMS score error at tau = inf",
                   title="(c) t-profile of (b) at tau = inf")
    axes[1, 1].set(ylabel="RMS (length)", title="(d) final-sample error vs exact-score samples")
    axes[0, 0].legend(fontsize=7, ncol=2)
    axes[1, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, data)
