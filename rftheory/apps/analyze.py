"""Where do a model's samples sit relative to the ridge of the training set's smoothed density?

:func:`analyze_samples` takes a training set X (n, D) and generated samples (m, D), builds the smoothed
empirical density ``p_t`` of X (OU schedule unless told otherwise; docs/theory.md §1) and measures, at time t and
ridge dimension d (docs/theory.md §2):

* the ridge residual ``r = |P_perp s*(x, t)|`` at every sample (1/length), its dimensionless form
  ``sqrt(h_t) r`` (the score of p_t has scale 1/sqrt(h_t): an exact draw from p_t off a flat ridge has
  ``sqrt(h_t) r ~ chi_{D-d}``) and the max-normalised form ``r / max r`` with the paper's on-ridge fraction
  (normalised residual < 0.2, [HQT] §6);
* the Hessian eigenvalues at every sample, the eigengap ``lambda_d - lambda_{d+1}`` and the gap spectrum
  (median over samples of ``lambda_k - lambda_{k+1}``, k = 1..D-1) that shows which d the data support;
* the memorisation fraction (``d_1/d_2 < 1/3`` against the scaled training points a_t x_i) with a
  percentile bootstrap interval (:func:`rftheory.dynamics.motion.memorization`);
* nearest-neighbour distances to the a_t x_i, beside the training set's own leave-one-out distances;
* the projection ``pi(x)`` onto the ridge (:func:`rftheory.geometry.ridge.project`) and the split of the offset
  ``x - pi(x)`` into its normal and tangential parts in the ridge frame at ``pi(x)`` (with the projection's
  status: near a mode at small t the eigengap vanishes and the frame there is undetermined, status 2).

Optionally both sets are first mapped by an exact PCA fitted on the training set (:class:`PCALatent`,
"global" standardisation): t and d then refer to the latent space.

:func:`main` is the ``rftheory analyze`` command: it loads .npy / .npz / .csv files (images are flattened),
validates them (bad input: a ``ValueError`` naming the file, exit code 2) and writes ``report.json``,
``summary.md``, ``per_sample.csv`` and ``analyze.png``/``.pdf`` atomically into ``--out``.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..geometry import ridge
from .._io import atomic_path
from .._checks import as_data, as_generator, check_ridge_dim
from .._results import short_repr
from ..dynamics.motion import Memorization, memorization
from ..density.empirical import EmpiricalDensity
from ..data.realdata import PCALatent
from ..density.schedules import get_schedule

log = logging.getLogger(__name__)

__all__ = ["Analysis", "analyze_samples", "load_table", "nearest_distances", "write_report", "main",
           "ON_RIDGE_THRESHOLD", "NEWTON_MAX_D"]

ON_RIDGE_THRESHOLD = 0.2  # [HQT]: "on ridge" when the max-normalised residual is below 0.2
NEWTON_MAX_D = 24  # Newton projection needs the (m, D, D, D) third cumulant: SCMS only above this D
_PROJ_CHUNK = 256  # samples per projection batch (one progress tick each)
_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


@dataclass
class Analysis:
    """Result of :func:`analyze_samples` (m samples, n training points, D dimensions after any PCA).

    Attributes
    ----------
    t, a, h : float
        Time, a_t, h_t.
    d, D, n, m : int
        Ridge dimension, dimension, training points, samples.
    residual : numpy.ndarray, shape (m,)
        ``|P_perp s*(x, t)|`` at each sample (1/length).
    residual_scaled : numpy.ndarray, shape (m,)
        ``sqrt(h_t) * residual`` (dimensionless).
    residual_normalized : numpy.ndarray, shape (m,)
        ``residual / max(residual)``.
    on_ridge : numpy.ndarray of bool, shape (m,)
        ``residual_normalized`` below ON_RIDGE_THRESHOLD.
    eigenvalues : numpy.ndarray, shape (m, D)
        Hessian eigenvalues of log p_t at each sample, descending (1/length^2).
    eigengap : numpy.ndarray, shape (m,)
        ``lambda_d - lambda_{d+1}`` at each sample (inf for d = 0).
    gap_spectrum : numpy.ndarray, shape (D - 1,)
        Median over samples of ``lambda_k - lambda_{k+1}``, k = 1..D-1.
    memo : Memorization
        The memorization metric (d_1/d_2 < 1/3; :class:`rftheory.dynamics.motion.Memorization`).
    nn_distance, nn_index : numpy.ndarray, shape (m,)
        Nearest scaled training point a_t x_i and its distance (length).
    train_nn_distance : numpy.ndarray, shape (n,)
        Leave-one-out nearest-neighbour distances among the a_t x_i (length).
    proj_distance : numpy.ndarray, shape (m,)
        ``|x - pi(x)|``.
    proj_status : numpy.ndarray of int, shape (m,)
        ``ridge.STATUS`` codes.
    normal_offset, tangent_offset : numpy.ndarray, shape (m,)
        ``|P_perp (x - pi(x))|``, ``|P_par (x - pi(x))|`` in the frame at pi(x).
    pca : PCALatent or None
        The latent map used.
    schedule : str
    """

    t: float
    a: float
    h: float
    d: int
    D: int
    n: int
    m: int
    residual: np.ndarray
    residual_scaled: np.ndarray
    residual_normalized: np.ndarray
    on_ridge: np.ndarray
    eigenvalues: np.ndarray
    eigengap: np.ndarray
    gap_spectrum: np.ndarray
    memo: Memorization
    nn_distance: np.ndarray
    nn_index: np.ndarray
    train_nn_distance: np.ndarray
    proj_distance: np.ndarray
    proj_status: np.ndarray
    normal_offset: np.ndarray
    tangent_offset: np.ndarray
    pca: PCALatent | None = None
    schedule: str = "ou"

    __repr__ = short_repr

    @property
    def on_ridge_fraction(self) -> float:
        return float(np.mean(self.on_ridge))

    def summary(self) -> dict:
        """JSON-ready summary: quantiles of every per-sample quantity and the headline fractions.

        Returns
        -------
        dict
        """
        conv = self.proj_status == 0
        out = {
            "t": self.t, "a_t": self.a, "h_t": self.h, "d": self.d, "D": self.D, "n_train": self.n,
            "n_samples": self.m, "schedule": self.schedule,
            "on_ridge_threshold": ON_RIDGE_THRESHOLD, "on_ridge_fraction": self.on_ridge_fraction,
            "residual": _stats(self.residual), "residual_scaled": _stats(self.residual_scaled),
            "residual_normalized": _stats(self.residual_normalized),
            "residual_normalized_hist": np.histogram(self.residual_normalized, bins=20, range=(0, 1))[0].tolist(),
            "eigengap": _stats(self.eigengap) if self.d > 0 else None,
            "gap_spectrum_median": self.gap_spectrum.tolist(),
            "memorization": {"fraction": self.memo.fraction, "ci_low": self.memo.ci_low,
                             "ci_high": self.memo.ci_high, "level": self.memo.level, "ratio_threshold": 1 / 3,
                             "d1_over_d2": _stats(self.memo.ratios)},
            "nn_distance": _stats(self.nn_distance), "train_nn_distance": _stats(self.train_nn_distance),
            "projection": {
                "status_counts": {ridge.STATUS[k]: int(np.sum(self.proj_status == k)) for k in ridge.STATUS},
                "distance": _stats(self.proj_distance), "normal_offset": _stats(self.normal_offset),
                "tangent_offset": _stats(self.tangent_offset),
                "tangent_share_converged": _stats(_share(self.tangent_offset[conv], self.proj_distance[conv])),
            },
        }
        if self.pca is not None:
            out["pca"] = self.pca.summary()
        return out


def _share(part, total):
    return np.where(total > 0, part / np.where(total > 0, total, 1.0), 0.0)


def _stats(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return {"count": 0, "nonfinite": int(v.size)}
    q = np.quantile(fin, _QUANTILES)
    return {"count": int(fin.size), "nonfinite": int(v.size - fin.size), "mean": float(fin.mean()),
            "std": float(fin.std()), **{f"q{int(round(100 * p)):02d}": float(x) for p, x in zip(_QUANTILES, q)}}


def nearest_distances(Y, X, exclude_self: bool = False, chunk: int = 1024):
    """Each row of Y's nearest row of X (chunked: memory ``chunk * n``).

    Parameters
    ----------
    Y : numpy.ndarray, shape (m, D)
    X : numpy.ndarray, shape (n, D)
    exclude_self : bool, default False
        Y is X: skip the diagonal (leave-one-out).
    chunk : int, default 1024
        Rows of Y per block.

    Returns
    -------
    distance : numpy.ndarray, shape (m,)
    index : numpy.ndarray of int, shape (m,)
    """
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    dist = np.empty(Y.shape[0])
    idx = np.empty(Y.shape[0], dtype=np.int64)
    for c0 in range(0, Y.shape[0], chunk):
        dd = np.linalg.norm(Y[c0:c0 + chunk, None, :] - X[None], axis=-1)
        if exclude_self:
            r = np.arange(dd.shape[0])
            dd[r, c0 + r] = np.inf
        idx[c0:c0 + chunk] = np.argmin(dd, axis=1)
        dist[c0:c0 + chunk] = dd[np.arange(dd.shape[0]), idx[c0:c0 + chunk]]
    return dist, idx


def analyze_samples(train, samples, t: float, d: int, schedule="ou", pca: int | None = None, rng=0,
                    newton="auto", tol: float = 1e-9, max_iter: int = 200, n_boot: int = 2000,
                    progress: bool = False) -> Analysis:
    """Measure a model's samples against the d-dimensional ridge of the training set's p_t (module docstring).

    Parameters
    ----------
    train : array_like, shape (n, D)
        Training set (n >= 2).
    samples : array_like, shape (m, D)
        The model's samples.
    t : float
        Time of the comparison (in latent units with ``pca``).
    d : int
        Ridge dimension, 0 <= d < D (after PCA).
    schedule : str or Schedule, default "ou"
    pca : int, optional
        Latent dimension K to map both sets to first (fitted on ``train``).
    rng : None, int, SeedSequence or numpy.random.Generator, default 0
        Memorization bootstrap.
    newton : {"auto", True, False}
        Newton steps in the projection ("auto": only when D <= NEWTON_MAX_D).
    tol : float, default 1e-9
        Projection tolerance.
    max_iter : int, default 200
        Projection iterations.
    n_boot : int, default 2000
        Bootstrap resamples.
    progress : bool, default False

    Returns
    -------
    Analysis

    Raises
    ------
    ValueError
        If train has fewer than two points, the dimensions disagree, d or t is invalid, or newton is unknown.
    """
    X = as_data(train, "train")
    S = as_data(samples, "samples")
    if X.shape[0] < 2:
        raise ValueError("train needs at least two points (d_1/d_2 and leave-one-out distances)")
    if S.shape[1] != X.shape[1]:
        raise ValueError(f"samples have D = {S.shape[1]} but train has D = {X.shape[1]}: they must match")
    sched = get_schedule(schedule)
    t = float(sched.check_t(t, "t"))
    latent = None
    if pca is not None:
        latent = PCALatent.fit(X, pca)
        X, S = latent.encode(X), latent.encode(S)
    D = X.shape[1]
    d = check_ridge_dim(d, D, "d")
    if newton not in ("auto", True, False):
        raise ValueError(f"newton must be 'auto', True or False; got {newton!r}")
    use_newton = D <= NEWTON_MAX_D if newton == "auto" else bool(newton)
    gen = as_generator(rng)
    dens = EmpiricalDensity(X, sched)
    a, h = (float(v) for v in sched.a_h(t))
    res = ridge.residual(dens, S, t, d)
    lam = res.frame.eigenvalues
    r = res.residual
    rmax = float(r.max())
    rn = r / rmax if rmax > 0 else np.zeros_like(r)
    gaps = lam[:, :-1] - lam[:, 1:]
    memo = memorization(S, X, gen, scale=a, n_boot=n_boot)
    nn, nn_i = nearest_distances(S, a * X)
    tnn, _ = nearest_distances(a * X, a * X, exclude_self=True)
    log.info("projecting %d samples onto the d = %d ridge (newton=%s)", S.shape[0], d, use_newton)
    pts = np.empty_like(S)
    status = np.empty(S.shape[0], dtype=np.int64)
    for c0 in tqdm(range(0, S.shape[0], _PROJ_CHUNK), disable=not progress, desc="projecting", leave=False):
        sl = slice(c0, c0 + _PROJ_CHUNK)
        pr = ridge.project(dens, S[sl], t, d, tol=tol, max_iter=max_iter, newton=use_newton)
        pts[sl], status[sl] = pr.points, pr.status
    off = S - pts
    on = ridge.frame(dens, pts, t, d).project_normal(off)
    return Analysis(t=t, a=a, h=h, d=d, D=D, n=X.shape[0], m=S.shape[0], residual=r,
                    residual_scaled=np.sqrt(h) * r, residual_normalized=rn, on_ridge=rn < ON_RIDGE_THRESHOLD,
                    eigenvalues=lam, eigengap=res.frame.eigengap, gap_spectrum=np.median(gaps, axis=0),
                    memo=memo, nn_distance=nn, nn_index=nn_i, train_nn_distance=tnn,
                    proj_distance=np.linalg.norm(off, axis=1), proj_status=status,
                    normal_offset=np.linalg.norm(on, axis=1), tangent_offset=np.linalg.norm(off - on, axis=1),
                    pca=latent, schedule=sched.name)


# ----------------------------------------------------------------------------- input files
def load_table(path, name: str = "input") -> np.ndarray:
    """Rows of a .npy, .npz or .csv file as a float64 (n, D) array.

    A .npz holds one array or one named like ``name``; images (n, h, w[, c]) are flattened.

    Parameters
    ----------
    path : path
    name : str, default "input"
        What the rows are (used in messages and to pick an .npz member).

    Returns
    -------
    numpy.ndarray, shape (n, D)

    Raises
    ------
    FileNotFoundError
        For a missing path.
    ValueError
        Naming ``name`` and the path: unreadable format, empty file, non-numeric data, NaN/inf rows.
    """
    p = Path(path)
    what = f"{name} ({p})"
    if not p.is_file():
        raise FileNotFoundError(f"{what}: no such file")
    if p.stat().st_size == 0:
        raise ValueError(f"{what}: file is empty")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key = keys[0] if len(keys) == 1 else (name if name in keys else None)
                if key is None:
                    raise ValueError(f"holds arrays {keys}; keep one, or name it {name!r}")
                arr = z[key]
        elif suffix == ".csv":
            arr = _load_csv(p)
        else:
            raise ValueError(f"unreadable format {suffix or '(no suffix)'!r}: expected .npy, .npz or .csv")
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"{what}: cannot read the file ({exc})") from exc
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: data must be numeric; got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what}: holds no data (shape {arr.shape})")
    if arr.ndim == 0:
        raise ValueError(f"{what}: holds a single number, not rows of points")
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 1 else arr[:, None]
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
    if bad.size:
        raise ValueError(f"{what}: {bad.size} row(s) contain NaN or inf (first: {bad[:5].tolist()})")
    return arr


def _load_csv(p):
    text = p.read_text()
    if not text.strip():
        raise ValueError("file is empty")
    try:
        return np.loadtxt(p, delimiter=",", ndmin=2)
    except ValueError:
        try:  # one header line
            return np.loadtxt(p, delimiter=",", ndmin=2, skiprows=1)
        except ValueError as exc:
            raise ValueError(f"not a numeric CSV table ({exc})") from exc


# ----------------------------------------------------------------------------- report
def _atomic(path: Path, write):
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _markdown(s: dict, inputs: dict) -> str:
    m = s["memorization"]
    rows = [("training points", s["n_train"]), ("samples", s["n_samples"]), ("dimension D", s["D"]),
            ("ridge dimension d", s["d"]), ("t (a_t, h_t)", f"{s['t']:g} ({s['a_t']:.4g}, {s['h_t']:.4g})"),
            ("on-ridge fraction (normalised residual < 0.2)", f"{s['on_ridge_fraction']:.3f}"),
            ("normalised residual mean / median", f"{s['residual_normalized']['mean']:.3f} / "
                                                  f"{s['residual_normalized']['q50']:.3f}"),
            ("sqrt(h_t) residual median [q05, q95]", f"{s['residual_scaled']['q50']:.3g} "
                                                     f"[{s['residual_scaled']['q05']:.3g}, "
                                                     f"{s['residual_scaled']['q95']:.3g}]"),
            ("memorised fraction (d1/d2 < 1/3)", f"{m['fraction']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] "
                                                 f"({100 * m['level']:.0f}% bootstrap)"),
            ("NN distance median (samples / train leave-one-out)",
             f"{s['nn_distance']['q50']:.4g} / {s['train_nn_distance']['q50']:.4g}"),
            ("projection status", ", ".join(f"{k}: {v}" for k, v in s["projection"]["status_counts"].items())),
            ("offset from ridge: normal / tangent median", f"{s['projection']['normal_offset']['q50']:.4g} / "
                                                           f"{s['projection']['tangent_offset']['q50']:.4g}")]
    if s["eigengap"]:
        rows.append(("eigengap at samples median", f"{s['eigengap']['q50']:.4g}"))
    if "pca" in s:
        rows.append(("PCA", f"K = {s['pca']['K']}, retained variance {s['pca']['retained_variance']:.3f}"))
    lines = ["# rftheory analyze", "", *(f"- {k}: `{v}`" for k, v in inputs.items()), "",
             "| quantity | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    return "\n".join(lines)


def _plot(res: Analysis, out: Path) -> list:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 3).ravel()
    ax[0].hist(res.residual_normalized, bins=40, range=(0, 1), color="#1f77b4")
    ax[0].axvline(ON_RIDGE_THRESHOLD, color="k", ls="--", lw=0.8)
    ax[0].set(title=f"normalised residual (on ridge {res.on_ridge_fraction:.2f})", xlabel="r / max r")
    ax[1].hist(res.residual_scaled, bins=40, color="#1f77b4")
    ax[1].set(title="raw residual, noise units", xlabel=r"$\sqrt{h_t}\,|P_\perp s^*|$")
    hi = float(max(res.nn_distance.max(), res.train_nn_distance.max()))
    ax[2].hist(res.nn_distance, bins=40, range=(0, hi), alpha=0.6, density=True, label="samples")
    ax[2].hist(res.train_nn_distance, bins=40, range=(0, hi), alpha=0.6, density=True, label="train (LOO)")
    ax[2].set(title="nearest-neighbour distance", xlabel=r"distance to nearest $a_t x_i$")
    ax[2].legend(fontsize=8)
    ax[3].hist(res.memo.ratios, bins=40, range=(0, 1), color="#d62728")
    ax[3].axvline(1 / 3, color="k", ls="--", lw=0.8)
    ax[3].set(title=f"d1/d2 (memorised {res.memo.fraction:.2f})", xlabel="d1/d2")
    conv = res.proj_status == 0
    ax[4].scatter(res.normal_offset[conv], res.tangent_offset[conv], s=4, label="converged")
    ax[4].scatter(res.normal_offset[~conv], res.tangent_offset[~conv], s=4, c="0.6", label="other status")
    ax[4].set(title="offset from projection", xlabel="normal part", ylabel="tangent part")
    ax[4].legend(fontsize=8)
    k = np.arange(1, res.D)
    ax[5].semilogy(k, np.maximum(res.gap_spectrum, 1e-300), "o-", ms=3)
    if res.d > 0:
        ax[5].axvline(res.d, color="k", ls="--", lw=0.8)
    ax[5].set(title="median eigengap spectrum", xlabel=r"k: $\lambda_k - \lambda_{k+1}$")
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        paths.append(_atomic(out / f"analyze.{ext}", lambda tmp, e=ext: fig.savefig(tmp, format=e, dpi=110)))
    return paths


def write_report(res: Analysis, out_dir, inputs: dict | None = None) -> list:
    """Write report.json, summary.md, per_sample.csv and analyze.png/.pdf atomically.

    Parameters
    ----------
    res : Analysis
    out_dir : path
        Created if missing.
    inputs : dict, optional
        Description of the inputs, stored in report.json.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = dict(inputs or {})
    s = res.summary()
    s["inputs"] = inputs

    def _text(content):
        return lambda tmp: Path(tmp).write_text(content)

    paths = [_atomic(out / "report.json", _text(json.dumps(s, indent=2, allow_nan=False, default=_json_num))),
             _atomic(out / "summary.md", _text(_markdown(s, inputs)))]
    cols = np.column_stack([res.residual, res.residual_scaled, res.residual_normalized, res.eigengap,
                            res.memo.ratios, res.nn_distance, res.nn_index, res.proj_distance, res.proj_status,
                            res.normal_offset, res.tangent_offset])
    header = ("residual,residual_scaled,residual_normalized,eigengap,d1_over_d2,nn_distance,nn_index,"
              "proj_distance,proj_status,normal_offset,tangent_offset")
    paths.append(_atomic(out / "per_sample.csv",
                         lambda tmp: np.savetxt(tmp, cols, delimiter=",", header=header, comments="", fmt="%.10g")))
    paths += _plot(res, out)
    return paths


def _json_num(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(args) -> int:
    """``rftheory analyze``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        0, or 2 with a message on stderr for bad input.
    """
    try:
        train = load_table(args.train, "train")
        samples = load_table(args.samples, "samples")
        if samples.shape[1] != train.shape[1]:
            raise ValueError(f"samples ({args.samples}) have D = {samples.shape[1]} per row but train "
                             f"({args.train}) has D = {train.shape[1]}")
        res = analyze_samples(train, samples, args.t, args.d, schedule=getattr(args, "schedule", "ou"),
                              pca=args.pca, rng=args.seed, progress=not getattr(args, "no_progress", False))
        paths = write_report(res, args.out, inputs={"train": str(args.train), "samples": str(args.samples),
                                                    "t": args.t, "d": args.d, "pca": args.pca,
                                                    "seed": args.seed})
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"rftheory analyze: error: {err}", file=sys.stderr)
        return 2
    m = res.memo
    print(f"on-ridge fraction {res.on_ridge_fraction:.3f}; normalised residual median "
          f"{np.median(res.residual_normalized):.3f}; memorised {m.fraction:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
