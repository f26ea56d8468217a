"""Generalization through variance [GTV] (docs/theory.md §5): the proxy-score covariance and the naive estimator.

V1  The DSM target is the proxy score ``s~ = (a_t x_0 - x)/h_t`` with ``x_0 ~ w(x, t)`` (the posterior
    weights). Its posterior mean is the score ``s*`` and its posterior covariance is

        C(x, t) = Cov[s~ | x] = (a_t^2/h_t^2) Sigma_t(x) = H_t(x) + I/h_t

    (derivations/v1_proxy_covariance.py; the same identity as P1). The relative variance map
    ``tr C / (tr C + |s*|^2)`` = ``tr C / E[|s~|^2 | x]`` lies in [0, 1].

V2  The naive interleaved estimator replaces the score in an Euler step of size dt by
    ``s* + sqrt(kappa/dt) (s~ - s*)`` with a fresh ``x_0 ~ w(x, t)`` each step. The added increment
    ``dt D_t sqrt(kappa/dt) (s~ - s*)`` has mean 0 and covariance ``kappa dt D_t C D_t``, so as dt -> 0 the
    sampler converges in distribution to the SDE with the extra state-dependent diffusion ``kappa D_t C D_t``
    (derivations/v2_naive_estimator.py). ``D_t = g_t^2/2`` when the base sampler is the PF-ODE and ``g_t^2``
    for the reverse SDE. Both samplers are here, driven by the same grid and Generator, so they can be
    compared with a two-sample test (``ks_two_sample``, ``energy_two_sample``).

The V1 core lives in ``rftheory.gtv._proxy`` and the V2 samplers in ``rftheory.gtv._samplers``; this module
re-exports them and adds the relative-variance map. The linear-feature ensembles (V3) and the V-kernel (V4) live
in ``rftheory.gtv.ensembles``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from numpy.typing import ArrayLike

from .._results import frame as _table, short_repr
from ..density.empirical import EmpiricalDensity
from ._proxy import _check_density, proxy_covariance, relative_variance, sample_posterior_index  # re-exported (V1 core)
from ._samplers import effective_sde_sampler, energy_two_sample, naive_sampler  # re-exported (V2 samplers)

__all__ = [
    "proxy_covariance",
    "relative_variance",
    "relative_variance_map",
    "RelativeVarianceMap",
    "sample_posterior_index",
    "naive_sampler",
    "effective_sde_sampler",
    "energy_two_sample",
]

log = logging.getLogger(__name__)



@dataclass
class RelativeVarianceMap:
    """Relative variance on a square grid (:func:`relative_variance_map`).

    Attributes
    ----------
    x1, x2 : numpy.ndarray, shape (g,)
        Grid coordinates (length).
    times : numpy.ndarray, shape (k,)
    values : numpy.ndarray, shape (k, g, g)
        ``values[i, r, c]`` at ``(x1[c], x2[r])`` (image order; dimensionless, in [0, 1]).
    """

    x1: np.ndarray
    x2: np.ndarray
    times: np.ndarray
    values: np.ndarray

    __repr__ = short_repr

    def to_frame(self):
        """Long format, one row per (time, grid point): time, x1, x2, value.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        k, g2, g1 = self.values.shape
        X1, X2 = np.meshgrid(self.x1, self.x2)  # image order: values[i, r, c] at (x1[c], x2[r])
        return _table({"time": np.repeat(self.times, g1 * g2), "x1": np.tile(X1.ravel(), k),
                       "x2": np.tile(X2.ravel(), k), "value": self.values.reshape(-1)})


def relative_variance_map(dens: EmpiricalDensity, times: ArrayLike, lim: float = 2.0, n_grid: int = 100
                          ) -> RelativeVarianceMap:
    """The [GTV] Fig. 1 map for 2-D data: relative variance on a square grid at each time.

    Parameters
    ----------
    dens : EmpiricalDensity
        A density of 2-D data.
    times : array_like, shape (k,)
        Times in the schedule's domain.
    lim : float, default 2.0
        The grid covers ``[-lim, lim]^2`` (length).
    n_grid : int, default 100
        Points per axis.

    Returns
    -------
    RelativeVarianceMap
        ``x1``, ``x2`` (n_grid,), ``times`` (k,), ``values`` (k, n_grid, n_grid) in image order;
        ``to_frame()`` gives a long table.

    Raises
    ------
    ValueError
        If the data are not 2-D or a time is outside the schedule's domain.
    """
    _check_density(dens)
    if dens.D != 2:
        raise ValueError(f"dens must hold 2-D data for a map; got D = {dens.D}")
    if not (np.isfinite(lim) and lim > 0):
        raise ValueError(f"lim must be a positive finite number; got {lim!r}")
    if isinstance(n_grid, bool) or int(n_grid) != n_grid or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2; got {n_grid!r}")
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    dens.schedule.check_t(times, "times")
    g = np.linspace(-lim, lim, int(n_grid))
    X1, X2 = np.meshgrid(g, g)
    pts = np.column_stack([X1.ravel(), X2.ravel()])
    vals = np.stack([relative_variance(dens, pts, t).reshape(X1.shape) for t in times])
    return RelativeVarianceMap(x1=g, x2=g.copy(), times=times, values=vals)
