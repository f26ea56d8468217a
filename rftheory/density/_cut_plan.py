"""Per query, the truncated sum over the kept neighbours or the dense sum over all n points, whichever is cheaper
(:class:`rftheory.density.neighbours.TruncatedDensity`; issue 17).

The kept set of a query q = x / a_t is every training point within ``d_0^2 + 2 h_t L / a_t^2`` (squared) of it,
``L = log(n / rtol)``. Costs, in units of one point of the dense batched pass:

* dense: ``n``;
* truncated: ``OVERHEAD + PER_KEPT * kept`` (the per-query Python loop and its gathers), plus the search.

So the dense pass is no slower from the kept count :func:`kept_threshold` on. The search: in low dimension
(``D <= TREE_MAX_D``) a k-d tree; above it one matrix product per block of queries (k-d trees are slower than
brute force at D ~ 32), which gives the exact count before any per-query work. That product costs
``SEARCH_BRUTE n`` per searching query plus ``SEARCH_FIXED n`` once (a pass over all the data, however few
queries search: one or two searching queries cost more than their dense share), so above TREE_MAX_D the queries
chosen for truncation are truncated only if together they save more than that fixed part
(:func:`group_saving`); otherwise the whole batch goes dense.

The route is chosen before any search, from the kept count counted on fixed strided subsamples of the data, in
stages of growing size (``STAGES``, :func:`route_dense`): 128 points, then 512, then ``SUBSAMPLE``. A stage sends to
the dense pass every query that is clearly dense there: its count is at least ``PILOT_MIN``, scales to the stage's
margin times the threshold or more, and the subsample's nearest point lies within the cut width (squared distance
``<= r2 = 2 h_t L / a_t^2``), so that the counted ball (radius^2 ``d_sub^2 + r2 <= 2 r2``) is at most sqrt(2) times
the kept one (``d_0^2 + r2 >= r2``) in radius, and for data of intrinsic dimension 2 its count at most twice the
kept one, hence the margin 2 at 512 points (4 at 128, where the counts are noisier). Where the subsample's nearest point is farther -- sparse data, or
high intrinsic dimension, where a small subsample's count can over-estimate the kept one a hundredfold -- only the
later stages decide. The others go on to the next stage, and the last stage's estimate decides. A subsample's
nearest point is no nearer than the data's (>= d_0), so its radius is the larger and every count errs towards
dense -- and an error towards dense costs at most the dense time, never more. A batch that is clearly dense thus
pays one product with 128 points (``128 / n`` of the dense pass's product; 0.13 % at n = 1e5) before the dense
pass, which is then the very call ``EmpiricalDensity.moments`` makes. Either route is within the truncation's
stated bounds (dense is exact), so the choice changes only the time, and the result by at most those bounds.
"""
from __future__ import annotations

import numpy as np

from .._blas import blas_single

TREE_MAX_D = 8
SUBSAMPLE = 2048
# (subsample size, margin): a query whose count in a stage's subsample is at least PILOT_MIN and scales to at least
# margin x the threshold, with the subsample's nearest point within the cut width, is clearly dense; the last stage
# (margin None) decides the rest
STAGES = ((128, 4.0), (512, 2.0), (SUBSAMPLE, None))
PILOT_MIN = 8  # a count, not a noisy 1 or 2
# costs in units of one (query, point) of the dense batched pass (bench/bench_truncated.py, D = 32, loaded 2-core).
# That unit is the dense pass at its fastest (~13 ns, near-plane data at t >= 3e-3); at other geometries and times
# the dense pass costs 20-33 ns per (query, point) (measured, process time, n = 2e4), and the search below was
# measured at 0.12-0.3 units, so the model errs towards dense: a truncation it picks does pay
OVERHEAD = 1500.0  # per query, the truncated loop's fixed Python work
PER_KEPT = 12.0  # per kept point: gather and elementwise passes over (kept, D) arrays
SEARCH_BRUTE = 0.7  # per data point and query, the blocked product that finds the kept set when D > TREE_MAX_D ...
SEARCH_FIXED = 2.5  # ... plus this per data point once per batch: a pass over all the data however few queries search
                    # (measured, process time, n = 2e4 and 1e5, D = 32: 1.4-2.2 dense queries for 1-2 searching queries,
                    # 3.5-4.8 for 4, 4.3-6.5 for 8, 0.5-0.66 per query for 32-120; the model's 2.5 + 0.7 r errs high)
_BLOCK_BYTES = 64 * 2**20


def kept_threshold(n: int, D: int) -> float:
    """The kept count from which the dense pass is expected to be no slower than search plus truncated loop."""
    search = SEARCH_BRUTE * n if D > TREE_MAX_D else 0.0
    return (n - search - OVERHEAD) / PER_KEPT


def group_saving(kept, n: int) -> float:
    """What truncating queries of estimated kept counts ``kept`` saves against the dense pass, in dense units, before
    the search's fixed part (``SEARCH_FIXED n``, paid once per batch when D > TREE_MAX_D)."""
    kept = np.asarray(kept, dtype=np.float64)
    return float(np.sum(n * (1.0 - SEARCH_BRUTE) - OVERHEAD - PER_KEPT * kept))


def prefer_dense(kept, n: int, D: int) -> np.ndarray:
    """True where the dense pass is expected to be no slower than search plus truncated loop."""
    return np.asarray(kept, dtype=np.float64) >= kept_threshold(n, D)


def _half_gap(q, Y, yy_half, qq=None, yy_max=None):
    """``|y|^2/2 - q.y`` (m, k): the squared distance less |q|^2, halved (one product and one pass); and the
    per-query slack ``1e-12 (|q|^2 + max |y|^2)`` that covers its rounding (absolute error below ~1e-15 of that).
    ``qq`` (|q|^2 per query) and ``yy_max`` (max |y|^2 / 2) may be passed when known."""
    with blas_single():  # inner dimension D: memory-bound, and BLAS threads only add waiting (rftheory._blas)
        e = q @ Y.T
    np.subtract(yy_half[None, :], e, out=e)
    qq = np.einsum("md,md->m", q, q) if qq is None else qq
    slack = 1e-12 * (qq + 2.0 * (yy_half.max() if yy_max is None else yy_max)) + 1e-300
    return e, slack


def subsample(data: np.ndarray, size: int) -> tuple:
    """The fixed strided subsample of ``min(n, size)`` points, their halved squared norms and the largest of them."""
    n = data.shape[0]
    sub = data[np.linspace(0, n - 1, min(n, size)).astype(np.int64)]
    yy_half = 0.5 * np.einsum("nd,nd->n", sub, sub)
    return sub, yy_half, float(yy_half.max())


def _count(q, sub, r2, qq=None):
    """Per query, the subsample points inside the cut radius measured from the subsample's own nearest point;
    with ``qq`` (|q|^2 per query) also that nearest point's squared distance (from the same product, floored at 0)."""
    e, slack = _half_gap(q, sub[0], sub[1], qq, sub[2])
    emin = e.min(axis=1)
    c = np.count_nonzero(e <= (emin + 0.5 * r2 + slack)[:, None], axis=1)
    if qq is None:
        return c
    return c, np.maximum(2.0 * emin + qq, 0.0)


def estimate_kept(data: np.ndarray, q: np.ndarray, r2: float, sub=None) -> np.ndarray:
    """Kept count per query from a strided subsample of ``SUBSAMPLE`` points (``sub``: that subsample as
    :func:`subsample` gives it, or None); over-estimates the radius, since its nearest point is >= d_0."""
    sub = subsample(data, SUBSAMPLE) if sub is None else sub
    return _count(q, sub, r2) * (data.shape[0] / sub[0].shape[0])


def route_dense(data: np.ndarray, q: np.ndarray, r2: float, subs=None) -> np.ndarray:
    """True for the queries to send to the dense pass (module docstring): each stage of ``STAGES`` sends its
    clear cases dense, the last one's estimate decides the rest. ``subs``: a dict that caches the subsamples
    between calls (or None)."""
    n, D = data.shape
    m = q.shape[0]
    thr = kept_threshold(n, D)
    if thr <= n / min(n, SUBSAMPLE):  # every estimate (>= one subsample point, scaled) reaches it
        return np.ones(m, dtype=bool)
    subs = {} if subs is None else subs
    dense = np.zeros(m, dtype=bool)
    rest = np.arange(m)
    qq = np.einsum("md,md->m", q, q)
    for size, margin in STAGES:
        if size not in subs:
            subs[size] = subsample(data, size)
        sub = subs[size]
        qr, qqr = (q, qq) if rest.size == m else (q[rest], qq[rest])
        if margin is None:  # the last stage: the single estimate decides (as estimate_kept + prefer_dense) ...
            est = estimate_kept(data, qr, r2, sub)
            dense[rest] = prefer_dense(est, n, D)
            # ... and, where the search is a pass over all the data, only if the truncated queries together save
            # more than that pass's fixed part; else the whole batch is dense (the very dense call)
            if D > TREE_MAX_D and group_saving(est[~dense[rest]], n) <= SEARCH_FIXED * n:
                dense[:] = True
            break
        c, d2 = _count(qr, sub, r2, qqr)
        # clear: a real count, scaled to margin x the threshold, and a nearest subsample point within the cut
        # width (then the counted ball is at most sqrt(2) x the kept one in radius; see the module docstring)
        clear = (c >= PILOT_MIN) & (c * (n / sub[0].shape[0]) >= margin * thr) & (d2 <= r2)
        dense[rest[clear]] = True
        rest = rest[~clear]
        if not rest.size:
            break
    return dense


def brute_cut(data: np.ndarray, sq_half: np.ndarray, q: np.ndarray, r2: float) -> list:
    """Kept index arrays by blocked products: every point with ``|q - y|^2 <= d_0^2 + r2`` (plus rounding slack)."""
    m, n = q.shape[0], data.shape[0]
    step = max(1, _BLOCK_BYTES // (16 * n))
    nbrs: list = []
    for s0 in range(0, m, step):
        e, slack = _half_gap(q[s0:s0 + step], data, sq_half)
        keep = e <= (e.min(axis=1) + 0.5 * r2 + slack)[:, None]
        nbrs.extend(np.flatnonzero(row) for row in keep)
    return nbrs
