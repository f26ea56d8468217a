"""Assembly of the quadratic loss of a random-feature score model: U (p x p), V (D x p) (docs/theory.md §4).

    U = int_{t0}^{T} lambda(t) (1/n) sum_i E_z[sigma sigma^T] dt
    V = int_{t0}^{T} lambda(t) (1/n) sum_i E_z[y_i sigma^T] dt

with pre-activations ``u_j = a_t w_j.x_i + c_j(t) + sqrt(h_t) w_j.z`` (``c(t) = W_t phi(t) + b``): given (i, t)
they are jointly Gaussian with means ``mu_j``, standard deviations ``sqrt(h_t)|w_j|`` and correlations
``w_j.w_k/(|w_j||w_k|)`` -- the correlations do not depend on (i, t), which is what the hoisted ReLU kernel
exploits. The regression target y is ``a_t x_i`` (posterior-mean parametrization) or ``-z/sqrt(h_t)``
(direct score); for the latter Stein's lemma gives ``E[-z/sqrt(h) sigma(u_j)] = -w_j E[sigma'(u_j)]``.

Time quadrature (``time_rule``; :class:`TimeRule` also offers composite Simpson on a uniform grid,
[HQT]'s recipe, see docs/conventions.md): composite Gauss-Legendre, ``n_gl`` nodes per panel; panels geometric
(ratio 2) from t0 up to min(1, T) -- lambda = 1/h^2 changes by orders of magnitude there -- then uniform
panels; no panel is wider than ``(T_emb / K) / panels_per_period`` (the embedding's shortest period over
``panels_per_period``; geometric panels wider than that are split). Its convergence is reported by repeating the assembly on a subset of units with
twice the nodes per panel (:class:`QuadratureReport`).

On-disk cache (:func:`cache_key`, :func:`load_moments`, :func:`save_moments`): one ``.npz`` per assembly,
named by a SHA-256 of everything the result depends on -- the model's weights, the data, the schedule, the
time rule and weight, the parametrization, the report settings and :data:`FORMAT` (raise it whenever the
assembly's numbers change). A paper-size assembly takes minutes; the cache is what lets a figure run
resume after an interruption or be re-rendered with other sampling settings. Nothing in it is trusted: each
file stores a SHA-256 of its contents (:func:`rftheory._io.array_digest`), and on load the key, the checksum,
the shapes (U (p, p), V (D, p)), finiteness and the exact symmetry of U are checked; an entry failing any of
them is discarded with a warning naming the file and recomputed. Temporary files of a killed writer
(``.moments-....npz.XXXX.npz``) are removed on the next cached call (:func:`clean_cache_dir`). The cache lives in
:mod:`rftheory.rf._moment_cache` and the result types in :mod:`rftheory.rf._moment_types`; both are re-exported.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from . import _exact
# re-exported: the result types and constants, and the on-disk cache
from ._moment_cache import cache_key, cache_path, clean_cache_dir, load_moments, save_moments
from ._moment_types import FORMAT, PARAMETRIZATIONS, WEIGHTS, Moments, QuadratureReport
from .embedding import fourier_embedding

__all__ = ["weight_fn", "time_rule", "simpson_rule", "TimeRule", "TIME_RULES", "assemble", "Moments", "QuadratureReport",
           "WEIGHTS", "PARAMETRIZATIONS", "FORMAT", "cache_key", "cache_path", "clean_cache_dir", "load_moments",
           "save_moments"]

log = logging.getLogger(__name__)



def weight_fn(weight: str):
    """The loss's time weight lambda as a function of h_t.

    Parameters
    ----------
    weight : {"1", "1/h", "1/h2"}
        lambda = 1, 1/h_t or 1/h_t^2.

    Returns
    -------
    callable
        ``h -> lambda`` (vectorised).

    Raises
    ------
    ValueError
        For any other weight.
    """
    if weight == "1":
        return lambda h: np.ones_like(h)
    if weight == "1/h":
        return lambda h: 1.0 / h
    if weight == "1/h2":
        return lambda h: 1.0 / (h * h)
    raise ValueError(f"weight must be one of {WEIGHTS}; got {weight!r}")


def time_rule(t0: float, T: float, K: int, T_emb: float, n_gl: int = 8, panels_per_period: float = 2.0,
              cap_panels: bool = True):
    """Nodes and weights (ascending) of the composite Gauss-Legendre rule on [t0, T] (module docstring).

    Parameters
    ----------
    t0, T : float
        The interval, 0 < t0 < T < inf.
    K : int
        Fourier frequencies of the embedding (the panels resolve its oscillation).
    T_emb : float
        Embedding period.
    n_gl : int, default 8
        Gauss-Legendre nodes per panel.
    panels_per_period : float, default 2.0
        Panels per period of the fastest Fourier mode: the width of the uniform panels beyond t = 1, and
        (``cap_panels``) the largest width of the geometric ones.
    cap_panels : bool, default True
        Split geometric panels wider than that width. False is the rule before issue 17 (its last geometric
        panels, [0.5, 1] at T/K = 0.31, were wider than a period and dominated the error: 7e-6 relative in U
        at the papers' size with 12 nodes, 3e-7 with the split, for 1.5 % more nodes).

    Returns
    -------
    nodes, weights : numpy.ndarray, shape (N,)
        Ascending nodes and their weights.

    Raises
    ------
    ValueError
        If the interval or the counts are invalid.
    """
    if not (0 < t0 < T < np.inf):
        raise ValueError(f"need 0 < t0 < T < inf (got t0={t0}, T={T})")
    if int(n_gl) != n_gl or n_gl < 1:
        raise ValueError(f"n_gl must be a positive integer; got {n_gl!r}")
    if not panels_per_period > 0:
        raise ValueError("panels_per_period must be > 0")
    tg = min(1.0, T)
    edges = [t0]
    while edges[-1] * 2 < tg:
        edges.append(edges[-1] * 2)
    edges.append(tg)
    width = (T_emb / max(int(K), 1)) / panels_per_period
    if T > tg:
        npan = int(np.ceil((T - tg) / width))
        edges.extend(list(np.linspace(tg, T, npan + 1)[1:]))
    edges = np.unique(np.asarray(edges, dtype=np.float64))
    if cap_panels:               # geometric panels wider than the oscillation's panel width are split evenly
        out = [edges[:1]]
        for lo, hi in zip(edges[:-1], edges[1:]):
            k = int(np.ceil((hi - lo) / width * (1 - 1e-12)))
            out.append(np.linspace(lo, hi, max(k, 1) + 1)[1:])
        edges = np.concatenate(out)
    x0, w0 = np.polynomial.legendre.leggauss(int(n_gl))
    a, b = edges[:-1], edges[1:]
    nodes = ((a + b)[:, None] + (b - a)[:, None] * x0[None, :]) / 2
    wts = ((b - a) / 2)[:, None] * w0[None, :]
    return nodes.ravel(), wts.ravel()


TIME_RULES = ("gauss-legendre", "simpson")


def simpson_rule(t0: float, T: float, n_intervals: int):
    """Nodes and weights of the composite Simpson rule on ``n_intervals`` uniform intervals of [t0, T].

    [HQT]'s recipe (4000 intervals). Its error is large where lambda varies on a scale below the spacing
    (lambda = 1/h^2 near a small t0): docs/conventions.md.

    Parameters
    ----------
    t0, T : float
        0 < t0 < T < inf.
    n_intervals : int
        Even, >= 2.

    Returns
    -------
    nodes, weights : numpy.ndarray, shape (n_intervals + 1,)

    Raises
    ------
    ValueError
        If the interval or n_intervals is invalid.
    """
    if not (0 < t0 < T < np.inf):
        raise ValueError(f"need 0 < t0 < T < inf (got t0={t0}, T={T})")
    if isinstance(n_intervals, bool) or int(n_intervals) != n_intervals or n_intervals < 2 or n_intervals % 2:
        raise ValueError(f"n_intervals must be an even integer >= 2; got {n_intervals!r}")
    n = int(n_intervals)
    nodes = np.linspace(t0, T, n + 1)
    w = np.full(n + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return nodes, w * (T - t0) / (3 * n)


class TimeRule:
    """A time rule and its refinement: ``rule(1)`` the nodes and weights, ``rule(2)`` the refined rule.

    Refinement doubles the Gauss-Legendre nodes per panel, or the Simpson intervals; ``description`` is for
    reports.

    Parameters
    ----------
    kind : {"gauss-legendre", "simpson"}
        One of ``TIME_RULES``.
    t0, T : float
        The interval.
    K : int
        Fourier frequencies of the embedding.
    T_emb : float
        Embedding period.
    n_gl : int
        Gauss-Legendre nodes per panel.
    panels_per_period : float
    n_intervals : int
        Simpson intervals.

    Raises
    ------
    ValueError
        For an unknown kind.
    """

    def __init__(self, kind, t0, T, K, T_emb, n_gl, panels_per_period, n_intervals):
        if kind not in TIME_RULES:
            raise ValueError(f"time_rule must be one of {TIME_RULES}; got {kind!r}")
        self.args = (kind, t0, T, K, T_emb, n_gl, panels_per_period, n_intervals)
        if kind == "simpson":
            self.description = f"composite Simpson, {int(n_intervals)} uniform intervals on [t0, T]"
        else:
            self.description = (f"composite Gauss-Legendre, {n_gl} nodes/panel, geometric panels on [t0, 1], "
                                f"panel width <= (T/K)/{panels_per_period} everywhere")

    def __call__(self, refine: int = 1):
        kind, t0, T, K, T_emb, n_gl, ppp, n_int = self.args
        if kind == "simpson":
            return simpson_rule(t0, T, refine * n_int)
        return time_rule(t0, T, K, T_emb, refine * n_gl, ppp)


def _threads() -> int:
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:                       # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def _pair_index(p):
    return np.triu_indices(p, k=1)


def assemble(model, data, schedule, t0, T, weight, method, parametrization, nodes, wts,
             units=None, mc_draws=None, rng=None, progress=False, batch=32, threads=None, scheduler=None,
             block_steps=_exact.BLOCK_STEPS):
    """U, V, c0 of a model on the given time rule (restricted to ``units``; R1, docs/theory.md §4).

    ``weight`` is one of WEIGHTS, or a tuple of them: then every array gains a leading axis, one entry per
    weight, from one pass (the Gaussian moments do not depend on the weight and are computed once; every sum over
    the steps is taken per weight, so a weight's bits do not depend on the weights beside it, rf/_exact.py). The
    exact ReLU path sums each block's pairs by the Mehler series (rf/_mehler.py: one GEMM per order and run of
    tiles, plus a short quadrature for pairs with |rho| above the cutoff: 0.8 and compiled where numba runs,
    rf/_mehler_kernels.py, else 0.9 and numpy in batches of ``batch`` steps), on ``threads`` threads (default: the
    CPUs available to the process, at most 8).

    Parameters
    ----------
    model : RandomFeatureModel
    data : numpy.ndarray, shape (n, D)
        Validated training set.
    schedule : Schedule
    t0, T : float
        Time interval.
    weight : str or tuple of str
        Time weight(s), see :func:`weight_fn`.
    method : {"exact", "mc"}
        Closed-form moments or Monte Carlo in z.
    parametrization : {"posterior_mean", "score"}
    nodes, wts : numpy.ndarray, shape (N,)
        The time rule (:func:`time_rule`).
    units : array_like of int, optional
        Restrict to these features (default all p).
    mc_draws : int, optional
        Noise draws per (point, node) for ``method="mc"``.
    rng : None, int, SeedSequence or Generator, optional
        Draws of ``method="mc"``.
    progress : bool, default False
    batch : int, default 32
    threads : int, optional
        Threads of the pair kernel (default: the CPUs available, at most 8; on dask workers 1).
    scheduler : None, str or distributed.Client, optional
        Run the exact assembly's blocks as dask tasks: ``"local"`` (a LocalCluster of worker processes), a
        scheduler address or a Client (rf/_distributed.py). U, V, c0 are bit-identical to ``None`` (serial).
    block_steps : int, default 256
        (point, time node) steps per block of the exact assembly (rf/_exact.py); fixed by the problem, never
        by the worker count, so that the block partials -- added in block order -- give the same bits anywhere.

    Returns
    -------
    U : numpy.ndarray, shape (p', p') or (w, p', p')
    V : numpy.ndarray, shape (D, p') or (w, D, p')
    c0 : float or numpy.ndarray, shape (w,)
        p' = len(units); the leading axis w when ``weight`` is a tuple.
    """
    multi = not isinstance(weight, str)
    weights = tuple(weight) if multi else (weight,)
    nw = len(weights)
    act = model.act
    Wx, Wt, b = model.W_x, model.W_t, model.b
    if units is not None:
        Wx, Wt, b = Wx[units], Wt[units], b[units]
    p, D = Wx.shape
    n = data.shape[0]
    a_all, h_all = schedule.a_h(nodes)
    wq = wts[:, None] * np.stack([weight_fn(w)(h_all) for w in weights], axis=1)     # (Q, nw)
    norms = np.sqrt(np.einsum("jd,jd->j", Wx, Wx))
    if np.any(norms == 0):
        raise ValueError("a row of W_x is zero: its pre-activation has zero variance")
    proj = data @ Wx.T                         # (n, p): w_j . x_i
    U_diag = np.zeros((nw, p))
    jj, kk = _pair_index(p)
    U_off = np.zeros((nw, jj.size))
    V = np.zeros((nw, D, p))
    c0 = np.zeros(nw)
    if method == "exact":
        spec = _exact.ExactSpec(act, Wx, Wt, b, model.K, model.T, getattr(model, "embedding", "concat"), data,
                                nodes, a_all, h_all, wq, parametrization, batch, block_steps)
        if scheduler is None:
            nthreads = _threads() if threads is None else int(threads)
            blocks = spec.blocks()
            if progress:
                from tqdm.auto import tqdm
                blocks = tqdm(blocks, desc="U, V", leave=False)
            ctx = _exact._Context(spec)                        # built once, dropped with this call
            parts = (_exact.block(spec, lo, hi, nthreads, ctx) for lo, hi in blocks)
        else:
            from . import _distributed
            parts = _distributed.run_blocks(spec, scheduler, 1 if threads is None else int(threads), progress)
        U_diag, U_off, V, c0 = _exact.add_partials(parts, (U_diag.shape, U_off.shape, V.shape, c0.shape))
    else:
        C = fourier_embedding(nodes, model.K, model.T, getattr(model, "embedding", "concat")) @ Wt.T + b[None, :]
        it = range(nodes.size)
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(it, desc="U, V", leave=False)
        for q in it:
            a, h, w = a_all[q], h_all[q], wq[q] / n              # w (nw,)
            sh = np.sqrt(h)
            for i in range(n):
                mu = a * proj[i] + C[q]
                y = a * data[i]
                if parametrization == "posterior_mean":
                    c0 += w * float(y @ y) / D
                else:
                    c0 += w / h
                Z = rng.standard_normal((mc_draws, D))
                S = act(mu[None, :] + sh * (Z @ Wx.T))          # (m, p)
                G = (S.T @ S) / mc_draws
                U_diag += w[:, None] * np.diag(G)[None, :]
                U_off += w[:, None] * G[jj, kk][None, :]
                if parametrization == "posterior_mean":
                    V += w[:, None, None] * np.outer(y, S.mean(0))[None]
                else:
                    V += w[:, None, None] * (-(Z.T @ S) / (mc_draws * sh))[None]
    U = np.zeros((nw, p, p))
    U[:, jj, kk] = U_off
    U = U + U.transpose(0, 2, 1)
    U[:, np.arange(p), np.arange(p)] = U_diag
    if multi:
        return U, V, c0
    return U[0], V[0], float(c0[0])
