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

The route is chosen before any search, from counts on a fixed strided subsample of the data, in stages of
growing size (``STRIDES``, :func:`route_dense`): 128 points, then 512, then ``SUBSAMPLE``, each stage's points
holding the one before's (so a stage's product covers its new points only). Each stage counts, per query, the
subsample points in two balls: the outer ball ``|q - y|^2 <= d_sub^2 + r2`` (``d_sub`` the subsample's nearest
point, never nearer than the data's d_0, so the ball holds the kept one) and the inner ball ``|q - y|^2 <= r2``
(inside the kept one, since d_0^2 >= 0). Scaled by n / s they bound the kept count k from above and from below,
each up to the count's noise: for a count c the Poisson mean has the Jeffreys posterior Gamma(c + 1/2, 1). Sending
dense a query with k < thr forgoes ``PER_KEPT (thr - k)`` dense units; truncating one with k > thr costs
``PER_KEPT (k - thr)`` more than dense. A stage sends a query dense where the expected loss of that, from below
(:func:`shortfall` of the inner count), is no more than what the next stage's counts would cost it (``COUNT``
units per subsample point); else truncates it where the expected loss of truncating, from above (:func:`excess`
of the outer count), is no more than that; the others go on. The last stage's outer count, scaled, decides the rest
(an estimate that errs towards dense: an error towards dense costs at most the dense time). So a query far from
the threshold is decided after 128 or 512 points, and only one whose choice matters and is unclear pays the
2048-point stage. At small n the last stage pays for itself only for queries far below the threshold (its counts
cost 1152 dense units a query: at n = 2e4 more than truncating a query at 0.8 x the threshold saves), and the rule
stops earlier by itself, towards dense. Above TREE_MAX_D a stage also sends the whole batch dense where all that
truncation could still be expected to save (the undecided queries' shortfalls and the truncated ones' estimated
savings) does not reach the search's fixed part. Measured at n = 1e5, D = 32, 120 queries
(bench/bench_truncated.py): a batch that is all dense pays 0.2-0.6 % of the dense pass before the dense pass (the
very call ``EmpiricalDensity.moments`` makes), and 1.2-1.3 % where its kept counts lie within ~30 % above the
threshold (near-plane data at t = 3e-4: there the 512-point counts cannot tell, and 2048 points' product is
~0.6 % alone); at n = 2e4, 60 queries, 0.9-1.7 %, and 5 % in that near-threshold case.
Either route is within the truncation's stated bounds (dense is exact), so the choice changes only the time, and
the result by at most those bounds.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammainc

from .._blas import blas_single

TREE_MAX_D = 8
SUBSAMPLE = 2048
STRIDES = (16, 4, 1)  # stage k counts every STRIDES[k]-th point of the SUBSAMPLE-point subsample (nested stages)
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
COUNT = 0.75  # per new subsample point and query, one stage's counts (product, minimum, comparisons; measured 4.9 ns
              # per (query, new point) with every overhead at m = 120, D = 32, n = 1e5, against the dense pass's
              # 8 ns, i.e. 0.6 units; 0.75 errs high: the stages decide a little earlier)
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


def nested_subsample(data: np.ndarray) -> tuple:
    """The fixed strided subsample of ``S = min(n, SUBSAMPLE)`` points ``floor(j n / S)``, j < S, ordered so that each
    stage's subsample (every ``STRIDES[k]``-th of them: itself strided) is a prefix: ``(points, their halved squared
    norms, the largest of those, the stages' sizes, the points augmented by their halved squared norms (S, D + 1))``
    -- with a query augmented as ``(-q, 1)`` one product gives the half-gap ``|y|^2/2 - q.y`` (:func:`_gaps`)."""
    n = data.shape[0]
    S = min(n, SUBSAMPLE)
    j = np.arange(S)
    order = np.concatenate([j[(j % k == 0) & ((j % prev != 0) if prev else True)]
                            for prev, k in zip((None,) + STRIDES[:-1], STRIDES)])
    sizes = tuple(int(np.count_nonzero(j % k == 0)) for k in STRIDES)
    sub = data[(order * (n / S)).astype(np.int64)]
    yy_half = 0.5 * np.einsum("nd,nd->n", sub, sub)
    return sub, yy_half, float(yy_half.max()), sizes, np.concatenate([sub, yy_half[:, None]], axis=1)


def _gaps(qa, Ya):
    """Half-gaps ``|y|^2/2 - q.y`` (m, k) of augmented queries ``(-q, 1)`` to augmented points ``(y, |y|^2/2)``: one
    product (its rounding, below ~(D + 1) eps (|q| |y| + |y|^2/2), is inside :func:`_half_gap`'s slack)."""
    with blas_single():
        return qa @ Ya.T


def _count_le(g, cut):
    """Per row, the entries of ``g`` (m, k), k < 2^16, at most ``cut`` (m, 1): a byte sum (numpy's count_nonzero
    with an axis converts to int first, ~4x slower)."""
    return np.less_equal(g, cut).view(np.uint8).sum(axis=1, dtype=np.uint16).astype(np.int64)


def _count(q, sub, r2, qq=None):
    """Per query, the subsample points inside the cut radius measured from the subsample's own nearest point
    (``|q - y|^2 <= d_sub^2 + r2``: a ball no smaller than the kept one, since d_sub >= d_0). Blocked over the
    queries (``_BLOCK_BYTES``): memory stays bounded whatever m."""
    m, s = q.shape[0], sub[0].shape[0]
    qq = np.einsum("md,md->m", q, q) if qq is None else qq
    c = np.empty(m, dtype=np.int64)
    step = max(1, _BLOCK_BYTES // (16 * s))
    for s0 in range(0, m, step):
        sl = slice(s0, s0 + step)
        e, slack = _half_gap(q[sl], sub[0], sub[1], qq[sl], sub[2])
        c[sl] = np.count_nonzero(e <= (e.min(axis=1) + 0.5 * r2 + slack)[:, None], axis=1)
    return c


def estimate_kept(data: np.ndarray, q: np.ndarray, r2: float, sub=None) -> np.ndarray:
    """Kept count per query from the whole strided subsample (``sub``: :func:`nested_subsample`'s, or None), in
    the outer ball: over-estimates the radius, since the subsample's nearest point is >= d_0."""
    sub = nested_subsample(data) if sub is None else sub
    return _count(q, sub, r2) * (data.shape[0] / sub[0].shape[0])


def shortfall(c, lam):
    """``E[(lam - L)_+]`` for ``L ~ Gamma(c + 1/2, 1)``, the Jeffreys posterior of a Poisson mean given the count
    c: ``lam P(c + 1/2, lam) - (c + 1/2) P(c + 3/2, lam)`` (P the regularised lower incomplete gamma function)."""
    a = np.asarray(c, dtype=np.float64) + 0.5
    return np.maximum(lam * gammainc(a, lam) - a * gammainc(a + 1.0, lam), 0.0)


def excess(c, lam):
    """``E[(L - lam)_+] = E[L] - lam + E[(lam - L)_+]`` for the same posterior as :func:`shortfall`."""
    return np.maximum(np.asarray(c, dtype=np.float64) + 0.5 - lam + shortfall(c, lam), 0.0)


def route_dense(data: np.ndarray, q: np.ndarray, r2: float, subs=None) -> np.ndarray:
    """True for the queries to send to the dense pass (module docstring): at each stage but the last, a query goes
    dense where the expected loss of that is no more than the next stage's counts would cost it, else truncated
    where the expected loss of truncating is no more than that; the last stage's estimate decides the rest.
    ``subs``: a dict that caches the subsample between calls (or None). Blocked over the queries: memory stays
    bounded whatever m."""
    n, D = data.shape
    m = q.shape[0]
    thr = kept_threshold(n, D)
    if thr <= n / min(n, SUBSAMPLE):  # every estimate (>= one subsample point, scaled) reaches it
        return np.ones(m, dtype=bool)
    subs = {} if subs is None else subs
    if "nested" not in subs:
        subs["nested"] = nested_subsample(data)
    sub = subs["nested"]
    dense = np.zeros(m, dtype=bool)
    est = np.zeros(m)  # the truncated queries' kept estimates, for the group's saving
    qq = np.einsum("md,md->m", q, q)
    step = max(1, _BLOCK_BYTES // (8 * sub[0].shape[0]))
    group = D > TREE_MAX_D and m <= step  # the search's fixed part can be weighed inside the (one) block
    for s0 in range(0, m, step):
        sl = slice(s0, s0 + step)
        dense[sl], est[sl] = _route_block(q[sl], qq[sl], r2, sub, n, thr, group)
    # where the search is a pass over all the data, the truncated queries go truncated only if together they save
    # more than that pass's fixed part; else the whole batch is dense (the very dense call)
    if D > TREE_MAX_D and not dense.all() and group_saving(est[~dense], n) <= SEARCH_FIXED * n:
        dense[:] = True
    return dense


def _rows(keep, *arrays) -> list:
    """Each array's rows where ``keep``."""
    return [a[keep] for a in arrays]


def _route_block(q, qq, r2, sub, n, thr, group=False):
    """:func:`route_dense` on one block of queries: (dense mask, kept estimates of the truncated ones). The stages'
    subsamples are nested, so each stage computes the half-gaps to its new points only, for the undecided queries,
    and keeps them (one array per stage) for the next stage's outer count. With ``group`` (the block is the whole
    batch, and the search has a fixed part) a stage also sends the whole block dense where all that truncation
    could still be expected to save -- the undecided queries' shortfalls and the truncated ones' estimated
    savings -- is no more than that fixed part (``SEARCH_FIXED n``)."""
    _, _, yy_max, sizes, Ya = sub
    m = q.shape[0]
    dense = np.zeros(m, dtype=bool)
    trunc = np.zeros(m, dtype=bool)
    est = np.zeros(m)
    rest = np.arange(m)
    qa = np.concatenate([-q, np.ones((m, 1))], axis=1)
    slack = 1e-12 * (qq + 2.0 * yy_max) + 1e-300  # covers the half-gaps' rounding, as _half_gap's
    gaps = []  # per stage, the undecided queries' half-gaps to that stage's new points (rows: rest)
    emin = np.full(m, np.inf)
    c_in = np.zeros(m, dtype=np.int64)
    lo = 0
    for k, s in enumerate(sizes):
        e = _gaps(qa, Ya[lo:s])
        gaps.append(e)
        emin = np.minimum(emin, e.min(axis=1))
        last = k == len(sizes) - 1
        if not last:
            # inner ball (inside the kept one): |q - y|^2 = 2 e + |q|^2 <= r2
            c_in += _count_le(e, (0.5 * (r2 - qq) + slack)[:, None])
            # expected loss of each choice, in dense units: sending dense a query that keeps k < thr forgoes
            # PER_KEPT (thr - k) (k from below: the inner count); truncating one that keeps k > thr costs
            # PER_KEPT (k - thr) more than dense (k from above: the outer count). Dense first: it is never slower.
            lam, unit = thr * s / n, PER_KEPT * n / s
            refine = COUNT * (sizes[k + 1] - s)
            lose = unit * shortfall(c_in, lam)  # each undecided query's expected saving, were it truncated
            go_dense = lose <= refine
            if group and np.sum(lose[~go_dense]) + group_saving(est[trunc], n) <= SEARCH_FIXED * n:
                dense[:] = True  # truncating what is left cannot be expected to pay the search's fixed part
                break
            dense[rest[go_dense]] = True
            if go_dense.all():
                break
            if go_dense.any():  # only the others go on
                rest, emin, c_in, qa, qq, slack, *gaps = _rows(~go_dense, rest, emin, c_in, qa, qq, slack, *gaps)
        # outer ball (holds the kept one): |q - y|^2 <= d_sub^2 + r2, i.e. e <= e_min + r2 / 2
        cut = (emin + 0.5 * r2 + slack)[:, None]
        c = sum(_count_le(g, cut) for g in gaps)
        if last:  # the last stage: its estimate decides (as estimate_kept + prefer_dense)
            est[rest] = c * (n / s)
            dense[rest] = est[rest] >= thr
            break
        # (by Jensen, excess >= E[L] - lam: the incomplete gamma functions only where truncation is possible)
        go_trunc = c + 0.5 <= lam + refine / unit
        go_trunc[go_trunc] = unit * excess(c[go_trunc], lam) <= refine
        est[rest[go_trunc]] = c[go_trunc] * (n / s)
        trunc[rest[go_trunc]] = True
        if go_trunc.all():
            break
        if go_trunc.any():
            rest, emin, c_in, qa, qq, slack, *gaps = _rows(~go_trunc, rest, emin, c_in, qa, qq, slack, *gaps)
        lo = s
    return dense, est


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
