"""The result of :func:`rftheory.geometry.ridge.project` and its status codes (re-exported by
:mod:`rftheory.geometry.ridge`)."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field

import numpy as np

from .._results import frame as _table, short_repr

__all__ = ["Projection", "STATUS"]

STATUS = {0: "converged", 1: "max_iter", 2: "not_regular", 3: "diverged"}


@dataclass
class Projection:
    """Result of :func:`project` for m points.

    Attributes
    ----------
    points : numpy.ndarray, shape (m, D)
        Projected points (the last iterate where not converged; never NaN).
    converged : numpy.ndarray of bool, shape (m,)
    status : numpy.ndarray of int, shape (m,)
        Codes of ``STATUS``: 0 converged, 1 max_iter, 2 not_regular, 3 diverged (``status_names``).
    iterations : numpy.ndarray of int, shape (m,)
        Iterations used.
    residual : numpy.ndarray, shape (m,)
        Final ``|P_perp s|`` (1/length).
    beta, eigengap : numpy.ndarray, shape (m,)
        Final normal curvature and eigengap (1/length^2).
    newton_steps : numpy.ndarray of int, shape (m,)
        How many of the iterations were Newton steps.
    order : float
        Observed convergence order of the Newton phase (median over points; NaN if unmeasured).
    tol : numpy.ndarray, shape (m,)
        The tolerance applied (after the round-off floor).
    """

    points: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    beta: np.ndarray
    eigengap: np.ndarray
    newton_steps: np.ndarray
    order: float = float("nan")
    tol: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))

    __repr__ = short_repr

    def __str__(self):
        counts = ", ".join(f"{STATUS[c]} {int(np.sum(self.status == c))}" for c in sorted(STATUS)
                           if np.any(self.status == c))
        return (f"Projection of {self.points.shape[0]} points in D = {self.points.shape[1]}: {counts}; "
                f"max residual {np.max(self.residual, initial=0.0):.3g}")

    @property
    def status_names(self):
        """(m,) the status codes as names (``STATUS``)."""
        return np.array([STATUS[int(c)] for c in self.status])

    def to_frame(self):
        """One row per point: points_k, status (name), converged, iterations, newton_steps, residual, beta,
        eigengap.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"points": self.points, "status": self.status_names, "converged": self.converged,
                       "iterations": self.iterations, "newton_steps": self.newton_steps,
                       "residual": self.residual, "beta": self.beta, "eigengap": self.eigengap}, "point")
