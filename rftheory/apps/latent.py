"""The [HQT] latent-digits experiment (docs/theory.md §6), on data available offline.

Pipeline (:func:`run_latent`):

1. **Data.** One digit class of scikit-learn's 8x8 handwritten digits (default; pixels in [0, 1]) or of MNIST
   read from IDX files the user gives. Images are flattened.
2. **Latent map.** Exact PCA to K dimensions (16 for digits, 32 for MNIST; :class:`PCALatent`) with the
   "global" standardisation: one scale for every coordinate, chosen so the latent has unit average variance.
   This keeps the anisotropy of pixel space -- so Euclidean nearest neighbours, memorisation and the ridge
   are those of the (projected) images -- while putting the data on the scale of the OU prior N(0, I).
   (Per-coordinate whitening would inflate the low-variance directions to the size of the main ones.)
3. **Model.** A random-feature score model (:class:`rftheory.rf.model.RandomFeatureModel`, ReLU, Fourier
   time embedding with period T) in the posterior-mean parametrisation, loss weight 1/h_t by default:
   V by the exact Gaussian means, U by stratified Monte Carlo over the noise (:func:`assemble_stratified`),
   or both by the exact closed-form moments (``u_method="exact"``; O(p^2 n Q) special-function evaluations,
   see :func:`assemble_stratified`), then the closed-form gradient flow ``W(tau)`` from ``W(0) = 0``
   (tau = inf by its own path; rf_model.gradient_flow).
   ``model="exact"`` uses the exact empirical score instead (it memorises: the reference).
4. **Sampling.** Reverse SDE (Euler-Maruyama; or the PF-ODE) for OU from ``N(0, h_T I)`` at T down to t_min
   on a geometric grid, recording ``n_record`` intermediate times.
5. **Measurements** against the smoothed empirical density of the latent training set (its ridge is the
   reference): the Hessian eigenvalues at every final sample and the gap spectrum
   (``lambda_k - lambda_{k+1}``, median over samples) from which ``d*`` is chosen as the k with the largest
   median gap; a sweep of the residual statistics over every d; the residual ``|P_perp s*|`` at d*, raw and
   max-normalised, its histogram and on-ridge fraction (< 0.2); its evolution over the recorded times;
   means over the samples whose eigengap exceeds 1e-4 / 1e-3 / 1e-2 (1/length^2, as [HQT]); the
   memorisation fraction ``d_1/d_2 < 1/3`` with a bootstrap interval; decoded samples with their nearest
   training images.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from tqdm.auto import tqdm

from ..geometry import ridge
from .._checks import as_generator
from .._results import short_repr
from .analyze import ON_RIDGE_THRESHOLD, nearest_distances
from ..dynamics.motion import Memorization, memorization
from ..density.empirical import EmpiricalDensity
from ..data.realdata import DEFAULT_LATENT_DIM, PCALatent, load_digits, load_mnist
from ..dynamics.sampling import sample
from ..density.schedules import OU, geometric_grid

log = logging.getLogger(__name__)

__all__ = ["LatentConfig", "LatentResult", "run_latent", "load_latent_data", "train_rf", "QUICK", "FULL",
           "GAP_THRESHOLDS"]

GAP_THRESHOLDS = (1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class LatentConfig:
    """Every knob of the latent-digits experiment (defaults: the full run on scikit-learn digits, class 1).

    Attributes
    ----------
    source : {"digits", "mnist"}
        Data; "mnist" needs ``mnist_images`` and ``mnist_labels`` (IDX paths).
    digit : int
        Class.
    latent_dim : int or None
        PCA latent dimension (None: DEFAULT_LATENT_DIM[source]).
    T, t_min : float
        Horizon and final time of the sampler.
    n_steps, n_samples : int
        Sampler steps and samples.
    method : str
        Sampler method of :func:`rftheory.dynamics.sampling.sample` ("em" reverse SDE, "heun", "euler").
    model : {"rf", "exact"}
        RF score model or the exact empirical score.
    p, K : int
        RF features and Fourier frequencies.
    weight : str
        Loss weight.
    t0, tau : float
        Loss lower time and training time (inf: the optimum).
    activation : str
    n_gl, m_z : int
        Gauss-Legendre nodes per panel and Monte Carlo noise draws for U.
    u_method : {"mc", "exact"}
        How U is assembled.
    d_star : int or None
        Ridge dimension (None: chosen from the eigengap spectrum).
    n_record : int
        Recorded times.
    t_extra : tuple of float
        Extra times at which residuals are reported.
    """

    source: str = "digits"          # "digits" or "mnist"
    mnist_images: str | None = None  # IDX paths when source == "mnist"
    mnist_labels: str | None = None
    digit: int = 1
    latent_dim: int | None = None    # None: DEFAULT_LATENT_DIM[source]
    T: float = 10.0                  # horizon (and the embedding period)
    t_min: float = 1e-3
    n_steps: int = 1000
    n_samples: int = 2000
    method: str = "em"               # "em" (reverse SDE) or "heun" / "euler" (PF-ODE)
    model: str = "rf"                # "rf" or "exact"
    p: int = 2048                    # random features
    K: int = 16                      # Fourier frequencies
    weight: str = "1/h"              # loss weight lambda(t): "1", "1/h", "1/h2" (1/h: a better fit at small t)
    t0: float = 1e-3                 # lower end of the training-time integral
    tau: float = float("inf")        # training time of the gradient flow
    activation: str = "relu"
    n_gl: int = 6                    # Gauss-Legendre nodes per panel of the time rule
    m_z: int = 8                     # noise draws per (time node, training point) for U (u_method "mc")
    u_method: str = "mc"             # "mc": U by stratified Monte Carlo; "exact": closed-form pair moments
    d_star: int | None = None        # None: argmax of the median eigengap at t_min
    n_record: int = 12
    t_extra: tuple = (0.1,)          # further times at which the final samples are measured against p_t


QUICK = LatentConfig(n_steps=200, n_samples=400, p=512, K=8, m_z=4)
FULL = LatentConfig()


@dataclass
class LatentResult:
    """Numbers and arrays of one latent run (m samples, n training points, K latent dimensions).

    Attributes
    ----------
    config : LatentConfig
    pca : PCALatent
    latent : numpy.ndarray, shape (n, K)
        Training latents.
    images : numpy.ndarray, shape (n, D_pix)
        Training images.
    samples : numpy.ndarray, shape (m, K)
        Samples at t_min.
    times : numpy.ndarray, shape (k,)
    states : numpy.ndarray, shape (k, m, K)
        Recorded path.
    eigenvalues : numpy.ndarray, shape (m, K)
        Hessian eigenvalues of log p_{t_min} at the samples.
    gap_median, gap_q25, gap_q75 : numpy.ndarray, shape (K - 1,)
        Gap spectrum.
    d_star : int
    sweep : dict
        (K-1,) arrays over d = 1..K-1 (on_ridge, residual_norm_mean, residual_scaled_mean).
    residual : numpy.ndarray, shape (m,)
        ``|P_perp s*|`` at d* (1/length).
    residual_norm : numpy.ndarray, shape (m,)
        By its max.
    eigengap : numpy.ndarray, shape (m,)
    evolution : dict
        (k,) arrays: median/q25/q75 of the max-normalised and of the sqrt(h)-scaled residual.
    gap_means : dict
        {threshold: (count, mean normalised residual, mean raw residual)}.
    memo : Memorization
    nn_index : numpy.ndarray, shape (m,)
        Nearest training point.
    extra, model_info, timings : dict
        Extra-time residuals, model details, seconds per stage.
    """

    config: LatentConfig
    pca: PCALatent
    latent: np.ndarray
    images: np.ndarray
    samples: np.ndarray
    times: np.ndarray
    states: np.ndarray
    eigenvalues: np.ndarray
    gap_median: np.ndarray
    gap_q25: np.ndarray
    gap_q75: np.ndarray
    d_star: int
    sweep: dict
    residual: np.ndarray
    residual_norm: np.ndarray
    eigengap: np.ndarray
    evolution: dict
    gap_means: dict
    memo: Memorization
    nn_index: np.ndarray
    extra: dict = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    __repr__ = short_repr

    @property
    def on_ridge_fraction(self) -> float:
        return float(np.mean(self.residual_norm < ON_RIDGE_THRESHOLD))

    def summary(self) -> dict:
        """JSON-ready summary of the run.

        Returns
        -------
        dict
        """
        h = float(OU().h(self.config.t_min))
        return {
            "config": asdict(self.config), "n_train": int(self.latent.shape[0]), "K": int(self.latent.shape[1]),
            "retained_variance": self.pca.retained_variance, "d_star": self.d_star,
            "gap_spectrum_median": self.gap_median.tolist(),
            "residual_mean": float(self.residual.mean()), "residual_median": float(np.median(self.residual)),
            "residual_scaled_median": float(np.sqrt(h) * np.median(self.residual)),
            "residual_norm_mean": float(self.residual_norm.mean()),
            "residual_norm_median": float(np.median(self.residual_norm)),
            "below_half": int(np.sum(self.residual_norm < 0.5)),
            "on_ridge_fraction": self.on_ridge_fraction,
            "gap_means": {f"{k:g}": v for k, v in self.gap_means.items()},
            "memorization": [self.memo.fraction, self.memo.ci_low, self.memo.ci_high],
            "model": self.model_info, "timings": self.timings,
            "extra_times": {f"{t:g}": {"d_star": e["d_star"], "on_ridge_fraction": e["on_ridge_fraction"],
                                       "residual_norm_mean": float(e["residual_norm"].mean()),
                                       "residual_norm_median": float(np.median(e["residual_norm"])),
                                       "gap_spectrum_median": e["gap_median"].tolist()}
                            for t, e in self.extra.items()},
        }


def load_latent_data(config: LatentConfig):
    """The configured class's images, the PCA map and the training latents.

    Parameters
    ----------
    config : LatentConfig

    Returns
    -------
    images : numpy.ndarray, shape (n, D_pix)
    pca : PCALatent
    latent : numpy.ndarray, shape (n, K)

    Raises
    ------
    ValueError
        For an unknown source or missing MNIST paths.
    """
    if config.source == "digits":
        X, _ = load_digits(digit=config.digit)
    elif config.source == "mnist":
        if not config.mnist_images or not config.mnist_labels:
            raise ValueError("source='mnist' needs mnist_images and mnist_labels (IDX file paths)")
        X, _ = load_mnist(config.mnist_images, config.mnist_labels, digit=config.digit)
    else:
        raise ValueError(f"source must be 'digits' or 'mnist'; got {config.source!r}")
    K = config.latent_dim or DEFAULT_LATENT_DIM[config.source]
    pca = PCALatent.fit(X, K, standardize="global")
    return X, pca, pca.encode(X)


def assemble_stratified(model, Z, schedule, t0: float, T: float, weight: str, n_gl: int, m_z: int, rng,
                        progress: bool = False):
    """U (p, p) and V (D, p) of the posterior-mean DSM loss on the same composite Gauss-Legendre time rule as
    :mod:`rftheory.rf.moments`, vectorised for hundreds of training points:

    * V exactly: ``V = sum_q w_q (1/n) sum_i a_q x_i E_z[sigma(u_i(q))]^T`` with the activation's closed-form
      Gaussian mean (R1);
    * U by stratified Monte Carlo over z: ``m_z`` standard-normal draws for every (time node, training point)
      pair, the [HQT] authors' own recipe (they used m_z = 4000 per point on a Simpson rule), one matrix product
      per time node. U stays symmetric positive semi-definite. Its Monte Carlo error is estimated by
      splitting the draws into two independent halves A, B: ``||U_A - U_B|| / (2 ||U||)`` estimates the
      relative standard error of U in the Frobenius norm (Var(U_A - U_B) = 4 Var(U)).

    Returns ``(U, V, info)``. The exact closed-form pair moments (``RandomFeatureModel.moments``) cost
    O(p^2 n Q) special-function evaluations, minutes to hours at p >= 512 and n = 182; this costs
    O(p^2 n Q m_z) flops in BLAS.
    """
    from ..rf.features import fourier_embedding
    from ..rf.moments import time_rule, weight_fn

    if int(m_z) != m_z or m_z < 2 or m_z % 2:
        raise ValueError(f"m_z must be an even integer >= 2 (two halves); got {m_z!r}")
    m_z = int(m_z)
    gen = as_generator(rng)
    nodes, wts = time_rule(t0, T, model.K, model.T, n_gl)
    a_all, h_all = schedule.a_h(nodes)
    wq = wts * weight_fn(weight)(h_all) / Z.shape[0]
    emb = fourier_embedding(nodes, model.K, model.T) @ model.W_t.T + model.b[None, :]   # (Q, p)
    proj = Z @ model.W_x.T                                                              # (n, p)
    s_unit = np.sqrt(np.einsum("jd,jd->j", model.W_x, model.W_x))
    n, D = Z.shape
    p = model.p
    UA, UB = np.zeros((p, p)), np.zeros((p, p))
    V = np.zeros((D, p))
    half = m_z // 2
    for q in tqdm(range(nodes.size), disable=not progress, desc="U, V (stratified)", leave=False):
        a, h, w = float(a_all[q]), float(h_all[q]), float(wq[q])
        mu = a * proj + emb[q][None, :]                                                 # (n, p)
        V += (w * a) * (Z.T @ model.act.mean(mu, np.sqrt(h) * s_unit))
        for acc in (UA, UB):
            z = gen.standard_normal((half, n, D))
            S = model.act((mu[None] + np.sqrt(h) * (z @ model.W_x.T)).reshape(half * n, p))
            acc += (w / half) * (S.T @ S)
    U = 0.5 * (UA + UB)
    U = 0.5 * (U + U.T)
    info = {"time_nodes": int(nodes.size), "m_z": m_z,
            "U_mc_rel_se": float(np.linalg.norm(UA - UB) / (2 * np.linalg.norm(U)))}
    return U, V, info


def train_rf(Z, config: LatentConfig, rng, progress: bool = False):
    """Train the RF score model on latents Z in closed form.

    U, V by :func:`assemble_stratified` (``u_method="mc"``) or by the exact Gaussian moments of
    ``RandomFeatureModel.moments`` on the same time rule (``"exact"``), then the closed-form gradient flow from
    W(0) = 0 to tau (R2).

    Parameters
    ----------
    Z : numpy.ndarray, shape (n, K)
        Training latents.
    config : LatentConfig
    rng : None, int, SeedSequence or numpy.random.Generator
    progress : bool, default False

    Returns
    -------
    field : RFScoreField
    info : dict
    """
    from ..rf.model import RandomFeatureModel, gradient_flow

    if config.u_method not in ("mc", "exact"):
        raise ValueError(f"u_method must be 'mc' or 'exact'; got {config.u_method!r}")
    model = RandomFeatureModel(Z.shape[1], config.p, config.K, config.T, config.activation, True, rng)
    if config.u_method == "exact":
        mom = model.moments(Z, OU(), t0=config.t0, weight=config.weight, n_gl=config.n_gl, report=False,
                            progress=progress)
        U, V, info = mom.U, mom.V, {"time_nodes": mom.n_time_nodes}
    else:
        U, V, info = assemble_stratified(model, Z, OU(), config.t0, config.T, config.weight, config.n_gl,
                                         config.m_z, rng, progress)
    info["u_method"] = config.u_method
    flow = gradient_flow(U, V, np.zeros((Z.shape[1], config.p)))
    W = flow.predict(config.tau)
    info.update({"p": config.p, "K": config.K, "weight": config.weight, "tau": config.tau, "rank_U": flow.rank})
    return model.score_field(W, OU()), info


def _residual_stats(dens, x, t, d):
    res = ridge.residual(dens, x, t, d)
    r = res.residual
    rn = r / r.max() if r.max() > 0 else np.zeros_like(r)
    return r, rn, res.frame


def measure_at(dens, x, t: float, d_star=None) -> dict:
    """Ridge measurements of points x against p_t: eigenvalues (m, K), gap spectrum (median and quartiles of
    lambda_k - lambda_{k+1}), d* (argmax of the median gap unless given), the d sweep, the residual at d*
    (raw and max-normalised), its eigengap and the means over samples with eigengap above GAP_THRESHOLDS."""
    fr0 = ridge.frame(dens, x, t, 0)  # one eigendecomposition serves every d
    lam = fr0.eigenvalues
    gaps = lam[:, :-1] - lam[:, 1:]
    g25, gmed, g75 = np.quantile(gaps, [0.25, 0.5, 0.75], axis=0)
    Kd = lam.shape[1]
    d_star = int(np.argmax(gmed) + 1) if d_star is None else int(d_star)
    h = float(dens.schedule.h(t))
    coord2 = np.einsum("mdk,md->mk", fr0.vectors, fr0.score) ** 2  # squared score coordinates, eigenbasis
    tail = np.cumsum(coord2[:, ::-1], axis=1)[:, ::-1]             # tail[:, d] = |P_perp s|^2 at ridge dim d
    sweep = {"d": np.arange(1, Kd), "on_ridge": np.empty(Kd - 1), "residual_norm_mean": np.empty(Kd - 1),
             "residual_scaled_mean": np.empty(Kd - 1)}
    for i, d in enumerate(range(1, Kd)):
        r = np.sqrt(tail[:, d])
        rn = r / r.max() if r.max() > 0 else np.zeros_like(r)
        sweep["on_ridge"][i] = np.mean(rn < ON_RIDGE_THRESHOLD)
        sweep["residual_norm_mean"][i] = rn.mean()
        sweep["residual_scaled_mean"][i] = np.sqrt(h) * r.mean()
    r, rn, fr = _residual_stats(dens, x, t, d_star)
    gap = fr.eigengap
    gap_means = {}
    for thr in GAP_THRESHOLDS:
        sel = gap > thr
        gap_means[thr] = (int(sel.sum()), float(rn[sel].mean()) if sel.any() else float("nan"),
                          float(r[sel].mean()) if sel.any() else float("nan"))
    return {"t": t, "eigenvalues": lam, "gap_median": gmed, "gap_q25": g25, "gap_q75": g75, "d_star": d_star,
            "sweep": sweep, "residual": r, "residual_norm": rn, "eigengap": gap, "gap_means": gap_means,
            "on_ridge_fraction": float(np.mean(rn < ON_RIDGE_THRESHOLD))}


def run_latent(config: LatentConfig = QUICK, rng=0, progress: bool = False) -> LatentResult:
    """Run the latent-digits experiment described in the module docstring.

    Parameters
    ----------
    config : LatentConfig, optional
        Defaults to a reduced configuration (the quick figure).
    rng : None, int, SeedSequence or numpy.random.Generator, default 0
    progress : bool, default False

    Returns
    -------
    LatentResult

    Raises
    ------
    ValueError
        If the configuration is invalid (unknown model or source, missing MNIST paths).
    """
    if config.model not in ("rf", "exact"):
        raise ValueError(f"model must be 'rf' or 'exact'; got {config.model!r}")
    gen = as_generator(rng)
    timings = {}
    t_start = time.perf_counter()
    images, pca, Z = load_latent_data(config)
    sched = OU()
    dens = EmpiricalDensity(Z, sched)
    Kd = Z.shape[1]
    if config.model == "rf":
        field_, info = train_rf(Z, config, gen, progress)
    else:
        field_, info = dens, {"model": "exact empirical score"}
    timings["train"] = time.perf_counter() - t_start
    t1 = time.perf_counter()
    grid = geometric_grid(config.T, config.t_min, config.n_steps + 1)
    x0 = np.sqrt(float(sched.h(config.T))) * gen.standard_normal((config.n_samples, Kd))
    traj = sample(field_, x0, grid, method=config.method, schedule=sched, rng=gen, record=config.n_record,
                  progress=progress)
    x = traj.final
    timings["sample"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    tm = config.t_min
    main = measure_at(dens, x, tm, config.d_star)
    extra = {float(te): measure_at(dens, x, float(te), config.d_star) for te in config.t_extra}
    d_star = main["d_star"]
    evo = {k: np.empty(len(traj.times)) for k in ("norm_q25", "norm_median", "norm_q75", "scaled_q25",
                                                  "scaled_median", "scaled_q75", "norm_mean")}
    for i, t in enumerate(tqdm(traj.times, disable=not progress, desc="residual over time", leave=False)):
        ri, rni, _ = _residual_stats(dens, traj.states[i], float(t), d_star)
        sc = np.sqrt(float(sched.h(float(t)))) * ri
        evo["norm_q25"][i], evo["norm_median"][i], evo["norm_q75"][i] = np.quantile(rni, [0.25, 0.5, 0.75])
        evo["scaled_q25"][i], evo["scaled_median"][i], evo["scaled_q75"][i] = np.quantile(sc, [0.25, 0.5, 0.75])
        evo["norm_mean"][i] = rni.mean()
    a_tm = float(sched.a(tm))
    memo = memorization(x, Z, gen, scale=a_tm)
    _, nn = nearest_distances(x, a_tm * Z)
    timings["measure"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t_start
    log.info("latent run: d* = %d, on-ridge %.3f, memorised %.3f (%.1f s)", d_star,
             float(np.mean(main["residual_norm"] < ON_RIDGE_THRESHOLD)), memo.fraction, timings["total"])
    return LatentResult(config=config, pca=pca, latent=Z, images=images, samples=x, times=traj.times,
                        states=traj.states, eigenvalues=main["eigenvalues"], gap_median=main["gap_median"],
                        gap_q25=main["gap_q25"], gap_q75=main["gap_q75"], d_star=d_star, sweep=main["sweep"],
                        residual=main["residual"], residual_norm=main["residual_norm"], eigengap=main["eigengap"],
                        evolution=evo, gap_means=main["gap_means"], memo=memo, nn_index=nn, extra=extra,
                        model_info=info, timings=timings)


def with_overrides(config: LatentConfig, **kw) -> LatentConfig:
    """A copy of ``config`` with fields replaced (validated by name)."""
    return replace(config, **kw)
