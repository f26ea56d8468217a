"""rftheory: a computable theory of diffusion-model generalization.

The core object is a *score field* on a finite training set (``score(x, t) -> (m, D)``, optionally
``hessian`` and ``log_density``). The parts, each a sub-package, import downward only::

    data, density  <-  geometry  <-  dynamics  <-  rf, gtv  <-  apps, cli

``density`` (schedules, the smoothed empirical density, truncation), ``geometry`` (the ridge), ``dynamics``
(samplers, reach/align/slide, bounds), ``rf`` (random-feature score models in closed form), ``gtv``
(generalization through variance), ``data`` (training sets), ``apps`` (the latent experiment, ``analyze``).
The mathematics is in ``docs/theory.md``, the design in ``docs/design.md``.

The modules' old flat names (``rftheory.ridge``, ``rftheory.rf_model``, ``rftheory.sampling`` ...) stay
importable: they are the same module objects as their new homes (``rftheory.geometry.ridge`` ...).
"""
import importlib
import importlib.abc
import importlib.util
import sys

from .data import datasets
from .density import schedules
from .density.empirical import EmpiricalDensity, PosteriorMoments
from .density.schedules import OU, VE, GTVFig1, LinearVP
from .dynamics import bounds, sampling
from .geometry import ridge
from . import dynamics
from .rf.model import RandomFeatureModel, gradient_flow

__version__ = "0.1.0"

__all__ = ["EmpiricalDensity", "PosteriorMoments", "RandomFeatureModel", "gradient_flow", "schedules", "ridge",
           "sampling", "dynamics", "bounds", "datasets", "OU", "LinearVP", "VE", "GTVFig1", "__version__"]

# Old flat module name -> its home since the sub-packages. ``dynamics`` is now the package itself (it
# re-exports the measurement functions of ``dynamics.motion``), so it needs no entry.
_MOVED = {
    "schedules": "density.schedules", "empirical": "density.empirical", "neighbours": "density.neighbours",
    "ridge": "geometry.ridge", "sampling": "dynamics.sampling", "bounds": "dynamics.bounds",
    "features": "rf.features", "rf_moments": "rf.moments", "rf_model": "rf.model",
    "decomposition": "rf.decomposition", "variance": "gtv.variance", "feature_bases": "gtv.bases",
    "feature_ensembles": "gtv.ensembles", "datasets": "data.datasets", "realdata": "data.realdata",
    "latent": "apps.latent", "analyze": "apps.analyze",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads ``rftheory.OLD`` as the very module object ``rftheory.NEW`` (no copy, no second import)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        head, _, tail = fullname.partition(".")
        if head != __name__ or tail not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(f"{__name__}.{_MOVED[tail]}"))


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name):  # ``rftheory.variance`` etc. without an explicit import, as before the move
    if name in _MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
