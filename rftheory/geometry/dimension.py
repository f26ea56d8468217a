"""The ridge dimension d, chosen from the Hessian's spectrum by a stated criterion.

For the smoothed empirical density the Hessian is H = -I/h + (a^2/h^2) Cov[x0 | x] (P1), so each eigenvalue
lambda_k of H gives the posterior variance along its direction in units of the noise variance h/a^2::

    r_k = 1 + h lambda_k = a^2 mu_k / h          (mu_k the k-th eigenvalue of Cov[x0 | x]).

A normal direction of the data has r ~ 0 (the posterior has collapsed across it: only the noise's curvature
-1/h is left); a direction along which the training set extends at the scale of the noise has r ~ 1 (exactly 1
for data spread uniformly along a flat direction) or more. The criterion counts the directions on the tangent
side of the midpoint::

    d(x) = #{k : r_k(x) > threshold},   threshold = 1/2 by default,

and the ridge dimension of a set of samples is the most frequent d(x) (ties go to the smaller d), capped at
D - 1 (a d-ridge needs at least one normal direction). The share of samples that see exactly d*, and the
median spectrum, are returned with the choice, so a user can see how clear-cut it was. d* = 0 means the
posterior has collapsed onto single training points (the ridge is the set of modes a_t x_i: memorization
scale); the criterion is scale-free (r is dimensionless) and needs no round-off floor, unlike a raw eigengap.

For a field that is not an :class:`~rftheory.density.empirical.EmpiricalDensity` the same r_k = 1 + h lambda_k
is read off its Hessian, with h from its schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_points
from ._ridge_frame import _dim, _require_field, _score_hessian

__all__ = ["DimensionChoice", "ridge_dimension", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.5


@dataclass
class DimensionChoice:
    """The chosen ridge dimension and the spectrum it came from (:func:`ridge_dimension`).

    Attributes
    ----------
    d : int
        Chosen ridge dimension d* (0 <= d* < D).
    share : float
        Fraction of samples whose own count d(x) equals d*.
    counts : numpy.ndarray of int, shape (m,)
        Per-sample ``d(x) = #{k : r_k > threshold}`` (may be D: no normal direction).
    spectrum : numpy.ndarray, shape (m, D)
        ``r_k = 1 + h lambda_k`` per sample, descending (dimensionless: posterior variance in units of the
        noise variance h/a^2).
    median_spectrum : numpy.ndarray, shape (D,)
        The median of ``spectrum`` over samples.
    histogram : numpy.ndarray of int, shape (D + 1,)
        Number of samples with d(x) = 0, 1, ..., D.
    threshold : float
        The cut on r_k.
    t : float
        The time.
    """

    d: int
    share: float
    counts: np.ndarray
    spectrum: np.ndarray
    median_spectrum: np.ndarray
    histogram: np.ndarray
    threshold: float
    t: float

    def __repr__(self) -> str:
        return (f"DimensionChoice(d={self.d}, share={self.share:.3f}, m={self.counts.size}, "
                f"D={self.spectrum.shape[1]}, threshold={self.threshold}, t={self.t:g})")

    def to_dict(self) -> dict:
        """JSON-ready summary: the choice, the criterion, the histogram and the median spectrum.

        Returns
        -------
        dict
        """
        return {"d": self.d, "share": self.share, "threshold": self.threshold, "t": self.t,
                "criterion": "d(x) = #{k : 1 + h_t lambda_k(x) > threshold}; d* = most frequent d(x), <= D-1",
                "histogram": self.histogram.tolist(), "median_spectrum": self.median_spectrum.tolist()}


def ridge_dimension(field, x, t: float, threshold: float = DEFAULT_THRESHOLD) -> DimensionChoice:
    """Choose the ridge dimension at time ``t`` from the Hessian spectrum at the samples ``x``.

    Parameters
    ----------
    field : score field with ``hessian`` and ``schedule`` (an EmpiricalDensity, a TruncatedDensity ...)
    x : (m, D) or (D,) array, the samples (data units)
    t : float, a scalar time in the schedule's domain
    threshold : float in (0, 1), the cut on r_k = 1 + h lambda_k (default 1/2, the midpoint between a normal
        direction, r = 0, and a flat tangent direction, r = 1)

    Returns
    -------
    DimensionChoice

    Raises
    ------
    TypeError if the field has no Hessian or no schedule; ValueError for bad x, t or threshold.
    """
    _require_field(field)
    if not hasattr(field, "schedule"):
        raise TypeError("field needs a `schedule` (for h_t) to choose the ridge dimension")
    thr = float(threshold)
    if not (0.0 < thr < 1.0):
        raise ValueError(f"threshold must lie in (0, 1); got {threshold!r}")
    tt = field.schedule.check_t(t, "t")
    if np.ndim(tt) != 0:
        raise ValueError("t must be a scalar time for ridge_dimension")
    tt = float(tt)
    D = _dim(field, x)
    x = as_points(x, D, "x")
    _, H = _score_hessian(field, x, tt)
    lam = np.linalg.eigvalsh(0.5 * (H + np.swapaxes(H, 1, 2)))[:, ::-1]
    r = 1.0 + float(field.schedule.h(tt)) * lam
    if not np.all(np.isfinite(r)):
        raise ValueError("the Hessian is not finite at some samples (t too small for the data's scale?)")
    counts, hist, capped = spectrum_counts(r, thr)
    d = int(np.argmax(capped))  # argmax takes the first maximum: ties go to the smaller d
    return DimensionChoice(d=d, share=float(capped[d] / counts.size), counts=counts, spectrum=r,
                           median_spectrum=np.median(r, axis=0), histogram=hist, threshold=thr, t=tt)


def spectrum_counts(r, threshold: float = DEFAULT_THRESHOLD):
    """Per sample, the count of ``r_k = 1 + h lambda_k`` above ``threshold``; its histogram over 0..D; and the
    histogram over the valid dimensions 0..D-1 (a count of D, no normal direction, goes to D - 1).

    Parameters
    ----------
    r : numpy.ndarray, shape (m, D)
        The spectra (finite).
    threshold : float, default 1/2

    Returns
    -------
    counts : numpy.ndarray of int, shape (m,)
    histogram : numpy.ndarray of int, shape (D + 1,)
    capped : numpy.ndarray of int, shape (D,)
    """
    r = np.asarray(r, dtype=np.float64)
    D = r.shape[1]
    counts = np.count_nonzero(r > threshold, axis=1)
    hist = np.bincount(counts, minlength=D + 1)
    capped = hist[:D].copy()
    capped[D - 1] += hist[D]  # d(x) = D has no normal direction: it counts towards the largest valid d
    return counts, hist, capped
