"""Phase timeline of reverse-time inference with a random-feature score model, predictions over measurements.

(a) 13-point set, PF-ODE: median distance to the d = 1 ridge of p_t against reverse time, with the median T2
    (Groenwall, with the frame-turning rate kappa) bound over the trajectories inside the beta-regular tube.
(b) the tangential deviation |P_par (x_RF - x_exact)| of RF and exact-score trajectories from the same starts,
    with the median T3 bound.
(c) two modes (+-3, 0): the RF samples' offset |y| from the x-axis (the affine hull) against the exact T1
    solution evaluated with the RF's normal error recorded along each path (pathwise, trapezoid in t).
(d) when samples reach the tube r = sqrt(h_t) and when their offset aligns (stays within 2x its final value).
Parameters as in figure "ridge" (quick sizes in quick mode); PF-ODE Heun on a geometric grid.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rftheory import EmpiricalDensity, bounds, datasets, dynamics
from rftheory.dynamics.sampling import sample
from rftheory.density.schedules import geometric_grid

from . import _hqt, _stage
from ._common import RIDGE, SAMPLES, FigureResult, save

NAME = "phases"
TITLE = "phase timeline: distance to the ridge and tangential slide vs reverse time, with T1/T2/T3"
CAPTION = __doc__


def _compute(s: dict, seed: int, n_traj: int, n_rec: int, n_rec2: int, progress: bool) -> dict:
    """Everything the figure draws and reports, from the three independent runs (RF and exact-score PF-ODE from
    the same starts on the 13-point set, RF on two modes), which run over the query-thread pool."""
    from rftheory._blas import blas_single, run_blocks

    X = datasets.thirteen_points()
    dens = EmpiricalDensity(X)
    field, *_ = _hqt.train_rf(X, s, seed)
    rng = np.random.default_rng(seed + 2)
    x0 = dens.sample(s["T"], n_traj, rng)
    g = geometric_grid(s["T"], s["t_min"], s["steps"])
    X2 = datasets.modes("two_sym")
    d2 = EmpiricalDensity(X2)
    _hqt.moments(X2, s, seed, _hqt.TWO_MODE_WEIGHTS)   # the two-mode figure's assembly, shared (not a second)
    f2, *_ = _hqt.train_rf(X2, s, seed)
    x2 = d2.sample(s["T"], n_traj, np.random.default_rng(seed + 3))
    runs = [(field, x0, n_rec), (dens, x0, n_rec), (f2, x2, n_rec2)]
    trs = [None] * len(runs)

    def run(k):
        fld, xs, rec = runs[k]
        trs[k] = sample(fld, xs, g, "heun", record=rec)

    with blas_single():
        run_blocks(run, range(len(runs)))
    M = dynamics.measure(dens, trs[0], 1, field=field, progress=progress)
    M0 = dynamics.measure(dens, trs[1], 1, velocity=False, kappa=False)
    B2 = bounds.t2_series(M)
    par, B3 = bounds.t3_series(M, M0)
    r_t = np.sqrt(dens.schedule.h(M.times))
    inside = M.distance <= r_t[:, None]
    reach = np.where(inside.any(0), M.times[np.argmax(inside, 0)], np.nan)
    ph = dynamics.phases(M, r_tube=float(r_t[-1]))
    # (c) two modes: T1 pathwise
    tr2 = trs[2]
    tt = tr2.times
    eN = np.stack([f2.score(tr2.states[i], float(t))[:, 1] - d2.score(tr2.states[i], float(t))[:, 1]
                   for i, t in enumerate(tt)])
    h = d2.schedule.h(tt)
    integrand = eN / np.sqrt(h)[:, None]
    cum = np.concatenate([np.zeros((1, n_traj)), np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) *
                                                           (-np.diff(tt))[:, None], axis=0)])
    y_pred = np.sqrt(h / h[0])[:, None] * tr2.states[0][:, 1][None] + np.sqrt(h)[:, None] * cum
    y_meas = tr2.states[:, :, 1]
    t2 = bounds.evaluate_t2(M)
    t3 = bounds.evaluate_t3(M, M0)
    par_med, b3_med = np.nanmedian(par, 1), np.nanmedian(B3, 1)
    k = min(12, n_traj)
    return {"t": M.times, "dist_med": np.nanmedian(M.distance, 1),
            "dist_tube_med": np.nanmedian(np.where(np.isnan(B2), np.nan, M.distance), 1),
            "b2_med": np.nanmedian(B2, 1), "par_med": par_med, "b3_med": b3_med, "tt": tt,
            "y_meas": y_meas[:, :k], "y_pred": y_pred[:, :k], "reach": reach, "align_time": ph.align_time,
            "data": {"t2_coverage": t2.coverage, "t2_median_ratio": t2.median_ratio, "t2_n_tube": t2.n_tube,
                     "t3_coverage": t3.coverage, "t3_median_ratio": t3.median_ratio,
                     "t1_max_abs_error": float(np.max(np.abs(y_meas - y_pred))),
                     "t1_scale": float(np.max(np.abs(y_meas))), "reached": float(np.mean(~np.isnan(reach))),
                     "aligned": ph.aligned, "t3_bound_max_median": float(np.nanmax(b3_med))}}


def render(out_dir, quick: bool = False, seed: int = 0, progress: bool = True) -> FigureResult:
    s = _hqt.sizes(quick)
    n_traj = 60 if quick else 300
    n_rec, n_rec2 = (30, 200) if quick else (80, 400)
    c = _stage.cached(NAME, {"sizes": s, "seed": seed, "n_traj": n_traj, "n_rec": n_rec, "n_rec2": n_rec2},
                      lambda: _compute(s, seed, n_traj, n_rec, n_rec2, progress))
    t, par_med, b3_med, tt, reach = c["t"], c["par_med"], c["b3_med"], c["tt"], c["reach"]
    fig, ax = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    ax[0, 0].plot(t, c["dist_med"], color=SAMPLES, label="measured distance (median)")
    ax[0, 0].plot(t, c["dist_tube_med"], ":", color=SAMPLES, label="measured, tube trajectories")
    ax[0, 0].plot(t, c["b2_med"], "--", color="k", label="T2 bound (median, tube)")
    ax[0, 0].set(xscale="log", yscale="log", xlabel="t (reverse time runs right to left)", ylabel="|x - pi(x)|",
                 title="(a) align: normal offset vs T2")
    ax[0, 1].plot(t, par_med, color=SAMPLES, label="|P_par (x_RF - x_exact)| (median)")
    ax[0, 1].plot(t, b3_med, "--", color="k", label="T3 bound (median)")
    ax[0, 1].set(xscale="log", yscale="log", xlabel="t", title="(b) slide: tangential deviation vs T3")
    # the Groenwall bound grows like exp(L T): over a long horizon it leaves any useful scale; keep the axis
    # where the measurement can be read and say from when the bound is off the top
    top = 1e3 * np.nanmax(par_med)
    if np.nanmax(b3_med) > top:
        ax[0, 1].set_ylim(top=top)
        off = t[np.argmax(b3_med > top)]
        ax[0, 1].text(0.03, 0.95, f"T3 bound above the axis from t = {off:.3g}\n(max {np.nanmax(b3_med):.1e})",
                      transform=ax[0, 1].transAxes, fontsize=7, va="top")
    for j in range(c["y_meas"].shape[1]):
        ax[1, 0].plot(tt, np.abs(c["y_meas"][:, j]), color=SAMPLES, lw=0.8, alpha=0.6)
        ax[1, 0].plot(tt, np.abs(c["y_pred"][:, j]), "--", color="k", lw=0.8, alpha=0.6)
    ax[1, 0].plot([], [], color=SAMPLES, label="RF samples |y|")
    ax[1, 0].plot([], [], "--", color="k", label="T1 (pathwise)")
    ax[1, 0].set(xscale="log", yscale="log", xlabel="t", title="(c) two modes: offset from the hull vs T1")
    ax[1, 1].hist(np.log10(reach[~np.isnan(reach)]), bins=20, color=SAMPLES, alpha=0.6, label="reach (sqrt h_t)")
    ax[1, 1].hist(np.log10(c["align_time"][~np.isnan(c["align_time"])]), bins=20, color=RIDGE, alpha=0.6,
                  label="align")
    ax[1, 1].set(xlabel="log10 t", title="(d) when samples reach and align")
    for a in ax.ravel():
        a.legend(fontsize=7)
    for a in (ax[0, 0], ax[0, 1], ax[1, 0]):
        a.invert_xaxis()
    fig.suptitle("Reach -> align -> slide with an RF score model: measurements and the T1/T2/T3 predictions",
                 fontsize=10)
    files = save(fig, out_dir, NAME)
    return FigureResult(NAME, files, c["data"])
