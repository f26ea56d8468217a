"""rftheory: a computable theory of diffusion-model generalization.

The core object is a *score field* on a finite training set (``score(x, t) -> (m, D)``, optionally
``hessian`` and ``log_density``). See THEORY.md (shared) for every formula and README.md for a tour.
"""
from . import schedules
from .empirical import EmpiricalDensity, PosteriorMoments
from .schedules import OU, VE, GTVFig1, LinearVP

__version__ = "0.1.0"

__all__ = ["EmpiricalDensity", "PosteriorMoments", "schedules", "OU", "LinearVP", "VE", "GTVFig1"]
