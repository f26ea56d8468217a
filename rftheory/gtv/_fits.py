"""Fitting the linear-feature denoiser ensembles of [GTV] (V3): the training triples, the ensemble of weighted
ridge fits solved as a batch, and their container (split out of :mod:`rftheory.gtv.ensembles`, whose module
docstring states the model and the fit; every name here is re-exported there).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .._blas import blas_single, run_blocks
from .._checks import RngLike, as_data, as_generator, check_positive_int
from .._results import short_repr
from .bases import TensorFeatures
from ..density.schedules import Schedule, get_schedule

__all__ = ["sample_triples", "FeatureEnsemble", "fit_ensemble"]

_BLOCK_BYTES = 96 * 2**20  # largest temporary (per chunk of fits)

# ----------------------------------------------------------------------------- fitting
def _check_trange(schedule, t_min, t_max):
    if not (np.isfinite(t_min) and np.isfinite(t_max) and 0 < t_min < t_max):
        raise ValueError(f"need 0 < t_min < t_max (finite); got t_min={t_min!r}, t_max={t_max!r}")
    schedule.check_t(np.array([t_min, t_max]), "t_min/t_max")


def sample_triples(data: ArrayLike, schedule, size: int, t_min: float, t_max: float, rng: RngLike):
    """Training triples: ``x_0`` uniform over ``data``, ``t ~ U[t_min, t_max]``, ``x_t = a x_0 + sqrt(h) z``.

    Parameters
    ----------
    data : array_like, shape (n, D)
        Training set.
    schedule : Schedule or str
    t_min, t_max : float
        Time interval inside the schedule's domain.
    size : int or tuple of int
        Batch shape, e.g. ``(N, P)``.
    rng : None, int, SeedSequence or numpy.random.Generator
        None draws from a fresh generator.

    Returns
    -------
    x0 : numpy.ndarray, shape size + (D,)
    t : numpy.ndarray, shape size
    xt : numpy.ndarray, shape size + (D,)

    Raises
    ------
    ValueError
        If the data or the time interval are invalid.
    """
    data = as_data(data, "data")
    schedule = get_schedule(schedule)
    _check_trange(schedule, t_min, t_max)
    rng = as_generator(rng)
    size = (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)
    i = rng.integers(0, data.shape[0], size=size)
    t = rng.uniform(t_min, t_max, size=size)
    a, h = schedule.a(t), schedule.h(t)
    x0 = data[i]
    xt = a[..., None] * x0 + np.sqrt(h)[..., None] * rng.standard_normal(size + (data.shape[1],))
    return x0, t, xt


@dataclass
class FeatureEnsemble:
    """N fitted linear-feature denoisers (V3, :func:`fit_ensemble`); a score field per fit.

    Attributes
    ----------
    features : TensorFeatures
        The feature map psi(x, t) (F features).
    schedule : Schedule
        The forward process.
    W : numpy.ndarray, shape (N, D, F)
        Weights (data units per feature unit).
    P : int
        Training triples per fit.
    ridge, t_min, t_max : float
        As fitted.
    data : numpy.ndarray, shape (n, D)
        The training set.
    info : dict
        Fitting details.
    """

    features: TensorFeatures
    schedule: Schedule
    W: np.ndarray
    P: int
    ridge: float
    t_min: float
    t_max: float
    data: np.ndarray
    info: dict = field(default_factory=dict)

    __repr__ = short_repr

    @property
    def N(self) -> int:
        return self.W.shape[0]

    @property
    def D(self) -> int:
        return self.W.shape[1]

    def denoise(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Every fit's denoiser ``m_hat_n(x, t) = W_n psi(x, t)``.

        Parameters
        ----------
        x : array_like, shape (m, D)
            Points shared by all fits.
        t : float or array_like, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (N, m, D)
            Posterior-mean estimates (length).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (m, {self.D}); got {x.shape}")
        phi = self.features(x, t)
        return np.einsum("mf,ndf->nmd", phi, self.W, optimize=True)

    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Every fit's score ``s_hat_n(x, t) = (a m_hat_n - x)/h``.

        Parameters
        ----------
        x : array_like, shape (m, D)
            Points shared by all fits.
        t : float or array_like, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (N, m, D)
            Scores (1/length).
        """
        x = np.asarray(x, dtype=np.float64)
        tt = np.broadcast_to(self.schedule.check_t(t, "t"), x.shape[:1])
        a, h = self.schedule.a(tt), self.schedule.h(tt)
        return (a[None, :, None] * self.denoise(x, tt) - x[None]) / h[None, :, None]

    def denoise_particles(self, x, t: float) -> np.ndarray:
        """Per-fit particles at one time: contracts the weight tensor with the 1-D factors (exact).

        Parameters
        ----------
        x : array_like, shape (N, M, D)
            M particles per fit.
        t : float
            Time.

        Returns
        -------
        numpy.ndarray, shape (N, M, D)
            ``m_hat_n`` at each fit's own particles (cost N M F_1...F_D).
        """
        fs = self.features.factors(x, np.float64(t))
        bt = fs[-1]
        Wt = (self.W.reshape(self.N, self.D, -1, bt.shape[-1]) @ bt).reshape(
            (self.N, self.D) + self.features.shape[:-1])
        letters = "ijklpqrsuv"[:self.D]
        spec = ",".join(f"nm{c}" for c in letters) + f",nd{letters}->nmd"
        return np.einsum(spec, *fs[:-1], Wt, optimize=True)


def _solve_chunk(phi, lam, y, ridge):
    """Batched weighted ridge: phi (b, P, F), lam (b, P), y (b, P, D) -> W (b, D, F)."""
    b, P, F = phi.shape
    sl = np.sqrt(lam)
    As = phi * sl[..., None]
    if F <= P:  # one GEMM per fit for the weighted Gram (As^T As, As = sqrt(lam) phi)
        AsT = np.swapaxes(As, 1, 2)
        A = AsT @ As
        A /= P
        A[:, np.arange(F), np.arange(F)] += ridge
        B = AsT @ (y * sl[..., None])
        B /= P
        return np.swapaxes(np.linalg.solve(A, B), 1, 2)
    K = As @ np.swapaxes(As, 1, 2) / P
    K[:, np.arange(P), np.arange(P)] += ridge
    c = np.linalg.solve(K, y * sl[..., None]) / P  # (b, P, D)
    return np.einsum("bpf,bpd->bdf", As, c, optimize=True)


_FITS_PER_TASK = 4  # fits per thread task: fixed, so results do not depend on the thread count


def _solve_fits(features, schedule, x0, t, xt, ridge, out):
    """Features and weighted ridge solves of a chunk of fits, in fixed blocks of ``_FITS_PER_TASK`` fits run on
    the query-thread pool (``rftheory._blas.run_blocks``) with BLAS on one thread. Each fit's Gram is one
    small product (P x F by F x P), where OpenBLAS's threads only add synchronisation: on the shared 2-core
    machine two BLAS threads ran the 2048 x 128 Gram at 0.35 GFLOP/s against 18 GFLOP/s on one (issue 19).
    Every fit's arithmetic is the same whichever thread runs it: bit-identical for any thread count."""
    a, h = schedule.a(t), schedule.h(t)
    lam = a * a / h

    def task(k0):
        k1 = min(k0 + _FITS_PER_TASK, out.shape[0])
        out[k0:k1] = _solve_chunk(features(xt[k0:k1], t[k0:k1]), lam[k0:k1], x0[k0:k1], ridge)

    with blas_single():
        run_blocks(task, range(0, out.shape[0], _FITS_PER_TASK))


def fit_ensemble(features: TensorFeatures, data: ArrayLike, schedule, P: int, N: int, t_min: float, t_max: float = 1.0,
                 ridge: float = 0.1, rng: RngLike = None, progress: bool = False) -> FeatureEnsemble:
    """V3: N independent weighted-ridge fits of a linear-feature denoiser, each on its own P triples.

    Weight ``lam = a_t^2/h_t``; the ridge is added to the P-normalised Gram matrix (so its strength does not
    change with P). Vectorised over the ensemble: fits are solved in chunks as batches of linear systems
    (docs/theory.md §5).

    Parameters
    ----------
    features : TensorFeatures
        psi(x, t), F features.
    data : array_like, shape (n, D)
        Training set (D must match the features).
    schedule : Schedule or str
    P : int
        Triples per fit.
    N : int
        Number of fits.
    t_min : float
        Smallest training time.
    t_max : float, default 1.0
        Largest training time.
    ridge : float, default 0.1
        Ridge strength (> 0).
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Draws the triples; None draws from a fresh generator.
    progress : bool, default False

    Returns
    -------
    FeatureEnsemble
        ``W`` (N, D, F) and the settings; a score field per fit.

    Raises
    ------
    TypeError
        If features is not a TensorFeatures, or P, N are not integers.
    ValueError
        If D disagrees, ridge is not positive, or the time interval is invalid.
    """
    if not isinstance(features, TensorFeatures):
        raise TypeError(f"features must be a TensorFeatures; got {type(features).__name__}")
    data = as_data(data, "data")
    if data.shape[1] != features.D:
        raise ValueError(f"data has D = {data.shape[1]} but features expect D = {features.D}")
    schedule = get_schedule(schedule)
    P, N = check_positive_int(P, "P"), check_positive_int(N, "N")
    if not (np.isfinite(ridge) and ridge > 0):
        raise ValueError(f"ridge must be a positive finite number; got {ridge!r}")
    rng = as_generator(rng)
    _check_trange(schedule, t_min, t_max)
    F, D = features.F, features.D
    per_fit = 8 * (P * F + min(F, P) ** 2 + P * D) * 2
    chunk = int(max(1, min(N, _BLOCK_BYTES // per_fit)))
    W = np.empty((N, D, F))
    from tqdm.auto import tqdm

    for n0 in tqdm(range(0, N, chunk), disable=not progress, desc=f"fit P={P}", leave=False):
        b = min(chunk, N - n0)
        x0, t, xt = sample_triples(data, schedule, (b, P), t_min, t_max, rng)
        _solve_fits(features, schedule, x0, t, xt, float(ridge), W[n0:n0 + b])
    return FeatureEnsemble(features=features, schedule=schedule, W=W, P=P, ridge=float(ridge),
                           t_min=float(t_min), t_max=float(t_max), data=data)


# ----------------------------------------------------------------------------- sampling
