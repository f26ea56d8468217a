"""Measurements of the latent experiment: where do samples sit relative to the ridge of the training set's
smoothed density p_t (see :mod:`rftheory.apps.latent`)?

At one time t and ridge dimension d, for samples x (m, K):

* the residual ``r = |P_perp s*(x, t)|`` (1/length; s* the exact score of p_t, P_perp onto the Hessian's
  K - d most negative eigendirections), raw, max-normalised as [HQT] (``r / max r``) and in noise units
  ``sqrt(h_t) r``;
* the eigengap ``lambda_d - lambda_{d+1}`` and the mean normalised / raw residual over the samples whose
  eigengap exceeds 1e-4, 1e-3, 1e-2 (1/length^2, as [HQT]);
* the calibrated tube fraction (:func:`rftheory.geometry.tube.tube_fraction`): the distance ``|x - pi(x)|``
  to the ridge by subspace-constrained mean shift (SCMS; Newton needs the (m, K, K, K) third cumulant and is
  not used above K = 24), in units of sqrt(h_t), against the chi_{K-d} quantile; only converged projections
  are counted and the others reported;
* Sarle's bimodality coefficient of the max-normalised residual, ``(g^2 + 1) / (k + 3 (m-1)^2/((m-2)(m-3)))``
  with g, k the sample skewness and excess kurtosis: above 5/9 (its value for a uniform law) a histogram is
  read as bimodal, a stated, reproducible reading of "the histogram is bimodal".
"""
from __future__ import annotations

import numpy as np
from scipy.stats import kurtosis, skew

from ..dynamics.motion import nearest_rows
from ..geometry import ridge
from ..geometry.tube import tube_fraction

__all__ = ["GAP_THRESHOLDS", "ON_RIDGE_THRESHOLD", "BIMODAL_THRESHOLD", "bimodality", "residual_tail",
           "measure_d", "summary_d", "nearest"]

GAP_THRESHOLDS = (1e-4, 1e-3, 1e-2)
ON_RIDGE_THRESHOLD = 0.2   # [HQT]: "on ridge" when the max-normalised residual is below 0.2
BIMODAL_THRESHOLD = 5 / 9  # Sarle's coefficient of the uniform law


def bimodality(v) -> float:
    """Sarle's bimodality coefficient of the values v (needs at least 4 values and some spread)."""
    v = np.asarray(v, dtype=np.float64)
    m = v.size
    if m < 4 or not np.ptp(v) > 0:
        raise ValueError("bimodality needs at least 4 values that are not all equal")
    g = skew(v, bias=False)
    k = kurtosis(v, bias=False)
    return float((g * g + 1) / (k + 3 * (m - 1) ** 2 / ((m - 2) * (m - 3))))


def residual_tail(dens, x, t: float):
    """``(eigenvalues (m, K), tail (m, K + 1))`` at t: ``tail[:, d] = |P_perp s*|^2`` at ridge dimension d,
    from one eigendecomposition of the Hessian (the squared score coordinates summed from the d-th on)."""
    fr = ridge.frame(dens, x, t, 0)
    coord2 = np.einsum("mdk,md->mk", fr.vectors, fr.score) ** 2
    tail = np.zeros((coord2.shape[0], coord2.shape[1] + 1))
    tail[:, :-1] = np.cumsum(coord2[:, ::-1], axis=1)[:, ::-1]
    return fr.eigenvalues, tail


def _norm(r):
    return r / r.max() if r.max() > 0 else np.zeros_like(r)


def measure_d(dens, x, t: float, d: int, lam, tail, tube_idx, tube_level: float, proj_max_iter: int) -> dict:
    """Every measurement at ridge dimension d (see the module doc); ``lam``, ``tail`` from
    :func:`residual_tail`; ``tube_idx`` the samples whose distance to the ridge is computed."""
    K = lam.shape[1]
    h = float(dens.schedule.h(t))
    r = np.sqrt(tail[:, d])
    rn = _norm(r)
    gap = lam[:, d - 1] - lam[:, d] if d > 0 else np.full(r.shape, np.inf)
    gap_means = {}
    for thr in GAP_THRESHOLDS:
        sel = gap > thr
        gap_means[f"{thr:g}"] = {"count": int(sel.sum()),
                                 "residual_norm_mean": float(rn[sel].mean()) if sel.any() else None,
                                 "residual_mean": float(r[sel].mean()) if sel.any() else None}
    out = {"d": int(d), "t": float(t), "residual": r, "residual_norm": rn, "residual_scaled": np.sqrt(h) * r,
           "eigengap": gap, "gap_means": gap_means}
    dist, pr = ridge.distance(dens, x[tube_idx], t, d, newton=False, max_iter=int(proj_max_iter),
                              tol=1e-4 / np.sqrt(h))
    conv = pr.converged
    out["tube_z"] = np.where(conv, dist / np.sqrt(h), np.nan)
    out["tube_status"] = {ridge.STATUS[k]: int(np.sum(pr.status == k)) for k in ridge.STATUS}
    out["tube"] = tube_fraction(np.where(conv, dist, np.nan), h, K, d, tube_level, counted=conv) \
        if conv.any() else None
    return out


def summary_d(md: dict) -> dict:
    """JSON-ready numbers of one :func:`measure_d` result."""
    rn, r = md["residual_norm"], md["residual"]
    tube = md["tube"]
    return {"d": md["d"], "t": md["t"],
            "residual_norm_mean": float(rn.mean()), "residual_norm_median": float(np.median(rn)),
            "below_half": int(np.sum(rn < 0.5)), "n_samples": int(rn.size),
            "on_ridge_fraction": float(np.mean(rn < ON_RIDGE_THRESHOLD)),
            "bimodality": bimodality(rn) if np.ptp(rn) > 0 and rn.size >= 4 else None,
            "residual_median": float(np.median(r)), "residual_scaled_median": float(np.median(md["residual_scaled"])),
            "residual_norm_hist": np.histogram(rn, bins=20, range=(0, 1))[0].tolist(),
            "gap_means": md["gap_means"],
            "tube": None if tube is None else {"fraction": tube.fraction, "se": tube.se, "level": tube.level,
                                               "radius": tube.radius, "counted": tube.n_counted,
                                               "z_median": float(np.nanmedian(tube.z))},
            "tube_projection_status": md["tube_status"]}


def nearest(Y, X):
    """``(distance (m,), index (m,))`` of each row of Y to its nearest row of X, exact, in bounded memory
    (:func:`rftheory.dynamics.motion.nearest_rows`).

    Parameters
    ----------
    Y : numpy.ndarray, shape (m, D)
    X : numpy.ndarray, shape (n, D)

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Distances (m,) (length) and indices (m,) into X.
    """
    dist, idx = nearest_rows(Y, X, 1)
    return dist[:, 0], idx[:, 0]
