"""Forward processes ``X_t = a_t X_0 + sqrt(h_t) Z`` and reverse-time grids (docs/theory.md §1).

A schedule is data: four vectorised float64 functions of t

    a(t)     signal scale
    h(t)     noise variance
    beta(t)  = -d log a_t / dt
    g2(t)    = dh_t/dt + 2 beta_t h_t        (squared diffusion coefficient)

and a domain ``(t_lo, t_hi]`` (open at 0: ``h_0 = 0`` makes the smoothed density singular).
The reverse drift in ``s = T - t`` is ``beta x + g2 s`` (SDE) or ``beta x + g2 s / 2`` (PF-ODE);
for OU this is ``x + 2 s`` and ``x + s``.

Time grids are decreasing arrays from ``t_max`` to ``t_min`` (the order reverse-time samplers walk); they
are in :mod:`rftheory.density._grids`, re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._grids import edm_grid, geometric_grid, uniform_grid  # re-exported

__all__ = [
    "Schedule",
    "OU",
    "LinearVP",
    "VE",
    "GTVFig1",
    "geometric_grid",
    "uniform_grid",
    "edm_grid",
    "get_schedule",
]


def _as_time(t, lo: float, hi: float, name: str = "t") -> np.ndarray:
    """Validate times: finite float64 in ``(lo, hi]``; returns an array (0-d for scalars)."""
    if t is None:
        raise TypeError(f"{name} must be a time (a positive number or an array of them); got None")
    if np.iscomplexobj(t):
        raise TypeError(f"{name} must be real; got a complex value")
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number or an array of numbers; got {t!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    if np.any(arr <= lo) or np.any(arr > hi):
        bad = arr[(arr <= lo) | (arr > hi)].ravel()[0]
        raise ValueError(f"{name} must lie in ({lo}, {hi}] for this schedule (got {bad!r})")
    return arr


@dataclass(frozen=True)
class Schedule:
    """Base class of the forward processes ``X_t = a_t X_0 + sqrt(h_t) Z`` (docs/theory.md §1).

    Subclasses implement ``_a``, ``_h``, ``_beta``, ``_g2`` on validated arrays; the public methods validate
    t against the domain ``(t_lo, t_hi]`` first and are vectorised over t. Schedules are frozen dataclasses:
    their ``repr`` names every parameter and keys the moment cache.

    Attributes
    ----------
    t_lo, t_hi : float
        The open lower and closed upper end of the time domain.
    name : str
        Short name (``get_schedule`` reads it back).
    """

    t_lo = 0.0
    t_hi = np.inf
    name = "schedule"

    def check_t(self, t, name: str = "t") -> np.ndarray:
        """Validate times for this schedule.

        Parameters
        ----------
        t : float or array_like
            Time(s).
        name : str, default "t"
            The argument's name, used in the error message.

        Returns
        -------
        numpy.ndarray
            The times as float64 (0-d for a scalar).

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        return _as_time(t, self.t_lo, self.t_hi, name)

    def a(self, t):
        """The signal scale ``a_t`` (dimensionless).

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        numpy.ndarray
            Same shape as t (0-d for a scalar).

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        return self._a(self.check_t(t))

    def h(self, t):
        """The noise variance ``h_t`` (length^2 in data units).

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        numpy.ndarray
            Same shape as t (0-d for a scalar).

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        return self._h(self.check_t(t))

    def beta(self, t):
        """The drift rate ``beta_t = -d log a_t / dt`` (1/time).

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        numpy.ndarray
            Same shape as t.

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        return self._beta(self.check_t(t))

    def g2(self, t):
        """The squared diffusion coefficient ``g_t^2 = dh_t/dt + 2 beta_t h_t`` (length^2/time).

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        numpy.ndarray
            Same shape as t.

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        return self._g2(self.check_t(t))

    def a_h(self, t):
        """``(a_t, h_t)`` from one validation of t.

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        a, h : numpy.ndarray
            Each of t's shape.

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        tt = self.check_t(t)
        return self._a(tt), self._h(tt)

    def snr(self, t):
        """The signal-to-noise ratio ``a_t^2 / h_t``.

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's domain ``(t_lo, t_hi]``.

        Returns
        -------
        numpy.ndarray
            Same shape as t (1/length^2).

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        a, h = self.a_h(t)
        return a * a / h


@dataclass(frozen=True)
class OU(Schedule):
    """Ornstein-Uhlenbeck: ``a = e^{-t}``, ``h = 1 - e^{-2t}``; ``beta = 1``, ``g2 = 2``. [HQT]'s default.

    Takes no parameters; domain ``(0, inf)``.
    """

    name = "ou"

    def _a(self, t):
        return np.exp(-t)

    def _h(self, t):
        return -np.expm1(-2.0 * t)

    def _beta(self, t):
        return np.ones_like(t)

    def _g2(self, t):
        return 2.0 * np.ones_like(t)


@dataclass(frozen=True)
class LinearVP(Schedule):
    """Linear VP (DDPM continuous): ``log a = -(beta_min t + beta_d t^2/2)``, ``h = 1 - a^2``.

    ``beta(t) = beta_min + beta_d t`` and ``g2 = 2 beta(t)``. [GTV] uses beta_min 0.1, beta_d 19.9, T = 1.

    Parameters
    ----------
    beta_min : float, default 0.1
        Rate at t = 0 (>= 0).
    beta_d : float, default 19.9
        Its growth per unit time (>= 0; not both 0).

    Raises
    ------
    ValueError
        If a parameter is negative or not finite, or both are 0.
    """

    beta_min: float = 0.1
    beta_d: float = 19.9
    name = "linear_vp"

    def __post_init__(self):
        if not (np.isfinite(self.beta_min) and np.isfinite(self.beta_d)):
            raise ValueError("beta_min and beta_d must be finite")
        if self.beta_min < 0 or self.beta_d < 0 or self.beta_min + self.beta_d <= 0:
            raise ValueError("beta_min, beta_d must be >= 0 and not both 0")

    def _loga(self, t):
        return -(self.beta_min * t + 0.5 * self.beta_d * t * t)

    def _a(self, t):
        return np.exp(self._loga(t))

    def _h(self, t):
        return -np.expm1(2.0 * self._loga(t))

    def _beta(self, t):
        return self.beta_min + self.beta_d * t

    def _g2(self, t):
        return 2.0 * (self.beta_min + self.beta_d * t)


@dataclass(frozen=True)
class VE(Schedule):
    """Variance exploding: ``a = 1``, ``h = sigma(t)^2``, ``sigma = sigma_min (sigma_max/sigma_min)^t``.

    ``beta = 0``, ``g2 = dh/dt = 2 sigma^2 log(sigma_max/sigma_min)``; the PF-ODE drift is ``sigma sigma' s``.
    Domain ``(0, 1]``.

    Parameters
    ----------
    sigma_min : float, default 0.01
        Noise scale at t = 0 (length).
    sigma_max : float, default 50.0
        Noise scale at t = 1 (length; > sigma_min).

    Raises
    ------
    ValueError
        Unless 0 < sigma_min < sigma_max < inf.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    name = "ve"
    t_hi = 1.0

    def __post_init__(self):
        if not (0 < self.sigma_min < self.sigma_max < np.inf):
            raise ValueError("VE needs 0 < sigma_min < sigma_max < inf")

    def _a(self, t):
        return np.ones_like(t)

    def _h(self, t):
        return self.sigma_min**2 * (self.sigma_max / self.sigma_min) ** (2.0 * t)

    def _beta(self, t):
        return np.zeros_like(t)

    def _g2(self, t):
        return 2.0 * self._h(t) * np.log(self.sigma_max / self.sigma_min)


@dataclass(frozen=True)
class GTVFig1(Schedule):
    """[GTV] Fig. 1 schedule: ``h = t``, ``a = sqrt(1 - t)`` on ``(0, 1)``.

    ``beta = 1/(2(1-t))`` and ``g2 = 1/(1-t)``. t = 1 is excluded (a = 0, beta infinite). No parameters.
    """

    name = "gtv_fig1"
    t_hi = 1.0

    def check_t(self, t, name: str = "t"):
        """Validate times: finite, in (0, 1) (t = 1 is excluded: a_1 = 0).

        Parameters
        ----------
        t : float or array_like
            Time(s).
        name : str, default "t"
            The argument's name, used in the error message.

        Returns
        -------
        numpy.ndarray
            The times as float64.

        Raises
        ------
        ValueError
            If a time is not finite or lies outside the domain.
        """
        arr = _as_time(t, 0.0, 1.0, name)
        if np.any(arr >= 1.0):
            raise ValueError(f"{name} must lie in (0, 1) for the GTV Fig. 1 schedule (a_1 = 0)")
        return arr

    def _a(self, t):
        return np.sqrt(1.0 - t)

    def _h(self, t):
        return np.asarray(t, dtype=np.float64) * 1.0

    def _beta(self, t):
        return 0.5 / (1.0 - t)

    def _g2(self, t):
        return 1.0 / (1.0 - t)


_SCHEDULES = {"ou": OU, "linear_vp": LinearVP, "vp": LinearVP, "ve": VE, "gtv_fig1": GTVFig1}


def get_schedule(name_or_schedule) -> Schedule:
    """A schedule from its name or an instance.

    Parameters
    ----------
    name_or_schedule : str or Schedule
        ``"ou"``, ``"linear_vp"`` (or ``"vp"``), ``"ve"``, ``"gtv_fig1"`` (case-insensitive; default
        parameters), or a Schedule, returned as is.

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        For an unknown name or another type.
    """
    if isinstance(name_or_schedule, Schedule):
        return name_or_schedule
    if isinstance(name_or_schedule, str) and name_or_schedule.lower() in _SCHEDULES:
        return _SCHEDULES[name_or_schedule.lower()]()
    raise ValueError(
        f"schedule must be a Schedule or one of {sorted(_SCHEDULES)} (got {name_or_schedule!r})"
    )
