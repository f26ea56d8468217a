"""The Fourier time embedding of the random-feature model (``phi(t)``, docs/theory.md §4), split out of
:mod:`rftheory.rf.features` (which re-exports it): ``(1, sin ang_k, cos ang_k)``, ``ang_k = 2 pi k t / T``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["EMBEDDING_ORDERS", "fourier_embedding"]

EMBEDDING_ORDERS = ("concat", "interleaved")


def fourier_embedding(t, K: int, T: float, order: str = "concat") -> np.ndarray:
    """The Fourier time embedding, with ``ang_k = 2 pi k t / T``.

    Parameters
    ----------
    t : float or array_like, shape (m,)
        Times.
    K : int
        Frequencies (>= 0).
    T : float
        Period (> 0).
    order : {"concat", "interleaved"}, default "concat"
        ``"concat"`` (this project's default): ``(1, sin ang_1..sin ang_K, cos ang_1..cos ang_K)``;
        ``"interleaved"`` ([HQT]'s code): ``(1, sin ang_1, cos ang_1, sin ang_2, cos ang_2, ...)``. The two are a
        column permutation of each other, so a model is the same function under either order only if its W_t
        columns are permuted to match (docs/conventions.md).

    Returns
    -------
    numpy.ndarray, shape (m, 2K + 1)
    """
    if isinstance(K, bool) or int(K) != K or K < 0:
        raise ValueError(f"K (number of Fourier frequencies) must be an integer >= 0; got {K!r}")
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T (embedding period) must be finite and > 0; got {T!r}")
    if order not in EMBEDDING_ORDERS:
        raise ValueError(f"order must be one of {EMBEDDING_ORDERS}; got {order!r}")
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError("t must be a finite scalar or 1-D array")
    ang = 2 * np.pi * np.outer(t, np.arange(1, int(K) + 1)) / T
    if order == "interleaved":
        return np.concatenate([np.ones((t.size, 1)), np.stack([np.sin(ang), np.cos(ang)], axis=2).reshape(t.size, -1)],
                              axis=1)
    return np.concatenate([np.ones((t.size, 1)), np.sin(ang), np.cos(ang)], axis=1)
