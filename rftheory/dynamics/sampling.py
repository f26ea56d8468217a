"""Reverse-time inference for any score field (docs/theory.md §1).

In reverse time ``s = T - t`` the drifts are ``beta_t x + g2_t s`` (SDE, plus ``sqrt(g2_t) dW``) and
``beta_t x + g2_t s / 2`` (probability-flow ODE); for OU, ``x + 2 s`` and ``x + s``.

Every sampler has the same signature, k-diffusion style: ``sample(field, x, grid, method=..., schedule=...,
rng=..., record=..., progress=...)`` with ``grid`` a strictly decreasing array of times (t_max ... t_min > 0).
Randomness is injected through a ``numpy.random.Generator``. Trajectories are recorded only at the
requested grid times (nothing per step is kept otherwise).

Error injection: :class:`PerturbedField` adds an error field to a base field (``s_hat = s* + e``) while
keeping the base field's Hessian and geometry, so the ridge of p_t stays the reference
(:mod:`rftheory.dynamics._error_fields`, re-exported here).
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
# (its own job: rftheory.dynamics._error_fields, re-exported here)
from ._error_fields import (PerturbedField, constant_error, normal_error, random_smooth_error,  # noqa: E402
                            tangent_error)
