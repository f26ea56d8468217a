"""ReLU pair sums of U by the Mehler (Hermite) expansion: GEMMs for most pairs, a short quadrature for the rest.

For x, y standard normal with correlation rho and ``f_a(x) = (a + x)+``, Mehler's formula gives

    G(a, b; rho) = E[f_a(x) f_b(y)] = sum_k rho^k d_k(a) d_k(b),   d_k = E[f_a He_k] / sqrt(k!),

with ``d_0 = g(a) = a Phi(a) + phi(a)``, ``d_1 = Phi(a)`` and, for k >= 2 (Gaussian integration by parts,
f'' = delta), ``d_k = (-1)^k phi(a) He_{k-2}(a) / sqrt(k!)``; the sign cancels in the product and is dropped.
Cramér's inequality ``|He_n(x)| exp(-x^2/4) <= K sqrt(n!)`` (K = 1.086435) bounds every term by
``|rho|^k K^2 / (2 pi k (k - 1))`` whatever a, b: the series converges geometrically, uniformly in a, b.

A pair of units j, k at (point, time) step b contributes ``w_b s_bj s_bk G(alpha_bj, alpha_bk; rho_jk)`` to U, and
rho_jk does not depend on the step. Per order k the step sum is therefore one matrix product
``M_k = (X_k w)^T X_k`` with ``X_k[b, j] = s_bj d_k(alpha_bj)``, and U's pair part is ``sum_k mask_k o M_k``.

The series is used for every pair, expanded about ``rho_0 = clip(rho, -rho_c, rho_c)`` (Price's theorem,
``dG/drho = Phi2``, ``dPhi2/drho = phi2``):

    G(rho) = G(rho_0) + (rho - rho_0) Phi2(rho_0) + int_{rho_0}^{rho} (rho - r) phi2(a, b; r) dr,

so ``mask_k = rho_0^k + (rho - rho_0) k rho_0^(k-1)`` (the two first terms are the series and its derivative
at rho_0), and only the pairs with ``|rho| > rho_c`` need the last integral: a composite Gauss-Legendre rule in
``theta = asin r`` with panels uniform in ``atanh r`` from ``rho_0`` to ``rho`` (as in rf/_relu_pair_kernel.py:
``phi2 dr = exp(-E) dtheta / (2 pi)``, one exp per (pair, node, step)); per pair, the panel count and the
nodes per panel (3 to 16) are the cheapest rule of ``_PANELS`` that holds 5e-16 s_j s_k (rf/_mehler_far.py:
``far_panels``, ``_ShiftedQuadrature``).

The cutoff (:func:`cutoff`: ``RHO_C`` per engine) trades the series' orders against far pairs. At the papers'
size (p = 1000, D = 2, 499,500 pairs) 0.8 gives N = 126 orders (260 at 0.9) and 204,955 far pairs (41 %;
143,241 at 0.9) with 13.9 nodes each (2.84 M nodes per step against 1.95 M). Measured (loaded machine,
interleaved rounds, session 18): with the compiled far kernel, whole papers'-size assemblies at 0.8 take 0.86
of the CPU at 0.9 (70.4 vs 84.7 CPU-s, wall 38.2 vs 46.7 s; medians of 3; max |dU| / max |U| = 4.3e-16), the
assembly's own blocks 0.87 and 0.90 (0.85: 0.93 and 0.87); but with the numpy engine, whose far path costs ~5x
per node, the blocks take 1.12x: so 0.8 with numba, 0.9 with numpy (the numpy engine's bits and cache keys are
those of before). U moves by up to ~1.5e-15 of its scale between cutoffs, the method's round-off floor:
expansions about 0.9 and 0.5 with tol = 1e-18 and converged far quadratures differ from each other by 1.3e-15
on one block. Each cutoff has its panel table, calibrated at rho_0 = that cutoff (a rule's error depends on
where its panels start: the rules calibrated at 0.9 err 1.5e-15 at 0.8); another ``rho_c`` takes the table of
the largest calibrated cutoff below it (the rules hold more as rho_0 grows), or the smallest one (not measured
there).

Truncation: the series stops at the order N where the tail bound
``sum_{k > N} (rho_c^k + (1 - rho_c) k rho_c^(k-1)) K^2 / (2 pi k (k - 1))`` is below ``tol`` (default 1e-15):
an *absolute* error of at most ``tol s_j s_k`` per pair and step, whatever the sign of rho and however large
|alpha| (where G itself is tiny this is not a relative accuracy; U's assembly needs accuracy relative to its
scale, and its entries are sums of such terms). The terms are evaluated by the forward three-term recurrence of
``phi(a) He_n(a) / sqrt(n!)`` (stable: the dominant solution), each at most ~0.43 in absolute value, so
round-off is ~1e-16 s_j s_k per pair.

Everything is computed in fixed pieces, so the bits do not depend on the number of threads: the terms for
``_ORDERS`` orders at a time in fixed column chunks, the products per row of 64-unit tiles and run of adjacent
tiles that still need the order (one GEMM each on one BLAS thread, rftheory._blas.blas_single; GEMMs of 64 x B x
run instead of 64 x B x 64: fewer calls, and the masked update is one compiled pass where numba runs), rows of
tiles split in ``_GROUPS`` fixed tasks balanced by their work, the next group of orders' terms computed beside
this group's products (two buffers). The far pairs' quadrature runs per pair by the compiled kernel of
rf/_mehler_kernels.py where numba runs (5x the numpy path; its bits differ at round-off), else in numpy.
"""
from __future__ import annotations

import numpy as np

from .._blas import blas_single
from . import _mehler_kernels as _kernels
from ._bvn import norm_cdf, relu_g
from ._mehler_far import _Pool, _ShiftedQuadrature, panel_rules

RHO_C = {"numba": 0.8, "numpy": 0.9}   # per pair-sum engine, |rho| above which a pair also gets the quadrature
                         # from rho_0 = +-RHO_C (:func:`cutoff`; the moment cache's key holds it when it is not 0.9)
TOL = 1e-15              # truncation bound of the series, in units of s_j s_k per step
_CRAMER = 1.086435
_TILE = 64               # rows and columns of U per tile of the series' products
_COLS = 128              # units per chunk of the series' elementwise terms (run on the pool; a multiple of _TILE)
_GROUPS = 6              # tasks per group of orders of the series' products (fixed; rows of tiles balanced)
_ORDERS = 8              # orders per group: terms computed for a group at once (one pool round per group)
def cutoff() -> float:
    """``RHO_C`` of the pair-sum engine that runs (rf/_mehler_kernels.engine)."""
    return RHO_C[_kernels.engine()]


def n_orders(rho_c: float | None = None, tol: float = TOL, shift: float | None = None) -> int:
    """The last order N of the series for pairs with |rho_0| <= rho_c (default :func:`cutoff`) and
    |rho - rho_0| <= shift (default 1 - rho_c): the module docstring's tail bound is <= tol."""
    rho_c = cutoff() if rho_c is None else rho_c
    if not 0 <= rho_c < 1:
        raise ValueError(f"rho_c must lie in [0, 1); got {rho_c!r}")
    shift = 1 - rho_c if shift is None else shift
    c = _CRAMER**2 / (2 * np.pi)
    # orders past kmax add < rho_c^kmax < tol e^-50 to every tail: dropped (this runs once per tile)
    kmax = 200 if rho_c == 0 else int(min(100000.0, 200 + (50 - np.log(tol)) / -np.log(rho_c)))
    k = np.arange(2, kmax, dtype=np.float64)
    term = (rho_c**k + shift * k * rho_c ** (k - 1)) * c / (k * (k - 1))
    tail = np.cumsum(term[::-1])[::-1]               # tail[i] = sum over orders >= k[i]
    ok = np.nonzero(tail <= tol)[0]
    return int(k[ok[0]] - 1) if ok.size else int(k[-1])


def hermite_terms(alpha, N: int):
    """Yield ``d_k(alpha)`` for k = 0..N (module docstring; the sign (-1)^k dropped), arrays like alpha."""
    a = np.asarray(alpha, dtype=np.float64)
    yield relu_g(a)
    if N >= 1:
        yield norm_cdf(a)
    hm = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)     # phi(a) He_0 / sqrt(0!)
    h = a * hm                                          # phi(a) He_1 / sqrt(1!)
    for k in range(2, N + 1):
        n = k - 2                                       # d_k = phi He_n / sqrt(n!) / sqrt(k (k - 1))
        yield (hm if n == 0 else h) / np.sqrt(k * (k - 1.0))
        if n >= 1:
            hm, h = h, (a * h - np.sqrt(n) * hm) / np.sqrt(n + 1.0)


def unit_order(Wx):
    """An order of the units in which pairs of large |rho| sit near the diagonal: by the angle (mod pi) of their
    directions projected on the two leading right singular vectors of the unit directions (in D = 2, the angle
    itself: |rho_jk| = |cos(theta_j - theta_k)|)."""
    u = Wx / np.linalg.norm(Wx, axis=1)[:, None]
    if u.shape[1] == 1:
        return np.arange(u.shape[0])
    _, _, vt = np.linalg.svd(u, full_matrices=False)
    xy = u @ vt[:2].T
    return np.argsort(np.mod(np.arctan2(xy[:, 1], xy[:, 0]), np.pi), kind="stable")


class MehlerPairs:
    """The ReLU pair part of U (upper triangle ``jj < kk``) for fixed unit correlations (module docstring).

    Parameters
    ----------
    rho : numpy.ndarray, shape (P,)
        Correlations of the pairs (jj, kk) = ``numpy.triu_indices(p, 1)``.
    p : int
    rho_c, tol : float
        Expansion cutoff (default :func:`cutoff`, the engine's ``RHO_C``; the far pairs take its panel table,
        :func:`panel_rules`) and truncation bound (module docstring).
    perm : numpy.ndarray of int, optional
        An order of the units for the tiles (:func:`unit_order`); any order gives the same pair values to the
        bound, a good one skips more high orders.
    """

    def __init__(self, rho, p: int, rho_c: float | None = None, tol: float = TOL, perm=None):
        rho = np.asarray(rho, dtype=np.float64)
        rho_c = cutoff() if rho_c is None else rho_c
        self.p = p = int(p)
        self.jj, self.kk = np.triu_indices(p, k=1)
        self.rho_c = float(rho_c)
        perm = np.arange(p) if perm is None else np.asarray(perm)
        self.perm = perm
        pos = np.empty(p, dtype=np.int64)
        pos[perm] = np.arange(p)
        pj, pk = pos[self.jj], pos[self.kk]
        self.lo, self.hi = np.minimum(pj, pk), np.maximum(pj, pk)         # the pairs in the permuted upper triangle
        r0 = np.clip(rho, -rho_c, rho_c)
        self.R0 = np.zeros((p, p))
        self.R0[self.lo, self.hi] = r0
        self.DL = np.zeros((p, p))
        self.DL[self.lo, self.hi] = rho - r0
        # tiles of the permuted upper triangle, each with the orders its pairs need (the bound at its largest
        # |rho_0| and |rho - rho_0|): units ordered so that large |rho| gather near the diagonal skip most
        # high orders elsewhere
        self.tiles = []
        for a in range(0, p, _TILE):
            for b in range(a, p, _TILE):
                R = np.abs(self.R0[a:a + _TILE, b:b + _TILE])
                dl = np.abs(self.DL[a:a + _TILE, b:b + _TILE])
                n = n_orders(float(R.max()), tol, float(dl.max()))
                self.tiles.append((a, min(a + _TILE, p), b, min(b + _TILE, p), n))
        self.N = max(t[4] for t in self.tiles) if self.tiles else 0
        # per row of tiles: (a0, a1, runs) with runs[k] the runs (b0, b1) of adjacent tiles that order k needs
        self._runs = []
        work = []
        for a in range(0, p, _TILE):
            row = [t for t in self.tiles if t[0] == a]
            runs = []
            for k in range(self.N + 1):
                rk = []
                for t in row:
                    if t[4] >= k:
                        if rk and rk[-1][1] == t[2]:
                            rk[-1] = (rk[-1][0], t[3])
                        else:
                            rk.append((t[2], t[3]))
                runs.append(tuple(rk))
            self._runs.append((a, min(a + _TILE, p), runs))
            work.append(sum((t[1] - t[0]) * (t[3] - t[2]) * (t[4] + 1) for t in row))
        # rows of tiles to the _GROUPS tasks, largest first to the least loaded (fixed by the problem alone)
        self._tasks = [[] for _ in range(_GROUPS)]
        load = [0] * _GROUPS
        for r in sorted(range(len(work)), key=lambda r: -work[r]):
            g = load.index(min(load))
            self._tasks[g].append(r)
            load[g] += work[r]
        far = np.nonzero(np.abs(rho) > rho_c)[0]
        self.far = far
        self.quad = _ShiftedQuadrature(rho[far], r0[far], panel_rules(rho_c)) if far.size else None

    def weighted_sum(self, alpha, scale, weight, batch: int = 32, threads: int = 1):
        """``sum_b weight[b] scale[b, j] scale[b, k] G(alpha[b, j], alpha[b, k]; rho_jk)`` for the pairs (P, nw).

        alpha, scale : (B, p); weight : (B, nw).

        The terms ``X_k = scale d_k`` (elementwise, stored unit-major (p, B)) are computed for ``_ORDERS``
        orders at a time in fixed column chunks of ``_COLS`` units, the next group of orders together with this
        group's products (two buffers). A product is one GEMM per row of tiles and run of adjacent live tiles
        (``_runs``), ``(X_k w)[rows]^T X_k[run]``, masked and added by the update of
        :func:`_mehler_kernels.mask_adder`; the rows of tiles are split in ``_GROUPS`` fixed tasks. No split
        depends on ``threads``, and each entry's arithmetic is the same whichever thread does it, so neither do
        the bits."""
        alpha = np.asarray(alpha, dtype=np.float64)
        S = np.asarray(scale, dtype=np.float64)
        w = np.asarray(weight, dtype=np.float64)
        p, nw, N = self.p, w.shape[1], self.N
        B = alpha.shape[0]
        acc = np.zeros((nw, p, p))
        pw = np.ones((p, p))                      # rho_0^(k-1) on the tiles
        AP = np.ascontiguousarray(alpha[:, self.perm].T)                    # (p, B), permuted units
        SP = np.ascontiguousarray(S[:, self.perm].T)
        wT = np.ascontiguousarray(w.T)                                      # (nw, B)
        chunks = [(c, min(c + _COLS, p)) for c in range(0, p, _COLS)]
        terms = [hermite_terms(AP[c0:c1], N) for c0, c1 in chunks]
        G = min(_ORDERS, N + 1)
        XT = [np.empty((G, p, B)) for _ in range(2)]                       # orders g G .. g G + G - 1
        XWT = [np.empty((G, nw, p, B)) for _ in range(2)]
        Ms = [np.empty((nw, _TILE * p)) for _ in range(_GROUPS)]           # a task's GEMM outputs
        groups = range(-(-(N + 1) // G))

        def terms_chunk(c, g):
            c0, c1 = chunks[c]
            X, XW = XT[g % 2], XWT[g % 2]
            for kk in range(min(G, N + 1 - g * G)):
                np.multiply(SP[c0:c1], next(terms[c]), out=X[kk, c0:c1])
                for i in range(nw):
                    np.multiply(X[kk, c0:c1], wT[i], out=XW[kk, i, c0:c1])

        mask_add = _kernels.mask_adder()                                   # the engine, once per call

        def products(task, g):
            M = Ms[task]
            for kk in range(min(G, N + 1 - g * G)):
                k = g * G + kk
                X, XW = XT[g % 2][kk], XWT[g % 2][kk]
                for r in self._tasks[task]:
                    a0, a1, runs = self._runs[r]
                    for b0, b1 in runs[k]:
                        Mr = M[:, :(a1 - a0) * (b1 - b0)].reshape(nw, a1 - a0, b1 - b0)
                        for i in range(nw):
                            np.matmul(XW[i, a0:a1], X[b0:b1].T, out=Mr[i])
                        mask_add(Mr, self.R0, self.DL, pw, acc, a0, b0, k)

        with blas_single(), _Pool(threads) as pool:
            pool.map(lambda c: terms_chunk(c, 0), range(len(chunks)))
            for g in groups:
                jobs = [(terms_chunk, (c, g + 1)) for c in range(len(chunks))] if g + 1 < len(groups) else []
                jobs += [(products, (task, g)) for task in range(_GROUPS)]
                pool.map(lambda job: job[0](*job[1]), jobs)
        out = acc[:, self.lo, self.hi].T                                    # (P, nw)
        if self.quad is not None:
            jf, kf = self.jj[self.far], self.kk[self.far]
            out[self.far] += self.quad.weighted_sum(alpha, S, w, jf, kf, batch, threads)
        return out
