"""Density: the noising schedules and the smoothed empirical density p_t of a finite training set.

``schedules`` gives a(t), h(t), beta(t), g2(t) and time grids; ``empirical`` the exact streaming log-sum-exp
pass behind log p_t, the posterior moments, the score and the Hessian (P1), the pass itself in ``_streaming``;
``neighbours`` the certified truncation to the neighbours that carry all but rtol of the posterior weight. This
part imports only the package's private helpers (``rftheory._checks``, ``_blas``); every other part builds on it.
"""
from . import empirical, neighbours, schedules
from .empirical import EmpiricalDensity, PosteriorMoments
from .neighbours import TruncatedDensity
from .schedules import OU, VE, GTVFig1, LinearVP

__all__ = ["schedules", "empirical", "neighbours", "EmpiricalDensity", "PosteriorMoments", "TruncatedDensity",
           "OU", "LinearVP", "VE", "GTVFig1"]
