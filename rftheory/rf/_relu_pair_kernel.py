"""The hoisted ReLU pair kernel: E[u+ v+] for many pairs of fixed correlation at once (split out of rf/_bvn.py,
whose precise routines it uses for the entries it cannot hold).

``relu_pair_kernel`` was the fast path for U assembly (now the baseline, ``rf/_exact.RELU_PAIRS = "kernel"``;
production U uses the Mehler series of ``rf/_mehler.py``); its ``std`` and calls remain the accurate-fast pair
moment for many pairs at once. The correlation of a pair of random features does not
depend on (i, t), so its quadrature nodes, the constants ``1/(2(1-r^2))``, ``1/(1+|r|)`` and the weights
``(rho - r) w / (2 pi)`` are computed once per pair; each (i, t) then costs one exp per node. It expands about
rho_0 = 0 for both signs (absolute, not relative, accuracy in the far tails: tests state the bound). The
constants are stored pair-major in blocks of 64 sorted pairs, so that a batch of B (i, t) steps costs per block
one small matmul for the exponents (nodes x B), one exp, and one matmul for the node sum
(``weighted_sum``; pair chunks can run on several threads).

Far tails of the fast kernel: expanded about rho_0 = 0 with fixed nodes (12 per panel of width 0.75 in
atanh r: 25 per pair on average for uniform angles) it cancels for rho < 0 (the ``rho Phi(a) Phi(b)`` term
against the rest when the value is tiny) and misses the peak of a sharp integrand for rho > 0, so it is only
*absolutely* accurate where ``min(a, b) < -6`` or (rho < 0 and ``a + b < 1``): those entries are *flagged*
(the region was mapped against ``relu_pair_std`` on a grid of a, b in [-38, 10] and |rho| up to 1 - 1e-6;
outside it the kernel holds 1e-12 relative, tests/test_relu_far_tails.py). ``std`` (and calling the kernel)
recomputes every flagged entry with ``relu_pair_std``: relative accuracy ~1e-13 wherever the value is a
normal float.

Routing in ``weighted_sum(route=True)`` (U assembly), where a flagged term is one of many summed into an entry:
a term is a *candidate* when min(a, b) < -6, or when it cancels (rho < 0, a + b < 1) with
``R = (g_a g_b + |rho| P_a P_b) / G > _R_CANCEL = 100`` (for R <= 1e4 the fast term is within 30 eps R of G,
mapped on a grid of a, b in [-6, 7]: below 100 it holds 7e-13 relative by itself). Every fast term is within
``_KERN_ABS = 1e-13`` of ``s_j s_k sqrt(E[u+^2] E[v+^2])`` (tests/test_relu_far_tails.py); an entry's
candidates in a batch are recomputed by ``relu_pair_std`` unless these bounds sum to less than ``_U_REL = 1e-13``
of the entry's batch sum (weights >= 0, so the batch sum is below the final entry). Each U entry then holds
~1e-12 relative, including one made of far-tail terms only (tests/test_relu_routing.py). It is *not* the
default: at the papers' size (p = 1000, D = 2, so many rho near -1) about a third of the terms are flagged and
~10 % are routed (relu_pair_std costs ~7x a fast term), which doubles U's assembly time; without routing, ~3 %
of U's entries are more than 1e-12 relative off (max 1.1e-17 of the largest entry).
"""
from __future__ import annotations

import numpy as np

from ._bvn import _check_rho, _gl, norm_cdf, relu_g, relu_pair_std, relu_second_std

_BLOCK = 64            # pairs per block of the hoisted ReLU kernel
_FAR_MIN = -6.0        # fast kernel: flagged where min(a, b) < _FAR_MIN ...
_FAR_SUM = 1.0         # ... or rho < 0 and a + b < _FAR_SUM (module docstring)
_KERN_DS = 0.75        # fast kernel: panel width in atanh(r) ...
_KERN_N = 12           # ... and Gauss-Legendre nodes per panel
_R_CANCEL = 100.0      # routing (weighted_sum): a cancelling term is a candidate when (g_a g_b + |rho| P_a P_b) / G
_KERN_ABS = 1e-13      # exceeds this, a far term always; a candidate's error is <= _KERN_ABS sqrt(E[u+^2] E[v+^2])
_U_REL = 1e-13         # (tested); they are routed unless their bounds sum to less than this share of the entry


class _ReluPairKernel:
    """E[u+ v+] for fixed pair correlations, nodes and constants hoisted (see module docstring).

    Pairs are sorted by node count so that node l touches a prefix of the (sorted) pairs."""

    def __init__(self, rho, ds: float = _KERN_DS, n: int = _KERN_N):
        rho = np.asarray(rho, dtype=np.float64).ravel()
        _check_rho(rho)
        self.rho = rho
        P = rho.size
        s_end = np.arctanh(np.minimum(np.abs(rho), 1 - 1e-16))
        npan = np.maximum(1, np.ceil(s_end / ds)).astype(np.int64)
        order = np.argsort(-npan, kind="stable")
        self.order = order
        self.inv = np.empty(P, dtype=np.int64)
        self.inv[order] = np.arange(P)
        x0, w0 = _gl(n)
        Lmax = int(npan.max()) * n if P else 0
        c1 = np.zeros((Lmax, P))
        c2 = np.zeros((Lmax, P))
        W = np.zeros((Lmax, P))
        ro = rho[order]
        so = s_end[order]
        no = npan[order]
        sgn = np.where(ro >= 0, 1.0, -1.0)
        tend = np.arcsin(ro)
        self.count = np.zeros(Lmax, dtype=np.int64)
        for k in range(int(npan.max()) if P else 0):
            m = int(np.sum(no > k))
            t0 = sgn[:m] * np.arcsin(np.tanh(so[:m] * k / no[:m]))
            t1 = np.where(k + 1 == no[:m], tend[:m], sgn[:m] * np.arcsin(np.tanh(so[:m] * (k + 1) / no[:m])))
            h = t1 - t0
            th = (t0 + 0.5 * h)[None, :] + (0.5 * h)[None, :] * x0[:, None]      # (n, m)
            r = np.sin(th)
            c = np.cos(th)
            c1[k * n:(k + 1) * n, :m] = 1.0 / (2.0 * c * c)
            c2[k * n:(k + 1) * n, :m] = 1.0 / (1.0 + np.abs(r))
            W[k * n:(k + 1) * n, :m] = (0.5 * h)[None, :] * w0[:, None] * (ro[:m][None, :] - r) / (2 * np.pi)
            self.count[k * n:(k + 1) * n] = m
        self.sgn = sgn
        self.n_nodes = int(np.sum(self.count))
        self.rho_sorted = ro
        # pair-major blocks of _BLOCK sorted pairs: C (m, L, 2) = -(c1, c2), Wb (m, 1, L); a pair with fewer
        # than L nodes is padded with zeros (exp(0) times weight 0). Then, for B steps at once,
        # E = C @ (d2, ab) (m, L, B), exp in place, and the node sum is Wb @ exp(E): two small matmuls and one
        # exp per (pair, node, step), no per-node Python loop.
        self.blocks = []
        for c0 in range(0, P, _BLOCK):
            c1e = min(c0 + _BLOCK, P)
            L = int(np.searchsorted(-self.count, -c0, side="left"))
            Cb = np.empty((c1e - c0, L, 2))
            Cb[:, :, 0] = -c1[:L, c0:c1e].T
            Cb[:, :, 1] = -c2[:L, c0:c1e].T
            self.blocks.append((c0, c1e, Cb, np.ascontiguousarray(W[:L, c0:c1e].T)[:, None, :]))
        self.Lmax = self.blocks[0][2].shape[1] if self.blocks else 0
        del c1, c2, W

    def _integral(self, i0, i1, a, b):
        """sum_nodes W exp(-E) for the sorted pairs i0..i1 (block-aligned i0); a, b (i1 - i0, B)."""
        n, B = a.shape
        sg = self.sgn[i0:i1, None]
        X = np.empty((n, 2, B))
        d = a - sg * b
        np.multiply(d, d, out=X[:, 0, :])
        np.multiply(a * b, sg, out=X[:, 1, :])
        acc = np.empty((n, B))
        k0 = i0 // _BLOCK
        buf = np.empty(_BLOCK * max(self.blocks[k0][2].shape[1], 1) * B) if n else None
        for c0, c1e, Cb, Wb in self.blocks[k0:]:
            if c0 >= i1:
                break
            m, L = Cb.shape[0], Cb.shape[1]
            E = buf[:m * L * B].reshape(m, L, B)
            np.matmul(Cb, X[c0 - i0:c1e - i0], out=E)
            np.exp(E, out=E)
            acc[c0 - i0:c1e - i0] = np.matmul(Wb, E)[:, 0, :]
        return acc

    def std(self, alpha, beta, g_a=None, g_b=None, P_a=None, P_b=None):
        """G(alpha_p, beta_p; rho_p) for the P pairs (inputs (P,) in the caller's order)."""
        a = np.asarray(alpha, dtype=np.float64)[self.order]
        b = np.asarray(beta, dtype=np.float64)[self.order]
        g_a = relu_g(a) if g_a is None else np.asarray(g_a)[self.order]
        g_b = relu_g(b) if g_b is None else np.asarray(g_b)[self.order]
        P_a = norm_cdf(a) if P_a is None else np.asarray(P_a)[self.order]
        P_b = norm_cdf(b) if P_b is None else np.asarray(P_b)[self.order]
        acc = self._integral(0, a.size, a[:, None], b[:, None])[:, 0]
        res = g_a * g_b + self.rho_sorted * P_a * P_b + acc
        far = self.flagged(a, b, self.rho_sorted)
        if far.any():
            res[far] = relu_pair_std(a[far], b[far], self.rho_sorted[far])
        return res[self.inv]

    @staticmethod
    def flagged(a, b, rho):
        """Entries where the fast kernel is only absolutely accurate (module docstring); broadcasting."""
        far = np.minimum(a, b) < _FAR_MIN
        far |= (rho < 0) & (a + b < _FAR_SUM)
        return far

    def weighted_sum(self, jj, kk, alpha, scale, weight, g=None, P=None, threads: int = 1, chunk: int = 4096,
                     route: bool = False):
        """``sum_b weight_b scale[b, j] scale[b, k] G(alpha[b, j], alpha[b, k]; rho)`` for the pairs (jj, kk) (P,).

        Batched form of :meth:`std` for U assembly: ``alpha``, ``scale`` (and optionally ``g = relu_g(alpha)``,
        ``P = norm_cdf(alpha)``) are per-unit arrays (B, p) for B (point, time) steps, ``weight`` (B,) -- or
        (B, nw) for nw weightings of the same steps at the cost of one, giving (P, nw); weights >= 0. The
        per-pair constants are read once per batch. Pairs are processed in chunks of ``chunk`` (rounded to
        whole blocks) by ``threads`` threads (NumPy releases the GIL in matmul and ufuncs); each chunk is
        computed the same way whatever the thread count, so the result does not depend on it.

        ``route=True``: far-tail terms that could spoil an entry's relative accuracy are recomputed by
        :func:`relu_pair_std` (module docstring, "Routing"): every entry then holds ~1e-12 relative, at about
        twice the cost at the papers' size. The default, ``route=False``, is the fast quadrature alone: each
        entry absolutely accurate (1e-13 of its Cauchy-Schwarz scale), not relatively where far-tail terms
        make it up."""
        alpha = np.atleast_2d(np.asarray(alpha, dtype=np.float64))
        g = relu_g(alpha) if g is None else np.atleast_2d(g)
        P = norm_cdf(alpha) if P is None else np.atleast_2d(P)
        S = np.atleast_2d(np.asarray(scale, dtype=np.float64))
        w = np.asarray(weight, dtype=np.float64)
        multi = w.ndim == 2
        w = w if multi else w.reshape(-1)
        AT, GT, PT, ST = (np.ascontiguousarray(x.T) for x in (alpha, g, P, S))     # (p, B)
        SWT = ST if multi else ST * w[None, :]
        jo = np.asarray(jj)[self.order]
        ko = np.asarray(kk)[self.order]
        npairs = jo.size
        m = max(1, int(chunk) // _BLOCK) * _BLOCK
        out = np.empty((npairs, w.shape[1]) if multi else npairs)
        if route:
            # per unit: any far step in the batch, its lowest alpha, and s sqrt(E[u+^2]) (x |w|)
            far_u = (AT < _FAR_MIN).any(axis=1)
            low_u = AT.min(axis=1) if AT.shape[1] else np.zeros(AT.shape[0])
            wabs = np.abs(w).max(axis=1) if multi else np.abs(w)
            QW = np.sqrt(relu_second_std(AT)) * ST
            QWa = QW * wabs[None, :]

        def run(c0):
            c1 = min(c0 + m, npairs)
            jc, kc = jo[c0:c1], ko[c0:c1]
            aj, ak = AT[jc], AT[kc]
            rc = self.rho_sorted[c0:c1]
            acc = self._integral(c0, c1, aj, ak)
            gg = GT[jc] * GT[kc]
            acc += gg
            pp = PT[jc] * PT[kc]
            pp *= rc[:, None]
            acc += pp
            cand = []       # (rows, steps) of terms that may spoil their entry; error <= _KERN_ABS s s sqrt(E E)
            if route:
                rows = np.nonzero((rc < 0) & (low_u[jc] + low_u[kc] < _FAR_SUM))[0]
                if rows.size:   # cancelling terms (below _R_CANCEL each is accurate to 30 eps R: mapped)
                    As, Bs = aj[rows], ak[rows]
                    r2, c2 = np.nonzero((As + Bs < _FAR_SUM) & (np.minimum(As, Bs) >= _FAR_MIN))
                    rr = rows[r2]
                    bad = ~(gg[rr, c2] - pp[rr, c2] <= _R_CANCEL * acc[rr, c2])
                    cand.append((rr[bad], c2[bad]))
                rows = np.nonzero(far_u[jc] | far_u[kc])[0]
                if rows.size:   # far terms
                    r2, c2 = np.nonzero(np.minimum(aj[rows], ak[rows]) < _FAR_MIN)
                    cand.append((rows[r2], c2))
            acc *= ST[jc]
            acc *= SWT[kc]
            part = acc @ w if multi else acc.sum(axis=1)
            if cand:        # route the candidates of the entries whose bound is not below _U_REL of the sum
                rr, c2 = (np.concatenate(x) for x in zip(*cand))
                bnd = _KERN_ABS * QW[jc[rr], c2] * QWa[kc[rr], c2]
                tot = np.abs(part).min(axis=1) if multi else np.abs(part)
                fail = ~(np.bincount(rr, bnd, minlength=c1 - c0) <= _U_REL * tot)
                sel = fail[rr]
                rr, c2 = rr[sel], c2[sel]
                if rr.size:
                    acc[rr, c2] = (relu_pair_std(aj[rr, c2], ak[rr, c2], rc[rr]) * ST[jc[rr], c2] * SWT[kc[rr], c2])
                    rows = np.nonzero(fail)[0]
                    part[rows] = acc[rows] @ w if multi else acc[rows].sum(axis=1)
            out[c0:c1] = part

        starts = range(0, npairs, m)
        if threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(int(threads)) as ex:
                list(ex.map(run, starts))
        else:
            for c0 in starts:
                run(c0)
        return out[self.inv]

    def __call__(self, mu_u, s_u, mu_v, s_v):
        s_u = np.asarray(s_u, dtype=np.float64)
        s_v = np.asarray(s_v, dtype=np.float64)
        return s_u * s_v * self.std(np.asarray(mu_u) / s_u, np.asarray(mu_v) / s_v)


def relu_pair_kernel(rho, ds: float = _KERN_DS, n: int = _KERN_N) -> _ReluPairKernel:
    """Fast ReLU pair moments for fixed per-pair correlations ``rho`` (P,): see :class:`_ReluPairKernel`."""
    return _ReluPairKernel(rho, ds=ds, n=n)
