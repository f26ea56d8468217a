"""[GTV] generalization through variance: the proxy-score covariance and linear-feature ensembles.

``variance`` holds the V1 proxy covariance and the V2 naive estimator; ``bases`` the tensor-product feature
bases (Gaussian bumps, Fourier modes); ``ensembles`` the V3 linear-feature ensembles and the V4 V-kernel. It may
import ``rftheory.density`` and ``rftheory.dynamics.sampling`` (time grids), nothing above.
"""
from . import bases, ensembles, variance

__all__ = ["variance", "bases", "ensembles"]
