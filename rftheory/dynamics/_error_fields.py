"""Error injection (docs/theory.md §3): :class:`PerturbedField` adds an error field to a base field
(``s_hat = s* + e``) while keeping the base field's Hessian and geometry, so the ridge of p_t stays the
reference; constant, normal, tangent and random smooth error fields. :mod:`rftheory.dynamics.sampling` re-exports
every public name here.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_generator

__all__ = ["PerturbedField", "constant_error", "normal_error", "tangent_error", "random_smooth_error"]


class PerturbedField:
    """A score field ``s_hat = base.score + scale * error(x, t)`` with the base field's geometry.

    Hessian, log-density, moments and every other attribute are the base field's, so the ridge of p_t stays
    the reference while the samplers see the perturbed score (docs/theory.md §3).

    Parameters
    ----------
    base : score field
        E.g. an EmpiricalDensity.
    error : callable
        ``error(x (m, D), t) -> (m, D)``; see :func:`constant_error`, :func:`normal_error`,
        :func:`tangent_error`, :func:`random_smooth_error`.
    scale : float or callable, default 1.0
        Multiplies the error; a function of t for a time-dependent amplitude.

    Raises
    ------
    TypeError
        If ``base`` has no ``score`` or ``error`` is not callable.
    """

    def __init__(self, base, error, scale=1.0):
        if not hasattr(base, "score"):
            raise TypeError("base must be a score field with a score(x, t) method")
        if not callable(error):
            raise TypeError("error must be callable as error(x, t) -> (m, D)")
        self.base = base
        self.error_fn = error
        self.scale = scale
        for attr in ("schedule", "D", "data", "n"):
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))

    def error(self, x, t) -> np.ndarray:
        """The injected error ``scale(t) * error(x, t)``.

        Parameters
        ----------
        x : numpy.ndarray, shape (m, D)
            Points.
        t : float or numpy.ndarray, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (m, D)
            The error (score units, 1/length).
        """
        c = self.scale(t) if callable(self.scale) else self.scale
        return c * np.asarray(self.error_fn(x, t), dtype=np.float64)

    def score(self, x, t) -> np.ndarray:
        """The perturbed score ``base.score(x, t) + error(x, t)``.

        Parameters
        ----------
        x : numpy.ndarray, shape (m, D)
            Points.
        t : float or numpy.ndarray, shape (m,)
            Time(s).

        Returns
        -------
        numpy.ndarray, shape (m, D)
            The score (1/length).
        """
        return self.base.score(x, t) + self.error(x, t)

    def __getattr__(self, name):  # hessian, moments, log_density ... of the base field
        if name in ("base", "error_fn", "scale"):
            raise AttributeError(name)
        return getattr(self.base, name)


def constant_error(vector):
    """The same error vector everywhere.

    Parameters
    ----------
    vector : array_like, shape (D,)
        The error (score units, 1/length).

    Returns
    -------
    callable
        ``error(x, t) -> (m, D)``, for :class:`PerturbedField`.

    Raises
    ------
    ValueError
        If the vector is not a finite 1-D array.
    """
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or not np.all(np.isfinite(v)):
        raise ValueError("vector must be a finite 1-D array")
    return lambda x, t: np.broadcast_to(v, np.shape(x)).copy()


def _frame_error(density, d, u0, part):
    from ..geometry.ridge import frame

    u0 = np.asarray(u0, dtype=np.float64)

    def err(x, t):
        fr = frame(density, x, t, d)
        u = np.broadcast_to(u0, fr.score.shape)
        un = fr.project_normal(u)
        return un if part == "normal" else u - un
    return err


def normal_error(density, d, u0):
    """``P_perp(x) u0``: an error with no tangential part (ridge frame of ``density``, dimension d).

    Parameters
    ----------
    density : score field with a Hessian
        Whose ridge frame splits the error (e.g. an EmpiricalDensity).
    d : int
        Ridge dimension.
    u0 : array_like, shape (D,) or (m, D)
        The vector to project (score units).

    Returns
    -------
    callable
        ``error(x, t) -> (m, D)``, for :class:`PerturbedField`.
    """
    return _frame_error(density, d, u0, "normal")


def tangent_error(density, d, u0):
    """``P_par(x) u0``: an error with no normal part (ridge frame of ``density``, dimension d).

    Parameters
    ----------
    density : score field with a Hessian
        Whose ridge frame splits the error (e.g. an EmpiricalDensity).
    d : int
        Ridge dimension.
    u0 : array_like, shape (D,) or (m, D)
        The vector to project (score units).

    Returns
    -------
    callable
        ``error(x, t) -> (m, D)``, for :class:`PerturbedField`.
    """
    return _frame_error(density, d, u0, "tangent")


def random_smooth_error(D: int, rng, n_features: int = 32, length: float = 1.0, amplitude: float = 1.0,
                        time_scale: float | None = None):
    """A smooth random vector field ``sum_k A_k cos(w_k . x + c_k t + b_k)`` (random Fourier features).

    Parameters
    ----------
    D : int
        Dimension.
    rng : None, int, SeedSequence or numpy.random.Generator
        Draws the field once; None draws from a fresh generator.
    n_features : int, default 32
        Number of Fourier features.
    length : float, default 1.0
        Correlation length (``w ~ N(0, I/length^2)``).
    amplitude : float, default 1.0
        RMS amplitude (score units).
    time_scale : float, optional
        If given, the field varies in t on this scale; otherwise it is time-independent.

    Returns
    -------
    callable
        ``error(x, t) -> (m, D)``, for :class:`PerturbedField`.
    """
    g = as_generator(rng)
    W = g.standard_normal((n_features, D)) / length
    b = g.uniform(0, 2 * np.pi, n_features)
    A = g.standard_normal((n_features, D)) * amplitude * np.sqrt(2.0 / n_features)
    c = g.standard_normal(n_features) / time_scale if time_scale else np.zeros(n_features)

    def err(x, t):
        x = np.asarray(x, dtype=np.float64)
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), (x.shape[0],))
        return np.cos(x @ W.T + tt[:, None] * c[None, :] + b[None, :]) @ A
    return err
