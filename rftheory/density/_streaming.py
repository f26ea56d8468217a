"""The streaming pass behind :class:`rftheory.density.empirical.EmpiricalDensity` (docs/theory.md §1).

Its numerics are described in the docstring of ``rftheory.density.empirical``: one pass over chunks of the
centred training set with a running log-sum-exp maximum, one matrix product for the logits and one for the
moment sums of each (query block, data chunk), the precise per-query centred sums where cancellation would
matter, and the query blocks on the query-parallel threads (``rftheory._blas``). ``_StreamingPass`` is the part
of ``EmpiricalDensity`` that runs it (validated input); its result type and finiteness refusals are in
:mod:`rftheory.density._posterior`.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .._blas import blas_single as _blas_single, run_blocks as _run_blocks
from . import _columns, _fused_exp, _fused_merge, _sym3
from ._posterior import _H_MIN, PosteriorMoments, _refuse_non_finite, _require_finite
from ._partial_eigh import top_eigh
from ._posterior_sums import central_third, centred_scatter, shift_plan, shift_third

# precise scatter when a^2 R^2 / h exceeds this (cancellation error eps * ratio <= ~2e-12 relative)
_PRECISE_RATIO = 1.0e4
# bytes allowed for the largest temporary of one (query chunk, data chunk) block
_BLOCK_BYTES = 8 * 2**20
# the third moment comes from the same pass (one product with the data's cubes) up to this dimension
_FUSED_THIRD_MAX_D = 4
# m * n * columns below which the moment product of one call skips the one-BLAS-thread switch: OpenBLAS runs
# products under 4 * 65536 multiply-adds on one thread by itself, and the switch costs a few microseconds
_TINY_WORK = 4 * 65536


def _query_blocks(m: int, qc: int) -> list:
    """Slices of the m queries in blocks of at most qc (the memory budget): equal blocks (sizes differ by at most
    one), their count even, and a multiple of 8 from 8 on, so that 2, 4 or 8 query threads get equal shares.
    Fixed by m and qc alone, never by the thread count, so the bits do not depend on it."""
    nb = -(-m // qc)
    if nb > 1:
        nb = -(-nb // 8) * 8 if nb >= 8 else nb + (nb % 2)
    nb = min(nb, m)
    base, extra = divmod(m, nb)
    edges = np.concatenate([[0], np.cumsum([base + (i < extra) for i in range(nb)])])
    return [slice(int(edges[i]), int(edges[i + 1])) for i in range(nb)]


class _StreamingPass:
    """The streaming pass of :class:`EmpiricalDensity` on validated input (x (m, D) finite float64, tt (m,)
    in the schedule's domain); the class provides ``schedule``, ``data`` and the centred data columns."""

    def _moments(self, x, tt, cov=False, third=False, eigh=False) -> PosteriorMoments:
        """:meth:`moments` on validated input (x (m, D) finite float64, tt (m,) in the domain): the library's
        inner loops (ridge projection, tracing) call this once per step, the public call validates once.
        ``eigh`` (with cov, issue 17): where the queries run in several blocks, each block also decomposes its
        covariances (``np.linalg.eigh``, one matrix at a time whatever the block: the same bits) on the query
        thread that computed them, so the decompositions overlap the other blocks' products; the result
        then carries ``_eigh`` = (eigenvalues ascending (m, D), vectors (m, D, D)), else ``_eigh`` is None. An
        integer ``eigh`` = k asks for the k largest pairs only (``_partial_eigh.top_eigh``: (m, k), (m, D, k))."""
        m = x.shape[0]
        a = self.schedule._a(tt)
        h = self.schedule._h(tt)
        if m and float(h.min()) < _H_MIN:
            # 1/h_t overflows (subnormal h_t): refuse by name before the arithmetic warns about it
            with np.errstate(over="ignore", divide="ignore"):
                _require_finite((1.0 / h)[:, None], "log p_t", tt, h, self._radius)
        xq = x - a[:, None] * self.center[None, :]
        D = self.D
        cov = bool(cov or third)
        fused = bool(third) and D <= _FUSED_THIRD_MAX_D
        nc = min(self.chunk_size, self.n)
        ncols = 1 + D + (self._pairs[0].size if cov else 0) + (self._triples[0].size if fused else 0)
        # the largest temporaries of a block: logits/weights (nc) and their moment sums (ncols) per query
        per_q = (nc + 2 * ncols + (D * D if cov else 0)) * 8
        qc = int(max(1, min(m, _BLOCK_BYTES // max(per_q, 1)))) if m else 1
        # one BLAS thread for skinny products; for tiny ones (one query block of a few rows over one data
        # chunk) the product is below OpenBLAS's threading threshold anyway and the switch would cost more
        # threading policy (issue 17): the products run on one BLAS thread, since OpenBLAS's threaded GEMM
        # does not give the same bits as its one-thread GEMM, and the results must not depend on the thread
        # count; several query blocks run instead on parallel Python threads (numpy releases the GIL; the
        # exp, argmax and small products parallelise too, not only the GEMMs). Tiny products (below
        # OpenBLAS's own threading threshold) skip the switch: they run on one thread anyway.
        if m > qc and getattr(self, "engine", "auto") == "auto" and _fused_exp.available(D):
            _fused_exp.kernel()   # compiled (or loaded) here, not in racing query threads
            _fused_merge.kernels()
        with _blas_single() if m * self.n * ncols > _TINY_WORK else contextlib.nullcontext():
            if m <= qc:  # one query block (small m): the pass's results are the outputs, no copies
                res = self._pass(xq, a, h, cov, fused, None)
                out_lp, out_mu, out_cov, out_idx, W_ = res[:5]
                out_wmax = 1.0 / W_
                out_k3 = central_third(res[6], out_mu, out_cov, self._triples, self._triple_index) if fused else \
                    (np.empty((m, D, D, D)) if third else None)
            else:
                out_lp = np.empty(m)
                out_mu = np.empty((m, D))
                out_cov = np.empty((m, D, D)) if cov else None
                out_k3 = np.empty((m, D, D, D)) if third else None
                out_idx = np.empty(m, dtype=np.int64)
                out_wmax = np.empty(m)
                top = None if eigh is True else int(eigh)   # k largest pairs only, or the full decomposition
                eig = ((np.empty((m, top or D)), np.empty((m, D, top or D)), top) if eigh and cov else None)
                # the chunks' moment columns are built once per call when they fit the cache budget
                cache = {} if self.n * ncols * 8 <= _columns.FEATURE_CACHE_BYTES else None
                _columns.prepare(self, cov, fused, cache)   # built once, before the blocks (not by two at once)
                # the blocks are fixed by the memory budget, never by the thread count: same bits for any
                # number of threads (tests/test_threads.py)
                _run_blocks(lambda sl: self._block(out_lp, out_mu, out_cov, out_k3, out_idx, out_wmax, sl, xq, a,
                                                   h, cov, fused, cache, eig),
                            _query_blocks(m, qc))
        if third:
            if not fused or self.precise is True:
                ie = np.arange(m)
            elif self.precise == "auto":
                ie = np.flatnonzero((out_wmax > 1.0 - 1e-2) | (a * a * self._r2 / h > _PRECISE_RATIO))
            else:
                ie = np.flatnonzero(out_wmax > 1.0 - 1e-2)
            if ie.size:
                with _blas_single():
                    out_k3[ie] = self._third_cumulant(x[ie], tt[ie])
        mean = out_mu + self.center[None, :]
        score = (a[:, None] * out_mu - xq) / h[:, None]
        _refuse_non_finite(out_lp, score, out_cov if cov else None, out_k3 if third else None, tt, h, self._radius)
        out = PosteriorMoments(t=tt, a=a, h=h, log_density=out_lp, mean=mean, score=score,
                               cov=out_cov, nearest=out_idx, max_weight=out_wmax, third=out_k3)
        out._eigh = eig[:2] if m > qc and eig is not None else None
        return out

    def _moments_one(self, x1, a, h, third, fixed=None):
        """The fast-path moments of :meth:`_moments` for one query (x1 (1, D), a and h (1,) its schedule values)
        when the data fit one chunk and the fused fast path applies (D <= 4, no precise sums, no two-pass third
        moment): ``(score (D,), cov (D, D), third (D, D, D) or None)``, the same arithmetic as the pass for
        that query (issue 17: the one-point projection calls it once per step). None where the general pass
        is needed (precise or two-pass sums, a non-finite result to refuse by name). ``fixed``, a dict kept by a
        caller whose a and h do not change between calls, holds the factors computed from them alone."""
        D, n = self.D, self.n
        f = fixed.get("one") if fixed is not None else None
        if f is None:
            ok = not (n > self.chunk_size or D > _FUSED_THIRD_MAX_D or self.precise is True or
                      float(h[0]) < _H_MIN or self._use_precise(a, h))
            f = (ok, a[:, None] * self.center[None, :], (a / h)[:, None], a * a / h, self._aug[:n].T)
            if fixed is not None:
                fixed["one"] = f
        ok, a_center, a_h, aa_h, aug_t = f
        if not ok:
            return None
        xq = x1 - a_center
        Q = np.empty((1, D + 1))   # _logits' product, with its factors computed once
        np.multiply(xq, a_h, out=Q[:, :D])
        Q[:, D] = aa_h
        e = Q @ aug_t
        jb = int(e.argmax())
        e -= e[0, jb]
        np.exp(e, out=e)
        xbar, F = self._chunk_features(0, n, True, bool(third), None)
        S = e @ F
        W = S[:, 0]
        w0 = float(W[0])
        if self.precise is not False and (w0 - 1.0) < 1e-2 * w0:
            return None   # nearly one-hot: the precise centred sums
        if 1.0 / w0 > 1.0 - 1e-2 and third:
            return None   # the two-pass third moment
        i2, j2 = self._pairs
        dm = S[:, 1:1 + D] / W[:, None]
        mu = xbar + dm
        C = S[:, 1 + D:1 + D + i2.size] - (W[:, None] * dm[:, i2]) * dm[:, j2]
        cov = (C / W[:, None])[:, self._pair_flat].reshape(1, D, D)
        score = (a[:, None] * mu - xq) / h[:, None]
        k3 = None
        total = float(np.add.reduce(score, axis=None)) + float(np.add.reduce(cov, axis=None))
        if third:
            R3 = shift_third(S[:, 1 + D + i2.size:], S[:, 1 + D:1 + D + i2.size], S[:, 1:1 + D], W, xbar,
                             plan=self._shift_plan(0, xbar))
            k3 = central_third(R3 / W[:, None], mu, cov, self._triples, self._triple_index)[0]
            total += float(np.add.reduce(k3, axis=None))
        if not math.isfinite(total):
            return None   # the general pass refuses it by name
        return score[0], cov[0], k3

    def _block(self, out_lp, out_mu, out_cov, out_k3, out_idx, out_wmax, sl, xq, a, h, cov, fused, cache=None,
               eig=None):
        res = self._pass(xq[sl], a[sl], h[sl], cov, fused, cache)
        out_lp[sl], out_mu[sl], c_, out_idx[sl], W_, _ = res[:6]
        out_wmax[sl] = 1.0 / W_
        if cov:
            out_cov[sl] = c_
            if eig is not None:   # this block's decompositions, on this query thread (one BLAS thread: see _moments)
                eig[0][sl], eig[1][sl] = np.linalg.eigh(c_) if eig[2] is None else top_eigh(c_, eig[2])
        if fused:
            out_k3[sl] = central_third(res[6], out_mu[sl], c_, self._triples, self._triple_index)

    def _use_precise(self, a, h) -> bool:
        if self.precise != "auto":
            return bool(self.precise)
        return bool((a * a * self._r2 / h).max() > _PRECISE_RATIO)

    def _chunk_features(self, n0, nc, want_cov, want_k3, cache=None):
        """Columns ``[1, y, y_i y_j (i <= j), y_i y_j y_k (i <= j <= k)]`` of a data chunk, y = x - chunk mean:
        one matrix product of the weights with them gives every weighted sum of the fast path at once
        (``_columns``: built once, kept on the object or in the call's ``cache``)."""
        return _columns.lookup(self, n0, nc, want_cov, want_k3, cache)

    def _shift_plan(self, n0, xbar):
        """``shift_plan`` of the chunk starting at n0 (origin: its mean xbar), kept on the object (D <= 4: small)."""
        plans = self.__dict__.setdefault("_shift_plans", {})
        plan = plans.get(n0)
        if plan is None or plan[0] is not xbar:
            plan = plans[n0] = (xbar, shift_plan(xbar, self._triples, self._pair_index))
        return plan[1]

    def _pass(self, xq, a, h, want_cov, want_k3=False, cache=None):
        """Stream over data chunks for a block of queries (centred coordinates).

        Per chunk: one matrix product for the logits, an in-place exp, and one matrix product of the
        weights with the chunk's moment columns (fast path), or the centred per-query sums (precise path).
        ``want_k3`` (with ``want_cov``) also returns the raw third moments about the data centre, summed
        with the same weights (``k3raw`` (q, D(D+1)(D+2)/6), normalised), for :meth:`moments`' ``third``.
        """
        q, D = xq.shape
        X = self._xc
        precise = want_cov and self._use_precise(a, h)
        # the running state starts as the first chunk's own sums (what the merge below gives from the empty
        # state: weights exp(-inf) = 0 and 1, the same bits without the arithmetic)
        M = W = mu = C = R3 = idx = None
        Cb = R3b = None
        inv_h = 1.0 / h
        nc = self.chunk_size
        ar = np.arange(q)
        i2, j2 = self._pairs
        fast_exp = getattr(self, "engine", "auto") == "auto" and _fused_exp.available(D)
        # the packed scatter and its merge in compiled sweeps, numpy's bits (``_fused_merge``)
        scatter, merge = _fused_merge.kernels() if fast_exp and want_cov else (None, None)
        for n0 in range(0, self.n, nc):
            Xb = X[n0:n0 + nc]
            e = self._logits(xq, a, h, n0, Xb)
            if fast_exp:   # the row maxima and exp(e - M) in one compiled sweep (``_fused_exp``)
                jb, Mb = _fused_exp.max_exp(e)
            else:
                jb = np.argmax(e, axis=1)
                Mb = e[ar, jb]
                e -= Mb[:, None]
                np.exp(e, out=e)
            xbar, F = self._chunk_features(n0, Xb.shape[0], want_cov, want_k3, cache)
            S = e @ F
            Wb = S[:, 0]
            dm = S[:, 1:1 + D] / Wb[:, None]  # chunk posterior mean - xbar
            mub = xbar + dm
            if want_cov:
                # the scatter is carried packed, as its unique entries i <= j (half the memory traffic of
                # the full matrices); the symmetric matrix is formed once at the end
                # S_ij - (W dm_i) dm_j, in place in one (q, pairs) buffer (the same products, the same bits)
                if scatter is not None:
                    Cb = np.empty((q, i2.size))
                    scatter(S, 1 + D, dm, Wb, i2, j2, Cb)
                else:
                    Cb = np.take(dm, i2, axis=1)
                    Cb *= Wb[:, None]
                    Cb *= np.take(dm, j2, axis=1)
                    np.subtract(S[:, 1 + D:1 + D + i2.size], Cb, out=Cb)
                # per query: the centred (precise) sum where the chunk's posterior is nearly one-hot
                # (mass off its top point < 1e-2: the covariance is small against R^2 and the one-product
                # form would lose its relative precision) or where h is small; one product otherwise
                sel = np.ones(q, dtype=bool) if precise else (Wb - 1.0) < 1e-2 * Wb
                if self.precise is False:
                    sel[:] = False
                ip = np.flatnonzero(sel)
                if ip.size:
                    mub[ip], Cf = centred_scatter(Xb, e[ip], Wb[ip], jb[ip], _BLOCK_BYTES)
                    Cb[ip] = Cf[:, i2, j2]
                if want_k3:
                    # raw third moments about the data centre: sum e y^3 with x = xbar + y
                    S3 = S[:, 1 + D + i2.size:]
                    R3b = shift_third(S3, S[:, 1 + D:1 + D + i2.size], S[:, 1:1 + D], Wb, xbar,
                                      plan=self._shift_plan(n0, xbar))
            if n0 == 0:
                M, W, mu, C, R3, idx = Mb, Wb, mub, Cb, R3b, jb
                continue
            # merge running state (a) with this chunk (b)
            Mn = np.maximum(M, Mb)
            fa = np.exp(M - Mn)
            fb = np.exp(Mb - Mn)
            Wa, Wbn = W * fa, Wb * fb
            Wt = Wa + Wbn
            delta = mub - mu
            mu = mu + delta * (Wbn / Wt)[:, None]
            if merge is not None:
                merge(C, Cb, fa, fb, delta, Wa * Wbn / Wt, i2, j2)
            elif want_cov:
                # C fa + Cb fb + ((Wa Wb / W) delta_i) delta_j, in place (C and Cb are this pass's own
                # buffers; the same operations in the same order as the expression, so the same bits)
                C *= fa[:, None]
                Cb *= fb[:, None]
                C += Cb
                dd = np.take(delta, i2, axis=1)
                dd *= (Wa * Wbn / Wt)[:, None]
                dd *= np.take(delta, j2, axis=1)
                C += dd
            if want_k3:
                R3 *= fa[:, None]
                R3b *= fb[:, None]
                R3 += R3b
            better = Mb > M
            idx = np.where(better, n0 + jb, idx)
            M, W = Mn, Wt
        # log p around the heaviest point: never forms |x'|^2/(2h)
        dstar = xq - a[:, None] * X[idx]
        lp = (-np.einsum("qd,qd->q", dstar, dstar) * 0.5 * inv_h + np.log(W)
              - np.log(self.n) - 0.5 * D * np.log(2.0 * np.pi * h))
        cov = None
        if want_cov:   # exactly symmetric: both (i, j) and (j, i) read the packed entry
            cov = (C / W[:, None])[:, self._pair_flat].reshape(q, D, D)
        if want_k3:
            return lp, mu, cov, idx, W, M, R3 / W[:, None]
        return lp, mu, cov, idx, W, M

    def _third_cumulant(self, x, tt):
        """:meth:`third_cumulant` on validated input: per query block and data chunk, ``sum_n (w d)_i (d_j d_k)``
        for the pairs j <= k as one product per query, ``(D, chunk) x (chunk, D(D+1)/2)`` (BLAS; the plain
        three-operand einsum it replaces ran 5-17x slower at D = 8-32), read back exactly symmetric
        (:mod:`rftheory.density._sym3`)."""
        m = x.shape[0]
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        xq = x - a[:, None] * self.center[None, :]
        D, nc = self.D, self.chunk_size
        P = D * (D + 1) // 2
        out = np.empty((m, D, D, D))
        qc = int(max(1, _BLOCK_BYTES // (8 * min(nc, self.n) * (2 * D + P))))
        for q0 in range(0, m, qc):
            sl = slice(q0, min(m, q0 + qc))
            xs, as_, hs = xq[sl], a[sl], h[sl]
            M, W, mu = self._normaliser(xs, as_, hs)
            acc = np.zeros((xs.shape[0], D, P))
            for n0 in range(0, self.n, nc):
                Xb = self._xc[n0:n0 + nc]
                w = np.exp(self._logits(xs, as_, hs, n0, Xb) - M[:, None]) / W[:, None]
                d = Xb[None, :, :] - mu[:, None, :]
                dd = _sym3.pair_products(d)
                d *= w[:, :, None]
                acc += np.matmul(d.transpose(0, 2, 1), dd)
            out[sl] = _sym3.symmetric(acc)
        return out

    def _logits(self, xq, a, h, n0, Xb):
        """Logits up to a per-query constant, ``(a x'.x_i - a^2 |x_i|^2 / 2)/h``, as the same single product
        that :meth:`_pass` uses (so the two agree to the last bit)."""
        Q = np.concatenate([xq * (a / h)[:, None], (a * a / h)[:, None]], axis=1)
        return Q @ self._aug[n0:n0 + Xb.shape[0]].T

    def _normaliser(self, xq, a, h):
        _, mu, _, _, W, M = self._pass(xq, a, h, False)
        return M, W, mu
