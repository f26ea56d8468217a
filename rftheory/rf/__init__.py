"""Random-feature score models in closed form ([HQT] R1-R4).

``features`` holds the activations with their exact Gaussian moments (``_bvn`` the bivariate normal behind
them) and the Fourier time embedding; ``moments`` the assembly of U, V, c0 and its on-disk cache; ``model``
the RF score model, its optimum, the gradient flow W(tau), GD and SGD; ``decomposition`` the split of its
error into architectural bias and optimization error, normal and tangent, pointwise and at loss level
(``loss_split``: [HQT]'s measure, the excess over the exact denoiser's loss L*). Conventions that differ from
the papers' code are options: docs/conventions.md. It may import
``rftheory.density`` and ``rftheory.geometry`` (the ridge frame), nothing above.
"""
from . import decomposition, features, model, moments
from .model import RandomFeatureModel, gradient_flow

__all__ = ["features", "moments", "model", "decomposition", "RandomFeatureModel", "gradient_flow"]
