"""rftheory: a computable theory of diffusion-model generalization.

The core object is a *score field* on a finite training set (``score(x, t) -> (m, D)``, optionally
``hessian`` and ``log_density``). See THEORY.md (shared) for every formula and README.md for a tour.
"""
from . import bounds, datasets, dynamics, ridge, sampling, schedules
from .empirical import EmpiricalDensity, PosteriorMoments
from .rf_model import RandomFeatureModel, gradient_flow
from .schedules import OU, VE, GTVFig1, LinearVP

__version__ = "0.1.0"

__all__ = ["EmpiricalDensity", "PosteriorMoments", "RandomFeatureModel", "gradient_flow", "schedules", "ridge",
           "sampling", "dynamics", "bounds", "datasets", "OU", "LinearVP", "VE", "GTVFig1"]
