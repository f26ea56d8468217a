"""The result of :func:`rftheory.apps.analyze.analyze_samples` (:class:`Analysis`) and its JSON-ready summary:
counts, means and quantiles of every per-sample quantity, summed without overflow. :mod:`rftheory.apps.analyze`
re-exports every public name here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._results import short_repr
from ..data.realdata import PCALatent
from ..dynamics.motion import Memorization
from ..geometry import ridge
from ..geometry.dimension import DimensionChoice
from ..geometry.tube import TubeFraction

__all__ = ["Analysis", "STATUS", "ON_RIDGE_THRESHOLD"]

ON_RIDGE_THRESHOLD = 0.2  # [HQT]: "on ridge" when the max-normalised residual is below 0.2
_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
STATUS = {**ridge.STATUS, 4: "escaped"}


@dataclass
class Analysis:
    """Result of :func:`analyze_samples` (m samples, n training points, D dimensions after any PCA).

    Attributes
    ----------
    t, a, h : float
        Time t, a_t and h_t (h_t in length^2) of the schedule.
    d, D, n, m : int
        Ridge dimension, data dimension, number of training points, number of samples.
    tube : TubeFraction
        The headline tube fraction; the counted samples are those with status 0 (converged).
    status : numpy.ndarray of int, shape (m,)
        STATUS codes: 0 converged, 1 max_iter, 2 not_regular, 3 diverged, 4 escaped (not projected).
    proj_points : numpy.ndarray, shape (m, D)
        The ridge projections pi(x) (the sample itself where escaped).
    proj_distance : numpy.ndarray, shape (m,)
        ``|x - pi(x)|`` (length; NaN where escaped).
    normal_offset, tangent_offset : numpy.ndarray, shape (m,)
        Norms of the normal and tangential parts of ``x - pi(x)`` in the ridge frame at pi(x) (length; NaN
        where escaped or the projection is not finite).
    residual : numpy.ndarray, shape (m,)
        ``|P_perp s*(x, t)|`` at the samples (1/length).
    residual_scaled : numpy.ndarray, shape (m,)
        ``sqrt(h_t) residual`` (dimensionless).
    residual_normalized : numpy.ndarray, shape (m,)
        ``residual / max(residual)`` ([HQT], secondary).
    on_ridge : numpy.ndarray of bool, shape (m,)
        ``residual_normalized < ON_RIDGE_THRESHOLD``.
    eigenvalues : numpy.ndarray, shape (m, D)
        Hessian eigenvalues of log p_t at each sample, descending (1/length^2).
    eigengap : numpy.ndarray, shape (m,)
        ``lambda_d - lambda_{d+1}`` at each sample (inf for d = 0).
    gap_spectrum : numpy.ndarray, shape (D - 1,)
        Median over the samples of each consecutive eigenvalue gap (empty for D = 1).
    memo : Memorization
        Memorization (``d_1/d_2 < 1/3``, nearest two distinct a_t x_i) with its bootstrap interval.
    nn_distance : numpy.ndarray, shape (m,)
        Distance from each sample to its nearest scaled training point a_t x_i (length).
    nn_index : numpy.ndarray of int, shape (m,)
        Row of the training set of that point.
    train_nn_distance : numpy.ndarray, shape (k,)
        Leave-one-out nearest-distinct-neighbour distances of a_t x_i on k <= ``n_train_nn`` distinct
        training points (length).
    samples : numpy.ndarray, shape (m, D)
        The samples as measured (PCA coordinates when ``pca`` was given).
    pca : PCALatent or None
        The fitted PCA map, or None.
    schedule : str
        Name of the noise schedule.
    dimension : DimensionChoice or None
        How d was chosen when ``d="auto"``, else None.
    density : dict
        Description of the density evaluation (pooled or dense, rtol, samples by pool size).
    warnings : list of str
    escape_radius : float
        ``sqrt(h_t) chi_D^{-1}(1 - ESCAPE_PROB)`` (length).
    trajectories : dict or None
        :func:`trajectory_phases`' summary when trajectories were given, else None.
    model_error : numpy.ndarray or None, shape (m, 3)
        With a model: ``|P_perp e|``, ``|P_par e|`` and ``|s*|`` at each sample (1/length), e = model score -
        exact score, split in the ridge frame at the sample; else None.
    """

    t: float
    a: float
    h: float
    d: int
    D: int
    n: int
    m: int
    tube: TubeFraction
    status: np.ndarray
    proj_points: np.ndarray
    proj_distance: np.ndarray
    normal_offset: np.ndarray
    tangent_offset: np.ndarray
    residual: np.ndarray
    residual_scaled: np.ndarray
    residual_normalized: np.ndarray
    on_ridge: np.ndarray
    eigenvalues: np.ndarray
    eigengap: np.ndarray
    gap_spectrum: np.ndarray
    memo: Memorization
    nn_distance: np.ndarray
    nn_index: np.ndarray
    train_nn_distance: np.ndarray
    samples: np.ndarray
    pca: PCALatent | None = None
    schedule: str = "ou"
    dimension: DimensionChoice | None = None
    density: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    escape_radius: float = float("nan")
    trajectories: dict | None = None  # trajectory_phases' summary when trajectories were given
    model_error: np.ndarray | None = None  # (m, 3): |P_perp e|, |P_par e|, |s*| at the samples (e = model - s*)

    __repr__ = short_repr

    @property
    def on_ridge_fraction(self) -> float:
        return float(np.mean(self.on_ridge))

    @property
    def status_names(self) -> np.ndarray:
        return np.array([STATUS[int(c)] for c in self.status])

    def summary(self) -> dict:
        """JSON-ready summary: the headline, the status counts, quantiles of every per-sample quantity.

        Returns
        -------
        dict
            Keys ``t, a_t, h_t, d, D, n_train, n_samples, schedule``, ``tube`` (fraction, se, level, radius
            in noise units and in length, counts), ``status_counts``, ``escape_radius``, count / mean / std /
            quantiles of the converged samples' ``z``, ``proj_distance``, ``normal_offset``,
            ``tangent_offset``, ``tangent_share``, the secondary [HQT] residuals, ``eigengap`` (None for
            d = 0), ``gap_spectrum_median``, ``memorization``, ``nn_distance``, ``train_nn_distance``,
            ``density`` and ``warnings``; with ``model_error``, ``dimension`` or ``pca`` set, also those.
        """
        conv = self.status == 0
        tb = self.tube
        out = {
            "t": self.t, "a_t": self.a, "h_t": self.h, "d": self.d, "D": self.D, "n_train": self.n,
            "n_samples": self.m, "schedule": self.schedule,
            "tube": {"fraction": tb.fraction, "se": tb.se, "level": tb.level, "radius_noise_units": tb.radius,
                     "radius": tb.radius * np.sqrt(self.h), "n_counted": tb.n_counted,
                     "n_inside": int(tb.inside.sum()),
                     "definition": "share of counted samples with |x - pi(x)| <= sqrt(h_t) chi_{D-d}^-1(level); "
                                   "exact draws of p_t near a regular ridge score `level`"},
            "status_counts": {STATUS[k]: int(np.sum(self.status == k)) for k in STATUS},
            "escape_radius": self.escape_radius,
            "z": _stats(tb.z[conv]),
            "proj_distance": _stats(self.proj_distance[conv]),
            "normal_offset": _stats(self.normal_offset[conv]),
            "tangent_offset": _stats(self.tangent_offset[conv]),
            "tangent_share": _stats(_share(self.tangent_offset[conv], self.proj_distance[conv])),
            "secondary_hqt": {
                "note": "the paper's max-normalised residual r / max r ([HQT] §6): one far sample moves it; "
                        "for comparison only",
                "on_ridge_threshold": ON_RIDGE_THRESHOLD, "on_ridge_fraction": self.on_ridge_fraction,
                "residual": _stats(self.residual), "residual_scaled": _stats(self.residual_scaled),
                "residual_normalized": _stats(self.residual_normalized)},
            "eigengap": _stats(self.eigengap) if self.d > 0 else None,
            "gap_spectrum_median": self.gap_spectrum.tolist(),
            "memorization": {"fraction": self.memo.fraction, "ci_low": self.memo.ci_low,
                             "ci_high": self.memo.ci_high, "level": self.memo.level, "ratio_threshold": 1 / 3,
                             "neighbours": "nearest two distinct training points",
                             "d1_over_d2": _stats(self.memo.ratios)},
            "nn_distance": _stats(self.nn_distance), "train_nn_distance": _stats(self.train_nn_distance),
            "density": self.density, "warnings": list(self.warnings),
        }
        if self.model_error is not None:
            en, ep, s0 = self.model_error.T
            # squared sums of e / sc and s* / sc (sc a power of two: exact) so that |e| ~ 1/h_t does not
            # overflow at tiny t; the ratios below do not depend on sc
            sc = _pow2_scale(self.model_error)
            un, up, u0 = en / sc, ep / sc, s0 / sc
            tot = float(np.sum(un ** 2) + np.sum(up ** 2))
            out["model_error"] = {
                "definition": "e = model score - exact score of p_t at each sample, split in the ridge frame "
                              "at the sample (P_perp e, P_par e); 1/length",
                "normal": _stats(en), "tangent": _stats(ep), "exact_score_norm": _stats(s0),
                "relative_rms": float(np.sqrt(tot / max(float(np.sum(u0 ** 2)), 1e-300))),
                "normal_share_of_squared_error": float(np.sum(un ** 2) / tot) if tot > 0 else 0.0}
        if self.dimension is not None:
            out["dimension"] = self.dimension.to_dict()
        if self.pca is not None:
            out["pca"] = self.pca.summary()
        return out


def _pow2_scale(values) -> float:
    """A power of two at or above the largest finite |value| (1.0 if there is none): dividing by it is exact
    and keeps sums of squares of the scaled values finite."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    top = float(np.max(v, where=np.isfinite(v), initial=0.0))
    return 2.0 ** np.frexp(top)[1] if top > 0 else 1.0


def _share(part, total):
    return np.where(total > 0, part / np.where(total > 0, total, 1.0), 0.0)


def _stats(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return {"count": 0, "nonfinite": int(v.size)}
    q = np.quantile(fin, _QUANTILES)
    # mean and std of fin / s, times s: no overflow in the sum or the squares when the values are huge
    # (residuals ~ 1/h_t reach 1e299 at t = 1e-300)
    s = _pow2_scale(fin)
    y = fin / s
    return {"count": int(fin.size), "nonfinite": int(v.size - fin.size), "mean": float(y.mean()) * s,
            "std": float(y.std()) * s, **{f"q{int(round(100 * p)):02d}": float(x) for p, x in zip(_QUANTILES, q)}}
