"""Data: training sets, synthetic and real, and latent maps.

``datasets`` holds the mode sets, the 13-point set, circles and the [GTV] sets; ``realdata`` the digit and
MNIST loaders (shipped or IDX files) and the PCA latent map. It imports only the private helpers: every other
part may use it.
"""
from . import datasets, realdata

__all__ = ["datasets", "realdata"]
