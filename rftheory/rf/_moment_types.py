"""The result types of the moment assembly (split out of :mod:`rftheory.rf.moments`, which re-exports them):
:class:`Moments` (U, V, c0 and the settings) and :class:`QuadratureReport` (the time rule's convergence).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import short_repr

__all__ = ["Moments", "QuadratureReport"]

WEIGHTS = ("1", "1/h", "1/h2")
FORMAT = 5   # of the moment cache: raise it whenever the assembly's numbers change (it is part of every cache key)
PARAMETRIZATIONS = ("posterior_mean", "score")


@dataclass
class QuadratureReport:
    """Convergence of the time quadrature of U and V.

    Attributes
    ----------
    rule : str
        The quadrature rule.
    n_nodes, n_nodes_refined : int
        Nodes of the rule and of the refined rule (twice the nodes per panel).
    units : numpy.ndarray of int
        The random units on which the two were compared.
    rel_diff_U, rel_diff_V : float
        Relative Frobenius differences of U and V (restricted to ``units``) between the two rules.
    """

    rule: str
    n_nodes: int
    n_nodes_refined: int
    units: np.ndarray
    rel_diff_U: float
    rel_diff_V: float

    __repr__ = short_repr


@dataclass
class Moments:
    """The quadratic loss of an RF model: ``L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0`` (R1).

    Attributes
    ----------
    U : numpy.ndarray, shape (p, p)
        Feature second moment (symmetric positive semi-definite).
    V : numpy.ndarray, shape (D, p)
        Target-feature cross moment.
    c0 : float
        The loss constant ``(1/(nD)) int lambda sum_i E|y|^2 dt``.
    weight, parametrization, method : str
        The settings used.
    t0, T : float
        The time interval.
    n_time_nodes : int
        Nodes of the time rule.
    report : QuadratureReport or None
        Convergence of the time rule.
    """

    U: np.ndarray
    V: np.ndarray
    c0: float
    weight: str
    parametrization: str
    method: str
    t0: float
    T: float
    n_time_nodes: int
    report: QuadratureReport | None = None

    __repr__ = short_repr
