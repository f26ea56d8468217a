"""Reverse-time inference for any score field (docs/theory.md §1).

In reverse time ``s = T - t`` the drifts are ``beta_t x + g2_t s`` (SDE, plus ``sqrt(g2_t) dW``) and
``beta_t x + g2_t s / 2`` (probability-flow ODE); for OU, ``x + 2 s`` and ``x + s``.

Every sampler has the same signature, k-diffusion style: ``sample(field, x, grid, method=..., schedule=...,
rng=..., record=..., progress=...)`` with ``grid`` a strictly decreasing array of times (t_max ... t_min > 0).
Randomness is injected through a ``numpy.random.Generator``. Trajectories are recorded only at the
requested grid times (nothing per step is kept otherwise).

Error injection: :class:`PerturbedField` adds an error field to a base field (``s_hat = s* + e``) while
keeping the base field's Hessian and geometry, so the ridge of p_t stays the reference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator, as_points
from .._results import frame as _table, short_repr

log = logging.getLogger(__name__)

__all__ = ["Trajectory", "sample", "drift", "check_grid", "PerturbedField", "constant_error",
           "normal_error", "tangent_error", "random_smooth_error", "METHODS"]

METHODS = ("euler", "heun", "em")


def check_grid(grid, schedule=None) -> np.ndarray:
    """Validate a reverse-time grid.

    Parameters
    ----------
    grid : array_like, shape (N,)
        Times; must be finite and strictly decreasing with the last one > 0.
    schedule : Schedule, optional
        If given, every time must lie in its domain.

    Returns
    -------
    numpy.ndarray, shape (N,)
        The grid as float64.

    Raises
    ------
    ValueError
        If the grid has fewer than two times, is not 1-D, not finite, not strictly decreasing, ends at
        t <= 0, or leaves the schedule's domain.
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError("grid must be a 1-D array of at least two times")
    if not np.all(np.isfinite(g)):
        raise ValueError("grid contains NaN or inf")
    if not np.all(np.diff(g) < 0):
        raise ValueError("grid must be strictly decreasing (reverse time: t_max down to t_min)")
    if g[-1] <= 0:
        raise ValueError(f"grid's last time t_min must be > 0 (got {g[-1]})")
    if schedule is not None:
        schedule.check_t(g, "grid")
    return g


def _schedule_of(field, schedule):
    sch = schedule if schedule is not None else getattr(field, "schedule", None)
    if sch is None:
        raise ValueError("schedule must be given for a field without a .schedule attribute")
    return sch


def drift(field, x: np.ndarray, t: float, schedule, kind: str = "ode") -> np.ndarray:
    """Reverse-time drift ``beta_t x + c g2_t s(x, t)`` with c = 1/2 (``ode``) or 1 (``sde``).

    Parameters
    ----------
    field : score field
        Object with ``score(x, t)``.
    x : numpy.ndarray, shape (m, D)
        Points.
    t : float
        Time.
    schedule : Schedule
        Forward process (``beta``, ``g2``).
    kind : {"ode", "sde"}, default "ode"
        Probability-flow ODE or reverse SDE drift.

    Returns
    -------
    numpy.ndarray, shape (m, D)
        The drift in reverse time s = T - t (length per unit time).
    """
    b = float(schedule.beta(t))
    g2 = float(schedule.g2(t))
    c = 0.5 if kind == "ode" else 1.0
    return b * x + c * g2 * field.score(x, t)


@dataclass
class Trajectory:
    """Samples and their recorded path (the result of :func:`sample`).

    Attributes
    ----------
    times : numpy.ndarray, shape (k,)
        Recorded times (a subset of the grid, decreasing).
    states : numpy.ndarray, shape (k, m, D)
        Positions at those times (length).
    final : numpy.ndarray, shape (m, D)
        Positions at the grid's last time.
    method : str
        Integrator used.
    steps : int
        Number of steps taken.
    """

    times: np.ndarray
    states: np.ndarray
    final: np.ndarray
    method: str
    steps: int

    __repr__ = short_repr

    def to_frame(self):
        """Long format, one row per (recorded time, sample): time, sample, x_k.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        k, m, D = self.states.shape
        return _table({"time": np.repeat(self.times, m), "sample": np.tile(np.arange(m), k),
                       "x": self.states.reshape(k * m, D)})


def _record_indices(grid, record):
    if record is None:
        return np.array([len(grid) - 1])
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        if record < 1:
            raise ValueError("record must be >= 1 when it is a count")
        idx = np.unique(np.round(np.linspace(0, len(grid) - 1, int(record))).astype(int))
        return idx
    rt = np.asarray(record, dtype=np.float64).ravel()
    # each requested time to the nearest grid point in log t (grids are usually geometric)
    idx = np.array([int(np.argmin(np.abs(np.log(grid) - np.log(r)))) for r in rt])
    return np.unique(idx)


def sample(field, x: ArrayLike, grid: ArrayLike, method: str = "heun", schedule=None, rng: RngLike = None,
           record=None, progress: bool = False) -> Trajectory:
    """Integrate reverse-time inference from ``x`` at ``grid[0]`` down to ``grid[-1]`` (docs/theory.md §1).

    Parameters
    ----------
    field : score field
        Any object with ``score(x, t) -> (m, D)`` (docs/design.md §3.1).
    x : array_like, shape (m, D) or (D,)
        Starting points at ``grid[0]`` (e.g. ``density.sample(T, m, rng)``).
    grid : array_like, shape (N,)
        Strictly decreasing times ``t_max ... t_min > 0`` (e.g. ``schedules.geometric_grid``).
    method : {"heun", "euler", "em"}, default "heun"
        Probability-flow ODE by Heun or Euler steps, or the reverse SDE by Euler-Maruyama.
    schedule : Schedule, optional
        Forward process; defaults to ``field.schedule``.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Noise of the SDE (``em``); None draws from a fresh generator. Unused by the ODE methods.
    record : None, int or array_like of times, optional
        None keeps the final state only; an int that many grid points evenly spread in index; times are
        snapped to the nearest grid point in log t.
    progress : bool, default False
        Show a tqdm bar.

    Returns
    -------
    Trajectory
        ``times`` (k,) recorded times (decreasing), ``states`` (k, m, D) positions there (length), ``final``
        (m, D) positions at ``grid[-1]``, ``method``, ``steps``; ``to_frame()`` gives a long table.

    Raises
    ------
    TypeError
        If ``field`` has no ``score``, or rng is not an accepted type.
    ValueError
        If the method is unknown, the grid is not strictly decreasing inside the schedule's domain, x has
        the wrong shape or is not finite, or ``record`` is not >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> from rftheory import EmpiricalDensity, schedules
    >>> from rftheory.dynamics.sampling import sample
    >>> p = EmpiricalDensity(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    >>> grid = schedules.geometric_grid(5.0, 1e-2, 50)
    >>> sample(p, p.sample(5.0, 8, rng=0), grid, "em", rng=1, record=3).states.shape
    (3, 8, 2)
    """
    if not hasattr(field, "score"):
        raise TypeError("field must be a score field with a score(x, t) method")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    sch = _schedule_of(field, schedule)
    g = check_grid(grid, sch)
    D = getattr(field, "D", None) or np.asarray(x).shape[-1]
    x = as_points(x, int(D), "x").copy()
    gen = as_generator(rng) if method == "em" else None
    rec = _record_indices(g, record)
    states = np.empty((len(rec), *x.shape))
    pos = {int(i): k for k, i in enumerate(rec)}
    if 0 in pos:
        states[pos[0]] = x
    for k in tqdm(range(len(g) - 1), disable=not progress, desc=f"sampling ({method})", leave=False):
        t0, t1 = float(g[k]), float(g[k + 1])
        ds = t0 - t1
        if method == "euler":
            x = x + ds * drift(field, x, t0, sch, "ode")
        elif method == "heun":
            d0 = drift(field, x, t0, sch, "ode")
            xp = x + ds * d0
            x = x + 0.5 * ds * (d0 + drift(field, xp, t1, sch, "ode"))
        else:
            x = x + ds * drift(field, x, t0, sch, "sde") + np.sqrt(float(sch.g2(t0)) * ds) * \
                gen.standard_normal(x.shape)
        if k + 1 in pos:
            states[pos[k + 1]] = x
        if not np.all(np.isfinite(x)):
            raise FloatingPointError(f"sampler diverged at t = {t1:g} (step {k + 1}); use a finer grid")
    return Trajectory(times=g[rec], states=states, final=x, method=method, steps=len(g) - 1)


# ----------------------------------------------------------------------------- error injection
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
