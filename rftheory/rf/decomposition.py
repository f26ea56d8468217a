"""R3: the error split of a random-feature score model (docs/theory.md §4).

At any (x, t), ``s_tau - s* = (s_tau - s_inf) + (s_inf - s*)`` = optimization error + architectural bias;
a third, separate term is the finite-sample error of an SGD (Monte Carlo) run, ``s_sgd - s_E`` with s_E the
score of the run's expectation (the GD iterate). Each is split into its normal and tangent parts in the ridge
frame of p_t (``rftheory.geometry.ridge.decompose``, dimension d), pointwise and as averages over p_t.

Loss-level Pythagoras (derivations/r3_pythagoras.py): since ``V = W_inf U`` on the range of U,
``L(W) - L(W_inf) = (1/D) tr((W - W_inf) U (W - W_inf)^T)``, so ``L(W(tau)) - L* = that + (L(W_inf) - L*)``.

Loss-level split ([HQT]'s measure, :func:`loss_split`, the irreducible loss :func:`irreducible_loss`):
in :mod:`rftheory.rf._loss_split`, re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator, as_points, per_point_times
from .._results import frame as _table, short_repr
from .model import loss
from ._loss_split import IrreducibleLoss, LossSplit, irreducible_loss, loss_split, ridge_normal  # re-exported

__all__ = ["ErrorSplit", "split_error", "optimization_error", "architectural_bias", "finite_sample_error",
           "average_split", "pythagoras", "IrreducibleLoss", "LossSplit", "irreducible_loss", "loss_split",
           "ridge_normal"]


@dataclass
class ErrorSplit:
    """An error field at m points split in the ridge frame (:func:`split_error`).

    Where the eigengap is at its round-off floor -- e.g. at small t next to a mode, where H ~ -I/h_t -- the
    split is arbitrary and averages leave such points out.

    Attributes
    ----------
    x : numpy.ndarray, shape (m, D)
    t : numpy.ndarray, shape (m,)
    error : numpy.ndarray, shape (m, D)
        The error (score units, 1/length).
    normal, tangent : numpy.ndarray, shape (m, D)
        ``P_perp error`` and the rest.
    eigengap : numpy.ndarray, shape (m,)
        Hessian eigengap at d (1/length^2).
    determined : numpy.ndarray of bool, shape (m,)
        The gap is above its round-off floor, so the frame (hence the split) is defined.
    normal_norm, tangent_norm : numpy.ndarray, shape (m,)
        Their norms (properties).
    """

    x: np.ndarray
    t: np.ndarray
    error: np.ndarray
    normal: np.ndarray
    tangent: np.ndarray
    eigengap: np.ndarray
    determined: np.ndarray

    __repr__ = short_repr

    @property
    def normal_norm(self):
        return np.linalg.norm(self.normal, axis=1)

    @property
    def tangent_norm(self):
        return np.linalg.norm(self.tangent, axis=1)

    def to_frame(self):
        """One row per point: x_k, t, error_k, normal_k, tangent_k, normal_norm, tangent_norm, eigengap,
        determined.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"x": self.x, "t": self.t, "error": self.error, "normal": self.normal,
                       "tangent": self.tangent, "normal_norm": self.normal_norm, "tangent_norm": self.tangent_norm,
                       "eigengap": self.eigengap, "determined": self.determined}, "point")


def split_error(error: ArrayLike, density, x: ArrayLike, t: ArrayLike, d: int) -> ErrorSplit:
    """Split an error field at x into its ridge-normal and tangent parts (R3, docs/theory.md §4).

    Parameters
    ----------
    error : array_like, shape (m, D) or (D,)
        The error at x (score units, 1/length).
    density : EmpiricalDensity
        The density whose ridge frame is the reference (any score field with a Hessian and a schedule).
    x : array_like, shape (m, D) or (D,)
        Points.
    t : float or array_like, shape (m,)
        Time(s).
    d : int
        Ridge dimension, 0 <= d < D.

    Returns
    -------
    ErrorSplit
        ``error``, ``normal`` = P_perp error, ``tangent`` (m, D) in score units (1/length), ``eigengap`` (m,)
        and ``determined`` (m,): where the eigengap is at its round-off floor the frame, hence the split, is
        undefined (e.g. next to a mode at small t).

    Raises
    ------
    ValueError
        If shapes disagree, x is not finite, d is outside [0, D) or t outside the schedule's domain.
    """
    from ..geometry.ridge import frame

    x = as_points(x, density.D, "x")
    error = np.asarray(error, dtype=np.float64)
    if error.ndim == 1:  # one point's error, as a score field returns it for a single (D,) query
        error = error[None, :]
    if error.shape != x.shape:
        raise ValueError(f"error must have shape {x.shape}; got {error.shape}")
    tt = per_point_times(t, x.shape[0], density.schedule, "t")
    fr = frame(density, x, tt, d)
    nrm = fr.project_normal(error)
    return ErrorSplit(x=x, t=tt, error=error, normal=nrm, tangent=error - nrm, eigengap=fr.eigengap,
                      determined=fr.eigengap > fr.gap_floor)


def optimization_error(field_tau, field_inf, density, x: ArrayLike, t: ArrayLike, d: int) -> ErrorSplit:
    """The optimization error ``s_tau - s_inf``, split at x (R3).

    Parameters
    ----------
    field_tau, field_inf : score field
        Score fields of W(tau) and of W_inf (e.g. ``model.score_field(flow.predict(tau))``).
    density : EmpiricalDensity
        The density whose ridge frame is the reference (any score field with a Hessian and a schedule).
    x : array_like, shape (m, D) or (D,)
        Points.
    t : float or array_like, shape (m,)
        Time(s).
    d : int
        Ridge dimension, 0 <= d < D.

    Returns
    -------
    ErrorSplit
        ``error``, ``normal`` = P_perp error, ``tangent`` (m, D) in score units (1/length), ``eigengap`` (m,)
        and ``determined`` (m,): where the eigengap is at its round-off floor the frame, hence the split, is
        undefined (e.g. next to a mode at small t).

    Raises
    ------
    ValueError
        If shapes disagree, x is not finite, d is outside [0, D) or t outside the schedule's domain.
    """
    x = as_points(x, density.D, "x")
    return split_error(field_tau.score(x, t) - field_inf.score(x, t), density, x, t, d)


def architectural_bias(field_inf, density, x: ArrayLike, t: ArrayLike, d: int) -> ErrorSplit:
    """The architectural bias ``s_inf - s*``, split at x (s* the exact score of ``density``; R3).

    Parameters
    ----------
    field_inf : score field
        Score field of the trained limit W_inf.
    density : EmpiricalDensity
        The density whose ridge frame is the reference (any score field with a Hessian and a schedule).
    x : array_like, shape (m, D) or (D,)
        Points.
    t : float or array_like, shape (m,)
        Time(s).
    d : int
        Ridge dimension, 0 <= d < D.

    Returns
    -------
    ErrorSplit
        ``error``, ``normal`` = P_perp error, ``tangent`` (m, D) in score units (1/length), ``eigengap`` (m,)
        and ``determined`` (m,): where the eigengap is at its round-off floor the frame, hence the split, is
        undefined (e.g. next to a mode at small t).

    Raises
    ------
    ValueError
        If shapes disagree, x is not finite, d is outside [0, D) or t outside the schedule's domain.
    """
    x = as_points(x, density.D, "x")
    return split_error(field_inf.score(x, t) - density.score(x, t), density, x, t, d)


def finite_sample_error(fields_runs, field_expected, density, x: ArrayLike, t: ArrayLike, d: int):
    """The finite-sample error of SGD (Monte Carlo) runs: ``s_run - s_E`` for each run, split at x.

    Parameters
    ----------
    fields_runs : sequence of score fields
        One per SGD run (non-empty).
    field_expected : score field
        The field of the runs' expectation (the GD iterate).
    density : EmpiricalDensity
        The density whose ridge frame is the reference (any score field with a Hessian and a schedule).
    x : array_like, shape (m, D) or (D,)
        Points.
    t : float or array_like, shape (m,)
        Time(s).
    d : int
        Ridge dimension, 0 <= d < D.

    Returns
    -------
    mean_split : ErrorSplit
        The split of the runs' mean error (its bias, which vanishes in expectation).
    mean_sq_normal, mean_sq_tangent : numpy.ndarray, shape (m,)
        Per-point means over runs of ``|P_perp e|^2`` and ``|P_par e|^2`` (its variance part, 1/length^2).

    Raises
    ------
    ValueError
        If ``fields_runs`` is empty, or as :func:`split_error`.
    """
    x = as_points(x, density.D, "x")
    base = field_expected.score(x, t)
    errs = np.array([f.score(x, t) - base for f in fields_runs])
    if errs.size == 0:
        raise ValueError("fields_runs is empty")
    mean = split_error(errs.mean(0), density, x, t, d)
    sq_n = np.zeros(x.shape[0])
    sq_t = np.zeros(x.shape[0])
    for e in errs:
        s = split_error(e, density, x, t, d)
        sq_n += s.normal_norm**2
        sq_t += s.tangent_norm**2
    return mean, sq_n / len(errs), sq_t / len(errs)


@dataclass
class AverageSplit:
    """Root-mean-square normal and tangent parts of an error over p_t (:func:`average_split`).

    Attributes
    ----------
    t : float
        The time.
    rms_normal, rms_tangent : float
        ``sqrt(E|P_perp e|^2)`` and ``sqrt(E|P_par e|^2)`` (1/length).
    se_sq_normal, se_sq_tangent : float
        Standard errors of the mean squares (Monte Carlo; 0 for given points).
    n_points : int
        Points averaged (those with a determined frame).
    determined_fraction : float
        Fraction of the points whose frame is determined.
    """

    t: float
    rms_normal: float
    rms_tangent: float
    se_sq_normal: float
    se_sq_tangent: float
    n_points: int
    determined_fraction: float

    __repr__ = short_repr


def average_split(error_fn, density, t: float, d: int, n_samples: int | None = None, rng: RngLike = None,
                  x: ArrayLike | None = None, weights: ArrayLike | None = None) -> AverageSplit:
    """Weighted average over p_t of the normal/tangent split of ``error_fn(x, t) -> (m, D)``.

    Either ``n_samples`` draws from p_t with ``rng`` (Monte Carlo; standard errors reported), or given points
    ``x`` with optional ``weights`` (normalised to sum 1). Points without a determined frame are left out.

    Parameters
    ----------
    error_fn : callable
        ``error_fn(x, t)`` returning the error (m, D) at points x (score units).
    density : EmpiricalDensity
        Reference density (draws and ridge frame).
    t : float
        Time.
    d : int
        Ridge dimension.
    n_samples : int, optional
        Number of draws from p_t.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Source of the draws; None draws from a fresh generator.
    x : array_like, shape (m, D), optional
        Given points instead of draws.
    weights : array_like, shape (m,), optional
        Non-negative weights of the given points.

    Returns
    -------
    AverageSplit
        ``rms_normal``, ``rms_tangent`` (1/length), their squared standard errors, ``n_points``,
        ``determined_fraction``.

    Raises
    ------
    ValueError
        If neither x nor n_samples is given (x wins when both are), the weights are malformed, or no point has a
        determined frame.
    """
    if x is None:
        if n_samples is None:
            raise ValueError("give either x (points) or n_samples with rng")
        x = density.sample(t, int(n_samples), as_generator(rng))
    x = as_points(x, density.D, "x")
    s = split_error(error_fn(x, t), density, x, t, d)
    w = np.full(x.shape[0], 1.0 / x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (x.shape[0],) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be non-negative with shape (m,) and a positive sum")
    frac = float(np.mean(s.determined))
    w = np.where(s.determined, w, 0.0)
    if not w.sum() > 0:
        raise ValueError("no point has a determined ridge frame (eigengap at round-off everywhere)")
    w = w / w.sum()
    qn, qt = s.normal_norm**2, s.tangent_norm**2
    mn, mt = float(w @ qn), float(w @ qt)
    m = int(np.sum(s.determined))
    se_n = float(np.sqrt(w @ (qn - mn) ** 2 / max(m - 1, 1)))
    se_t = float(np.sqrt(w @ (qt - mt) ** 2 / max(m - 1, 1)))
    return AverageSplit(t=float(t), rms_normal=np.sqrt(mn), rms_tangent=np.sqrt(mt), se_sq_normal=se_n,
                        se_sq_tangent=se_t, n_points=m, determined_fraction=frac)


def pythagoras(mom, W_tau, W_inf) -> dict:
    """Both sides of the loss-level Pythagoras ``L(W_tau) - L(W_inf) = (1/D) tr((W_tau - W_inf) U (W_tau - W_inf)^T)``.

    Parameters
    ----------
    mom : Moments
        U, V, c0 of the model.
    W_tau, W_inf : array_like, shape (D, p)
        Weights at training time tau and the limit.

    Returns
    -------
    dict
        ``lhs``, ``rhs`` (loss units) and their relative difference ``rel_diff`` (``L*`` cancels from the
        identity as stated in R3, docs/theory.md §4).
    """
    W_tau = np.asarray(W_tau, dtype=np.float64)
    W_inf = np.asarray(W_inf, dtype=np.float64)
    D = W_tau.shape[0]
    dW = W_tau - W_inf
    lhs = loss(W_tau, mom) - loss(W_inf, mom)
    rhs = float(np.einsum("dj,jk,dk->", dW, mom.U, dW) / D)
    return {"lhs": lhs, "rhs": rhs, "rel_diff": abs(lhs - rhs) / max(abs(rhs), 1e-300)}
