"""Dynamics: reverse-time inference and what it does near the ridge.

``sampling`` holds the PF-ODE (Euler, Heun) and reverse-SDE samplers and error injection; ``motion`` the
reach -> align -> slide measurements along recorded trajectories and the memorization metric; ``bounds`` the
T1 closed forms, the T2/T3 Groenwall bounds and the T4 attractors. It may import ``rftheory.density`` and
``rftheory.geometry``, nothing above. The measurement functions are also reachable here directly
(``rftheory.dynamics.measure``, ``phases``, ``memorization``), as they were before the sub-packages.
"""
from . import bounds, sampling
from .motion import Memorization, PathMeasurements, PhaseSummary, memorization, measure, phases

__all__ = ["sampling", "bounds", "measure", "phases", "memorization", "PathMeasurements", "PhaseSummary",
           "Memorization"]
