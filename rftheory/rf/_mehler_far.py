"""The far pairs of U's ReLU pair sums (rf/_mehler.py): the short quadrature of the remainder
``int_{rho_0}^{rho} (rho - r) phi2(a, b; r) dr`` for the pairs with |rho| above the Mehler series' cutoff, its
panel rules per cutoff (``_PANELS``, measured by bench/calibrate_far_panels.py), and the thread pool the pair
sums share. The derivation, the cutoff and the accuracy are in rf/_mehler.py's docstring; the compiled kernel
in rf/_mehler_kernels.py.
"""
from __future__ import annotations

import numpy as np

from .._blas import blas_single
from . import _mehler_kernels as _kernels

_BLOCK = 64              # pairs per block of the far-pair quadrature
_E_FLOOR = -700.0        # exponents below are raised to it: exp(-700) = 1e-304 (negligible), not an underflow
# far-pair quadrature, per cutoff rho_0: (Gauss-Legendre nodes n, widest panel in atanh r on which n nodes keep
# the error below 5e-16 s_j s_k). 0.8: measured by `python -m bench.calibrate_far_panels --rho0 0.8` against
# 4x the panels with 24 nodes each (itself within 5e-18 of 8x), for a, b on a grid of [-38, 12] (0.167 apart in
# [-8, 8]), both signs of rho, over 1 and 2 panels after rho_0; geometric scan of h then bisection to 0.2 %,
# rounded down to 2-3 digits; the table as used (cheapest rule per width) errs <= 4.6e-16 on widths 0.005 to 17
# (5.9e-16 on the test's grid, 0.4 apart: points the 0.167 grid misses; the bound the test holds is 1e-15).
# 0.9: the table of session 17 (measured the same way; the script gives h 0-10 % wider, kept for the numpy
# engine's bits). tests/test_mehler.py re-checks both on a coarser grid, and (slow) against the script.
_PANELS = {
    0.8: ((3, 0.032), (4, 0.092), (5, 0.18), (6, 0.29), (7, 0.40), (8, 0.53), (9, 0.64), (10, 0.77),
          (11, 0.89), (12, 1.02), (13, 1.14), (14, 1.23), (15, 1.33), (16, 1.44)),
    0.9: ((3, 0.035), (4, 0.10), (5, 0.20), (6, 0.29), (7, 0.39), (8, 0.52), (9, 0.70), (10, 0.77),
          (11, 0.85), (12, 1.03), (13, 1.14), (14, 1.25), (15, 1.38), (16, 1.52)),
}


def panel_rules(rho_c: float):
    """The far-pair panel table for the cutoff ``rho_c``: its own, else that of the largest calibrated cutoff
    below it, else the smallest (module docstring)."""
    below = [c for c in _PANELS if c <= rho_c]
    return _PANELS[max(below) if below else min(_PANELS)]


def far_panels(width, panels):
    """Panels and nodes per panel of the far-pair quadrature over ``width`` (in atanh r, array): of the rules
    in ``panels`` (a table of :data:`_PANELS`, :func:`panel_rules`; n nodes on ``ceil(width / h_max)`` equal
    panels), the one with the fewest nodes.

    Returns
    -------
    npan, ngl : numpy.ndarray of int
    """
    width = np.asarray(width, dtype=np.float64)
    best = np.full(width.shape, np.iinfo(np.int64).max, dtype=np.int64)
    npan = np.ones(width.shape, dtype=np.int64)
    ngl = np.zeros(width.shape, dtype=np.int64)
    for n, h in panels:
        k = np.maximum(1, np.ceil(width / h)).astype(np.int64)
        better = n * k < best
        best = np.where(better, n * k, best)
        npan = np.where(better, k, npan)
        ngl = np.where(better, n, ngl)
    return npan, ngl


class _Pool:
    """``map(fn, items)`` on ``threads`` Python threads (one pool for many maps), or in this thread."""

    def __init__(self, threads):
        self.threads = int(threads)
        self.ex = None

    def __enter__(self):
        if self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor
            self.ex = ThreadPoolExecutor(self.threads)
        return self

    def __exit__(self, *exc):
        if self.ex is not None:
            self.ex.shutdown()
        return False

    def map(self, fn, items):
        if self.ex is not None and len(items) > 1:
            list(self.ex.map(fn, items))
        else:
            for it in items:
                fn(it)


class _ShiftedQuadrature:
    """``int_{rho_0}^{rho} (rho - r) phi2(a, b; r) dr`` for fixed (rho, rho_0), |rho| > |rho_0|, same sign.

    Composite Gauss-Legendre in theta = asin r, panels uniform in atanh r, their number and nodes chosen per
    pair by :func:`far_panels` from ``panels`` (the table of the cutoff: error <= 5e-16 s_j s_k at its rho_0,
    measured); the per-pair constants are hoisted and stored pair-major in blocks of
    ``_BLOCK`` pairs sorted by node count, so a batch of steps costs per block one small matmul for the
    exponents, one exp and one matmul for the node sum."""

    def __init__(self, rho, rho0, panels):
        self.sgn = np.where(rho >= 0, 1.0, -1.0)
        s0 = np.arctanh(np.abs(rho0))
        s1 = np.arctanh(np.minimum(np.abs(rho), 1 - 1e-16))
        npan, ngl = far_panels(s1 - s0, panels)
        L = npan * ngl                                                          # nodes of each pair
        P = rho.size
        # every pair's nodes, flat (pair-major): sin and cos of the node's theta and its weight
        off = np.zeros(P + 1, dtype=np.int64)
        np.cumsum(L, out=off[1:])
        rr, cc, ww = (np.empty(int(off[-1])) for _ in range(3))
        for n in np.unique(ngl):
            g = np.nonzero(ngl == n)[0]
            x0, w0 = np.polynomial.legendre.leggauss(int(n))
            npk = int(npan[g].max())
            kk = np.arange(npk + 1)[None, :]                                  # panel edges 0..npk
            nb = npan[g, None]
            ed = s0[g, None] + (s1[g, None] - s0[g, None]) * np.minimum(kk, nb) / nb
            th = np.where(kk >= nb, np.arcsin(np.abs(rho[g]))[:, None], np.arcsin(np.tanh(ed)))
            th = self.sgn[g, None] * th
            h = np.diff(th, axis=1)                                              # (m, npk); 0 past a pair's panels
            t = ((th[:, :-1] + th[:, 1:]) / 2)[:, :, None] + (h / 2)[:, :, None] * x0[None, None, :]
            wt = (h / 2)[:, :, None] * w0[None, None, :]
            keep = np.repeat(kk[:, :-1] < nb, int(n), axis=1)                  # nodes of a pair's own panels
            dst = (off[g, None] + np.arange(npk * int(n))[None, :])[keep]
            rr[dst] = np.sin(t).reshape(g.size, -1)[keep]
            cc[dst] = np.cos(t).reshape(g.size, -1)[keep]
            ww[dst] = (wt.reshape(g.size, -1) * (rho[g, None] - np.sin(t).reshape(g.size, -1)))[keep] / (2 * np.pi)
        self.off, self.c1, self.c2, self.wn = off, -1.0 / (2.0 * cc * cc), -1.0 / (1.0 + np.abs(rr)), ww
        self.order = np.argsort(-L, kind="stable")
        self._blocks = None                          # the numpy path's pair blocks, built on its first use
        self.n_nodes = int(off[-1])

    def blocks(self):
        """The numpy path's blocks of ``_BLOCK`` pairs sorted by node count: (c0, c1, C, W) with C (m, L, 2) the
        exponent factors (c1, c2) and W (m, 1, L) the weights, zero-padded to the block's largest node count
        (built on first use from the flat arrays the compiled kernel reads: an engine uses one or the other)."""
        if self._blocks is None:
            L = np.diff(self.off)
            blocks = []
            for c0 in range(0, L.size, _BLOCK):
                idx = self.order[c0:c0 + _BLOCK]
                Lb = int(L[idx].max())
                pos = np.arange(Lb)[None, :]
                own = pos < L[idx, None]                                          # False: padding
                src = (self.off[idx, None] + pos)[own]
                C = np.zeros((idx.size, Lb, 2))                                   # padding: exp(0) times weight 0
                C[own, 0] = self.c1[src]
                C[own, 1] = self.c2[src]
                W = np.zeros((idx.size, 1, Lb))
                W[:, 0, :][own] = self.wn[src]
                blocks.append((c0, c0 + idx.size, C, W))
            self._blocks = blocks
        return self._blocks

    def weighted_sum(self, alpha, S, w, jf, kf, batch, threads):
        """``sum_b w[b] S[b, j] S[b, k] int(...)`` for the far pairs (jf, kf) (Pf, nw): by the compiled kernel
        (rf/_mehler_kernels.py) where numba runs, else in numpy (batches of ``batch`` steps)."""
        if _kernels.available():
            with blas_single(), _Pool(threads) as pool:
                return _kernels.far_sums(jf, kf, self.sgn, self.off, self.c1, self.c2, self.wn, alpha.T, S.T, w,
                                         pool)
        jo, ko = jf[self.order], kf[self.order]
        sg = self.sgn[self.order]
        B = alpha.shape[0]
        out = np.zeros((jo.size, w.shape[1]))
        AT = np.ascontiguousarray(alpha.T)
        ST = np.ascontiguousarray(S.T)
        steps = [(b, min(b + batch, B)) for b in range(0, B, batch)]

        def blk(item):
            c0, c1, C, W = item
            j, k, s = jo[c0:c1], ko[c0:c1], sg[c0:c1, None]
            res = np.zeros((c1 - c0, w.shape[1]))
            for b0, b1 in steps:
                a, bb = AT[j, b0:b1], AT[k, b0:b1]
                X = np.empty((c1 - c0, 2, b1 - b0))
                d = a - s * bb
                np.multiply(d, d, out=X[:, 0, :])
                np.multiply(a * bb, s, out=X[:, 1, :])
                E = np.matmul(C, X)
                np.maximum(E, _E_FLOOR, out=E)                         # libm's exp is ~5x slower where it underflows
                np.exp(E, out=E)
                val = np.matmul(W, E)[:, 0, :]                        # (m, steps)
                val *= ST[j, b0:b1]
                val *= ST[k, b0:b1]
                for i in range(w.shape[1]):  # per weight: its bits do not depend on its companions
                    res[:, i] += val @ w[b0:b1, i]
            out[c0:c1] = res
        with blas_single(), _Pool(threads) as pool:
            pool.map(blk, self.blocks())
        res = np.empty_like(out)
        res[self.order] = out
        return res
