"""Where do a model's samples sit relative to the ridge of the training set's smoothed density?

:func:`analyze_samples` takes a training set X (n, D) and generated samples (m, D), builds the smoothed
empirical density ``p_t`` of X (OU schedule unless told otherwise; docs/theory.md §1) and measures, at time t and
ridge dimension d (docs/theory.md §2; ``d="auto"`` chooses it by :func:`rftheory.geometry.dimension.ridge_dimension`):

* **headline: the tube fraction** (:func:`rftheory.geometry.tube.tube_fraction`): the share of samples whose
  distance to their projection ``pi(x)`` on the ridge is within the ``level`` quantile of ``sqrt(h_t) chi_{D-d}``.
  Exact draws of p_t near a regular ridge score ``level``; it is a count, so one sample moves it by at most
  1/m. Only samples whose projection converged to a regular ridge point are counted; the others are counted
  and reported apart by status: ``escaped`` (farther from the ball holding every a_t x_i than an exact draw of
  p_t gets with probability 1e-6: ``sqrt(h_t) chi_D^{-1}(1 - 1e-6)``; not projected), ``max_iter``,
  ``not_regular`` (eigengap at round-off: the frame is undetermined), ``diverged``;
* secondary, for comparison with [HQT] §6 only: the ridge residual ``r = |P_perp s*(x, t)|``, its
  dimensionless form ``sqrt(h_t) r`` and the paper's max-normalised ``r / max r`` with its on-ridge fraction
  (``< 0.2``): one far sample moves that one arbitrarily;
* the Hessian eigenvalues at every sample, the eigengap and the median gap spectrum;
* memorization (``d_1/d_2 < 1/3`` with the distances to the nearest two *distinct* a_t x_i,
  :func:`rftheory.dynamics.motion.memorization`) with its bootstrap interval, and nearest-neighbour distances
  beside the training set's own leave-one-out distances (on a random subset of at most ``n_train_nn`` points);
* the split of the offset ``x - pi(x)`` into normal and tangential parts in the ridge frame at ``pi(x)``.

Scale: every step streams over the training set. Nearest neighbours are exact, by a k-d tree (D <= 10) or
blocked brute force (:func:`rftheory.dynamics.motion.nearest_distinct`). The density is evaluated per chunk of
``_CHUNK`` samples over a pool of training points checked to carry all but ``TRUNC_RTOL`` of the posterior
weight at the samples and at their projections (:mod:`rftheory.apps.analyze_pools`; the bound is the one
:class:`rftheory.density.neighbours.TruncatedDensity` states), falling back to the dense, chunked
EmpiricalDensity where no small pool is enough (large t). Memory beyond inputs and outputs: O(chunk K D +
block), with one de-duplicated copy of the training set.

Optionally both sets are first mapped by an exact PCA fitted on the training set (:class:`PCALatent`,
"global" standardisation): t and d then refer to the latent space. Files and the command line:
:mod:`rftheory.apps.analyze_report`. The result, :class:`Analysis`, and its summary: :mod:`rftheory.apps._analysis`.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy.stats import chi
from tqdm.auto import tqdm

from .._checks import as_data, as_generator, check_ridge_dim
from ..data.realdata import PCALatent
from ..density.schedules import get_schedule
from ..dynamics.motion import DistinctNeighbours, memorization, nearest_distinct
from ..geometry import ridge
from ..geometry.dimension import ridge_dimension, spectrum_counts
from .analyze_pools import Pools, combine_dimension
from ._analysis import ON_RIDGE_THRESHOLD, STATUS, Analysis  # re-exported: the result and its summary
from ..geometry.tube import DEFAULT_LEVEL, tube_fraction

log = logging.getLogger(__name__)

__all__ = ["Analysis", "analyze_samples", "trajectory_phases", "nearest_distances", "STATUS", "ON_RIDGE_THRESHOLD", "NEWTON_MAX_D",
           "ESCAPE_PROB"]

NEWTON_MAX_D = 24  # Newton projection needs the (m, D, D, D) third cumulant: SCMS only above this D
ESCAPE_PROB = 1e-6  # an exact draw of p_t is "escaped" with at most this probability
TRUNC_RTOL = 1e-12  # weight the pooled density may drop (relative)
POOL_K0 = 64  # first number of neighbours per sample in a pool (grown x4 while not enough)
_CHUNK = 256  # samples per batch (one progress tick each)


def nearest_distances(Y, X, exclude_self: bool = False):
    """Distance and index of each row of Y's nearest distinct row of X (duplicates of X count once).

    Exact (:func:`rftheory.dynamics.motion.nearest_distinct`), streaming over X.

    Parameters
    ----------
    Y : array_like, shape (m, D)
        Query points.
    X : array_like, shape (n, D)
        Data points.
    exclude_self : bool, default False
        The rows of Y are rows of X: skip each one's own point (leave-one-out).

    Returns
    -------
    distance : numpy.ndarray, shape (m,)
        Euclidean distance to the nearest distinct row of X (same units as X).
    index : numpy.ndarray of int, shape (m,)
        Row of X of that point (the first occurrence of a duplicated row).

    Raises
    ------
    ValueError
        If the shapes do not match or X has too few distinct rows.
    """
    dist, idx = nearest_distinct(Y, X, k=1, self_query=exclude_self)
    return dist[:, 0], idx[:, 0]


def analyze_samples(train, samples, t: float, d, schedule="ou", pca: int | None = None, rng=0,
                    newton="auto", tol: float = 1e-9, max_iter: int = 200, n_boot: int = 2000,
                    level: float = DEFAULT_LEVEL, n_train_nn: int = 10000, model=None,
                    progress: bool = False) -> Analysis:
    """Measure a model's samples against the d-dimensional ridge of the training set's p_t (module docstring).

    Parameters
    ----------
    train : array_like, shape (n, D)
        Training set X.
    samples : array_like, shape (m, D)
        Generated samples.
    t : float
        Time at which p_t is smoothed (valid for ``schedule``).
    d : int or "auto"
        Ridge dimension (0 <= d < D), or "auto": chosen from the Hessian spectrum at the non-escaped samples.
    schedule : str, default "ou"
        Noise schedule name (:func:`rftheory.density.schedules.get_schedule`).
    pca : int or None, default None
        Latent dimension K to map both sets to first (exact PCA fitted on ``train``), or None.
    rng : None, int, SeedSequence or Generator, default 0
        Randomness of the memorization bootstrap and of the leave-one-out subset.
    newton : bool or "auto", default "auto"
        Newton steps in the projection; "auto": for d = 0 (no third cumulant needed), and for d > 0 only when
        D <= NEWTON_MAX_D.
    tol : float, default 1e-9
        Convergence tolerance of the ridge projection.
    max_iter : int, default 200
        Iteration cap of the ridge projection.
    n_boot : int, default 2000
        Bootstrap resamples of the memorized fraction.
    level : float, default DEFAULT_LEVEL
        Nominal level of the tube (the share exact draws of p_t would score).
    n_train_nn : int, default 10000
        At most this many distinct training points get leave-one-out nearest-neighbour distances.
    model : score field or None, default None
        An object with ``score(x, t)`` (e.g. :class:`rftheory.fields.ScoreField`) whose error against the
        exact score of p_t is split into its normal and tangent parts in the ridge frame at each sample.
    progress : bool, default False
        Show progress bars.

    Returns
    -------
    Analysis
        Per-sample measurements and the tube fraction, memorization and dimension choice.

    Raises
    ------
    TypeError
        If ``model`` has no ``score`` method.
    ValueError
        If ``model`` is combined with ``pca``, the inputs' D differ, ``t``, ``d`` or ``newton`` is invalid,
        every sample escaped (``d="auto"``), ``train`` has fewer than two distinct points, or no sample's
        projection converged to a regular ridge point.
    """
    if model is not None and not hasattr(model, "score"):
        raise TypeError("model must be a score field with score(x, t) (wrap a callable in "
                        "rftheory.fields.ScoreField)")
    if model is not None and pca is not None:
        raise ValueError("a model's score lives in the data space: it cannot be combined with pca")
    X = as_data(train, "train")
    S = as_data(samples, "samples")
    if S.shape[1] != X.shape[1]:
        raise ValueError(f"samples have D = {S.shape[1]} but train has D = {X.shape[1]}: they must match")
    sched = get_schedule(schedule)
    t = float(sched.check_t(t, "t"))
    if newton not in ("auto", True, False):
        raise ValueError(f"newton must be 'auto', True or False; got {newton!r}")
    gen = as_generator(rng)
    warnings = []
    latent = None
    if pca is not None:
        latent = PCALatent.fit(X, pca)
        X, S = latent.encode(X), latent.encode(S)
        kept = float(latent.summary()["retained_variance"])
        if kept < 0.5:
            warnings.append(f"--pca {pca} keeps only {kept:.1%} of the training set's variance")
    n, D = X.shape
    if d != "auto":
        d = check_ridge_dim(d, D, "d")
    a, h = (float(v) for v in sched.a_h(t))
    m = S.shape[0]

    # escaped: farther from the ball holding every a_t x_i than an exact draw of p_t gets w.p. ESCAPE_PROB
    c = X.mean(axis=0)
    rad = a * float(np.sqrt(max(float(np.max(np.einsum("nd,nd->n", X[i:i + 65536] - c, X[i:i + 65536] - c)))
                                for i in range(0, n, 65536))))  # by blocks: no (n, D) temporary
    r_esc = float(np.sqrt(h) * chi.ppf(1.0 - ESCAPE_PROB, D))
    escaped = np.linalg.norm(S - a * c, axis=1) - rad > r_esc

    pools = Pools(X, sched, t, rtol=TRUNC_RTOL, k0=POOL_K0)
    chunks = [np.arange(c0, min(m, c0 + _CHUNK)) for c0 in range(0, m, _CHUNK)]
    built = {}
    dim = None
    if d == "auto":
        if not np.any(~escaped):
            raise ValueError("every sample escaped: the ridge dimension cannot be chosen from them")
        choices = []
        for ci, idx in enumerate(tqdm(chunks, disable=not progress, desc="choosing d", leave=False)):
            built[ci] = pools.build(S[idx])
            keep = idx[~escaped[idx]]
            if keep.size:
                choices.append(ridge_dimension(built[ci][0], S[keep], t))
        dim = combine_dimension(choices, D, t)
        d = dim.d
        if dim.share < 0.5:
            warnings.append(f"d = {d} chosen but only {dim.share:.1%} of the samples see that dimension")

    # nearest distinct training points (memorization, NN distances): queries S / a against X, scaled back
    nbrs = DistinctNeighbours(X)
    if nbrs.n_distinct < 2:
        raise ValueError("train needs at least two distinct points (d_1/d_2 and leave-one-out distances)")
    two, nn_idx = nbrs.query(S / a, k=2)
    two *= a
    memo = memorization(S, None, gen, n_boot=n_boot, distances=two)
    k_loo = min(nbrs.n_distinct, int(n_train_nn))
    sub = gen.choice(nbrs.n_distinct, size=k_loo, replace=False) if k_loo < nbrs.n_distinct else \
        np.arange(k_loo)
    tnn = a * nbrs.query(nbrs.rows[sub], k=1, self_query=True)[0][:, 0]
    del nbrs

    lam = np.empty((m, D))
    r = np.empty(m)
    eig_gap = np.empty(m)
    pts = S.copy()
    status = np.full(m, 4, dtype=np.int64)
    normal = np.full(m, np.nan)
    tangent = np.full(m, np.nan)
    err = np.full((m, 3), np.nan) if model is not None else None  # |e_perp|, |e_par|, |s*| at the samples
    # d = 0 (modes): the Newton step -H^-1 s needs no third cumulant; bench_analyze --t 0.1 at D = 32 took 4.5x
    # less CPU than SCMS (same modes to 1e-9). d > 0: the (chunk, D, D, D) third cumulant, only up to NEWTON_MAX_D
    use_newton = (d == 0 or D <= NEWTON_MAX_D) if newton == "auto" else bool(newton)
    log.info("projecting %d samples onto the d = %d ridge (newton=%s)", m, d, use_newton)
    for ci, idx in enumerate(tqdm(chunks, disable=not progress, desc="projecting", leave=False)):
        todo, k = idx, None
        while todo.size:
            dens, pool, reach, K = built.pop(ci) if (ci in built and k is None) else pools.build(S[todo], k)
            res = ridge.residual(dens, S[todo], t, d)
            lam[todo], r[todo], eig_gap[todo] = res.frame.eigenvalues, res.residual, res.frame.eigengap
            if model is not None:
                e = np.asarray(model.score(S[todo], t), dtype=np.float64) - res.frame.score
                en = res.frame.project_normal(e)
                err[todo] = np.column_stack([np.linalg.norm(en, axis=1), np.linalg.norm(e - en, axis=1),
                                             np.linalg.norm(res.frame.score, axis=1)])
            go = ~escaped[todo]
            ok = np.ones(todo.size, bool)
            if np.any(go):
                g = todo[go]
                pr = ridge.project(dens, S[g], t, d, tol=tol, max_iter=max_iter, newton=use_newton)
                pts[g], status[g] = pr.points, pr.status
                fin = np.all(np.isfinite(pr.points), axis=1)
                ok[go] = pools.covered(pool, np.where(fin[:, None], pr.points, S[g]), S[g], reach[go])
                gf = g[fin]
                off = S[gf] - pr.points[fin]
                on = ridge.frame(dens, pr.points[fin], t, d).project_normal(off)
                normal[gf] = np.linalg.norm(on, axis=1)
                tangent[gf] = np.linalg.norm(off - on, axis=1)
            pools.count(K, int(ok.sum()))
            todo, k = todo[~ok], 4 * K  # projections that left the pool's reach: again, with a larger pool
    dist = np.where(escaped, np.nan, np.linalg.norm(S - pts, axis=1))
    conv = status == 0
    if not np.any(conv):
        raise ValueError(f"no sample's projection onto the d = {d} ridge converged to a regular point "
                         f"(status counts {np.bincount(status, minlength=5).tolist()}): the tube fraction is "
                         f"undefined; try another d or t")
    if np.mean(status == 2) > 0.5:
        warnings.append(f"the ridge is not regular (eigengap at round-off) at {np.mean(status == 2):.1%} of "
                        f"the samples: d = {d} is not supported there")
    if dim is None:  # d given: does the Hessian spectrum at the samples agree (the tube's chi_{D-d} assumes it)?
        fin = ~escaped & np.all(np.isfinite(lam), axis=1)
        if np.any(fin):
            _, _, capped = spectrum_counts(1.0 + h * lam[fin])
            if capped[d] < 0.5 * fin.sum():
                d_star = int(np.argmax(capped))
                warnings.append(f"d = {d} given, but only {capped[d] / fin.sum():.1%} of the samples' Hessian "
                                f"spectra show d ({capped[d_star] / fin.sum():.1%} show {d_star}; criterion "
                                f"1 + h_t lambda_k > 1/2, as --d auto): the tube's chi_(D-d) calibration "
                                f"assumes the given d")
    tube = tube_fraction(dist, h, D, d, level=level, counted=conv)
    rmax = float(r.max())
    rn = r / rmax if rmax > 0 else np.zeros_like(r)
    gaps = lam[:, :-1] - lam[:, 1:]
    return Analysis(t=t, a=a, h=h, d=d, D=D, n=n, m=m, tube=tube, status=status, proj_points=pts,
                    proj_distance=dist, normal_offset=normal, tangent_offset=tangent, residual=r,
                    residual_scaled=np.sqrt(h) * r, residual_normalized=rn, on_ridge=rn < ON_RIDGE_THRESHOLD,
                    eigenvalues=lam, eigengap=eig_gap, gap_spectrum=np.median(gaps, axis=0) if D > 1 else
                    np.zeros(0), memo=memo, nn_distance=two[:, 0], nn_index=nn_idx[:, 0], train_nn_distance=tnn,
                    samples=S, pca=latent, schedule=sched.name, dimension=dim, density=pools.describe(),
                    warnings=warnings, escape_radius=r_esc, model_error=err)


# trajectories live in analyze_traj (pooled per recorded time; re-exported here)
from .analyze_traj import trajectory_phases  # noqa: E402


# the files and the command line live in analyze_report (re-exported here for ``rftheory.apps.analyze.main``)
from .analyze_report import load_table, main, write_report  # noqa: E402,F401
