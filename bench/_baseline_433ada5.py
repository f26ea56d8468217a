"""The implementation of ``analyze_samples`` at commit 433ada5 (before issue 14), kept verbatim in its
computational steps as the baseline of bench_analyze: (1024, n, D) distance blocks for nearest neighbours and
memorization, the dense density over all n for every projection step. Not part of the library."""
from __future__ import annotations

import numpy as np

from rftheory._checks import as_data, as_generator, check_ridge_dim
from rftheory.density.empirical import EmpiricalDensity
from rftheory.density.schedules import get_schedule
from rftheory.geometry import ridge

NEWTON_MAX_D = 24
_PROJ_CHUNK = 256


def memorization(samples, data, rng, ratio: float = 1.0 / 3.0, n_boot: int = 2000, level: float = 0.95,
                 scale: float = 1.0) :
    """Memorization metric: a sample is memorized when its nearest training point (scaled by ``scale``,
    e.g. a_t) is < ratio times as far as the second nearest. Needs at least two training points."""
    X = as_data(data, "data") * scale
    S = as_data(samples, "samples")
    if X.shape[0] < 2:
        raise ValueError("data needs at least two points for d_1/d_2")
    if S.shape[1] != X.shape[1]:
        raise ValueError(f"samples have D = {S.shape[1]} but data have D = {X.shape[1]}")
    if not 0 < level < 1:
        raise ValueError("level must lie in (0, 1)")
    g = as_generator(rng)
    r = np.empty(S.shape[0])
    for c0 in range(0, S.shape[0], 1024):
        dd = np.linalg.norm(S[c0:c0 + 1024, None, :] - X[None], axis=-1)
        two = np.partition(dd, 1, axis=1)[:, :2]
        with np.errstate(divide="ignore", invalid="ignore"):
            r[c0:c0 + 1024] = np.where(two[:, 1] > 0, two[:, 0] / two[:, 1], 0.0)
    mem = (r < ratio).astype(np.float64)
    boots = mem[g.integers(0, mem.size, size=(n_boot, mem.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(mem.mean()), float(lo), float(hi), r


def nearest_distances(Y, X, exclude_self: bool = False, chunk: int = 1024):
    """``(distance (m,), index (m,))`` of each row of Y to its nearest row of X; ``exclude_self`` (Y is X)
    skips the diagonal (leave-one-out). Chunked: memory ``chunk * n``."""
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
                    progress: bool = False):
    """Measure samples (m, D) against the d-dimensional ridge of the training set's p_t: see the module doc.

    ``pca``: latent dimension K to map both sets to first (fitted on ``train``), or None.
    ``newton``: Newton steps in the projection (True/False, or "auto": only when D <= NEWTON_MAX_D).
    ``rng``: Generator or seed for the memorisation bootstrap.
    """
    X = as_data(train, "train")
    S = as_data(samples, "samples")
    if X.shape[0] < 2:
        raise ValueError("train needs at least two points (d_1/d_2 and leave-one-out distances)")
    if S.shape[1] != X.shape[1]:
        raise ValueError(f"samples have D = {S.shape[1]} but train has D = {X.shape[1]}: they must match")
    sched = get_schedule(schedule)
    t = float(sched.check_t(t, "t"))
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
    pts = np.empty_like(S)
    status = np.empty(S.shape[0], dtype=np.int64)
    for c0 in range(0, S.shape[0], _PROJ_CHUNK):
        sl = slice(c0, c0 + _PROJ_CHUNK)
        pr = ridge.project(dens, S[sl], t, d, tol=tol, max_iter=max_iter, newton=use_newton)
        pts[sl], status[sl] = pr.points, pr.status
    off = S - pts
    on = ridge.frame(dens, pts, t, d).project_normal(off)
    return {"status": status, "proj_distance": np.linalg.norm(off, axis=1), "on_ridge": rn < 0.2, "memo": memo,
            "nn": nn, "tnn": tnn, "normal": np.linalg.norm(on, axis=1), "lam": lam}
