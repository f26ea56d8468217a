"""Per query, the truncated sum over the kept neighbours or the dense sum over all n points, whichever is cheaper
(:class:`rftheory.density.neighbours.TruncatedDensity`; issue 17).

The kept set of a query q = x / a_t is every training point within ``d_0^2 + 2 h_t L / a_t^2`` (squared) of it,
``L = log(n / rtol)``. Costs, in units of one point of the dense batched pass:

* dense: ``n``;
* truncated: ``OVERHEAD + PER_KEPT * kept`` (the per-query Python loop and its gathers), plus the search.

The search: in low dimension (``D <= TREE_MAX_D``) a k-d tree, preceded by an estimate of the kept count from a
fixed strided subsample of ``SUBSAMPLE`` points (its nearest distance is >= d_0, so the estimate errs towards
dense); above it one matrix product per block of queries (k-d trees are slower than brute force at D ~ 32),
which gives the exact count before any per-query work. Either choice is within the truncation's stated bounds
(dense is exact), so the choice changes only the time, and the result by at most those bounds.
"""
from __future__ import annotations

import numpy as np

from .._blas import blas_single

TREE_MAX_D = 8
SUBSAMPLE = 2048
# costs in units of one (query, point) of the dense batched pass (bench/bench_truncated.py, D = 32, loaded 2-core)
OVERHEAD = 1500.0  # per query, the truncated loop's fixed Python work
PER_KEPT = 12.0  # per kept point: gather and elementwise passes over (kept, D) arrays
SEARCH_BRUTE = 0.7  # per data point, the blocked product that finds the kept set when D > TREE_MAX_D
_BLOCK_BYTES = 64 * 2**20


def prefer_dense(kept, n: int, D: int) -> np.ndarray:
    """True where the dense pass is expected to be no slower than search plus truncated loop."""
    search = SEARCH_BRUTE * n if D > TREE_MAX_D else 0.0
    return search + OVERHEAD + PER_KEPT * np.asarray(kept, dtype=np.float64) >= n


def _half_gap(q, Y, yy_half):
    """``|y|^2/2 - q.y`` (m, k): the squared distance less |q|^2, halved (one product and one pass); and the
    per-query slack ``1e-12 (|q|^2 + max |y|^2)`` that covers its rounding (absolute error below ~1e-15 of that)."""
    with blas_single():  # inner dimension D: memory-bound, and BLAS threads only add waiting (rftheory._blas)
        e = q @ Y.T
    np.subtract(yy_half[None, :], e, out=e)
    slack = 1e-12 * (np.einsum("md,md->m", q, q) + 2.0 * yy_half.max()) + 1e-300
    return e, slack


def estimate_kept(data: np.ndarray, q: np.ndarray, r2: float) -> np.ndarray:
    """Kept count per query from a strided subsample (over-estimates the radius: its nearest point is >= d_0)."""
    n = data.shape[0]
    sub = data[np.linspace(0, n - 1, min(n, SUBSAMPLE)).astype(np.int64)]
    e, slack = _half_gap(q, sub, 0.5 * np.einsum("nd,nd->n", sub, sub))
    inside = e <= (e.min(axis=1) + 0.5 * r2 + slack)[:, None]
    return inside.sum(axis=1) * (n / sub.shape[0])


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
