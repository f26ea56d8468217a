"""T4 (docs/theory.md §3): attractors of the learned drift restricted to a traced 1-D ridge, and which of them
are inter-mode. :mod:`rftheory.dynamics.bounds` re-exports every public name here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import short_repr

__all__ = ["Attractor", "ridge_attractors"]


# ----------------------------------------------------------------------------- T4
@dataclass
class Attractor:
    """A zero of the drift along the ridge where it crosses from + to - (stable for the restricted flow).

    Attributes
    ----------
    point : numpy.ndarray, shape (D,)
        Location (length).
    arclength : float
        Arc length along its piece.
    piece : int
        Index of the piece.
    mode_distance : float
        Distance to the nearest a_t x_i (length).
    inter_mode : bool
        Farther than r_mem from every a_t x_i.
    """

    point: np.ndarray
    arclength: float
    piece: int
    mode_distance: float
    inter_mode: bool

    __repr__ = short_repr


def ridge_attractors(field, pieces, t: float, schedule=None, r_mem: float | None = None, kind: str = "ode",
                     data=None):
    """T4: stable zeros of ``g(u) = <gamma'(u), drift(gamma(u), t)>`` on traced ridge pieces (docs/theory.md §3).

    Parameters
    ----------
    field : score field
        The learned score (e.g. a PerturbedField or an RF model's score field).
    pieces : list of RidgePiece
        The ridge of p_t at time t (:func:`rftheory.geometry.ridge.trace`).
    t : float
        Time.
    schedule : Schedule, optional
        Defaults to ``field.schedule``.
    r_mem : float, optional
        An attractor farther than this from every a_t x_i is inter-mode (default ``3 sqrt(h_t)``; length).
    kind : {"ode", "sde"}, default "ode"
        Which drift.
    data : array_like, shape (n, D), optional
        Training set (defaults to ``field.data``).

    Returns
    -------
    attractors : list of Attractor
        Each with ``point`` (D,), ``arclength``, ``piece`` index, ``mode_distance`` and ``inter_mode``.
    profiles : list of (numpy.ndarray, numpy.ndarray)
        Per piece, the arclength and g along it.

    Raises
    ------
    ValueError
        If no schedule or no training set is known.
    """
    from .sampling import drift

    sch = schedule if schedule is not None else getattr(field, "schedule", None)
    if sch is None:
        raise ValueError("schedule must be given for a field without one")
    X = np.asarray(data if data is not None else getattr(field, "data", None), dtype=np.float64)
    if X.ndim != 2:
        raise ValueError("data (training points) must be given for a field without .data")
    a, h = float(sch.a(t)), float(sch.h(t))
    r_mem = 3.0 * np.sqrt(h) if r_mem is None else float(r_mem)
    out, profiles = [], []
    for j, pc in enumerate(pieces):
        P = pc.points
        if len(P) < 3:
            profiles.append((pc.arclength, np.zeros(len(P))))
            continue
        tang = np.gradient(P, pc.arclength, axis=0)
        tang /= np.linalg.norm(tang, axis=1, keepdims=True)
        g = np.einsum("md,md->m", tang, drift(field, P, t, sch, kind))
        profiles.append((pc.arclength, g))
        idx = np.flatnonzero((g[:-1] > 0) & (g[1:] <= 0))
        for i in idx:
            w = g[i] / (g[i] - g[i + 1])  # linear interpolation of the zero
            u = pc.arclength[i] + w * (pc.arclength[i + 1] - pc.arclength[i])
            p = P[i] + w * (P[i + 1] - P[i])
            dist = float(np.min(np.linalg.norm(a * X - p, axis=1)))
            out.append(Attractor(point=p, arclength=float(u), piece=j, mode_distance=dist,
                                 inter_mode=dist > r_mem))
    return out, profiles
