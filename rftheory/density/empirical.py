"""The smoothed empirical density ``p_t = (1/n) sum_i N(a_t x_i, h_t I)`` (docs/theory.md §1).

Everything is a function of the posterior weights ``w_i(x, t) = softmax_i(-|x - a_t x_i|^2 / (2 h_t))``:

    m_t(x)  = sum_i w_i x_i                       posterior mean (Tweedie)
    S_t(x)  = sum_i w_i (x_i - m)(x_i - m)^T       posterior covariance
    s*(x,t) = (a_t m_t - x) / h_t                  score
    H_t(x)  = -I/h_t + (a_t^2/h_t^2) S_t(x)        Hessian of log p_t (P1; derivations/p1_hessian.py)

Numerics (float64 throughout):

* The data are centred at their mean c once; queries become ``x' = x - a_t c`` (P2's translation law),
  so the inner products below are between vectors of the data's own spread, not its offset.
* The logits are evaluated as ``l~_i = (a x'.x_i - a^2|x_i|^2/2)/h``; the dropped ``-|x'|^2/(2h)`` is the
  same for every i, so softmax is unchanged and the work is one matrix product per chunk.
* One pass over chunks of the training set with a running maximum (the log-sum-exp of pspc's
  ``empirical_pmean``), merging weighted means and scatter matrices exactly (Chan et al.'s pairwise update),
  so memory is bounded by the chunk, not by n * m.
* ``log p`` is recomputed around the heaviest point: ``-|x' - a x_*|^2/(2h) + log sum_i e^{l~_i - l~_*}``, which
  never forms ``|x'|^2/(2h)`` (that would lose all digits at h = 1e-8).
* The scatter matrix is formed by one matrix product of ``e_i`` with ``x_i x_i^T`` (fast path) unless its
  cancellation error would matter: at small h (``a^2 R^2 / h`` > 1e4, R the largest distance of a data
  point from c) or where a query's posterior is nearly one-hot (mass off its top point < 1e-2, so the
  covariance is small against R^2). There the sums are centred per query at its heaviest point (precise
  path), which keeps the covariance's small eigenvalues, and so the ridge frame, to full relative precision.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from .._blas import blas_single as _blas_single, run_blocks as _run_blocks
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_points, per_point_times, single_query
from .._results import frame as _table, short_repr
from ._posterior_sums import central_third, centred_scatter, shift_third
from .schedules import OU, Schedule, get_schedule

__all__ = ["EmpiricalDensity", "PosteriorMoments"]

_EPS = np.finfo(np.float64).eps
# precise scatter when a^2 R^2 / h exceeds this (cancellation error eps * ratio <= ~2e-12 relative)
_PRECISE_RATIO = 1.0e4
# bytes allowed for the largest temporary of one (query chunk, data chunk) block
_BLOCK_BYTES = 8 * 2**20
# moment columns of all chunks are kept for the duration of one moments() call up to this size
_FEATURE_CACHE_BYTES = 256 * 2**20
# ... and kept on the density object across calls up to this total
_FEATURE_KEEP_BYTES = 64 * 2**20
# the third moment comes from the same pass (one product with the data's cubes) up to this dimension
_FUSED_THIRD_MAX_D = 4
# m * n * columns below which the moment product of one call skips the one-BLAS-thread switch: OpenBLAS runs
# products under 4 * 65536 multiply-adds on one thread by itself, and the switch costs a few microseconds
_TINY_WORK = 4 * 65536


@dataclass
class PosteriorMoments:
    """One streaming pass of the posterior over the training set at m query points (:meth:`EmpiricalDensity.moments`).

    Attributes
    ----------
    t, a, h : numpy.ndarray, shape (m,)
        Time, signal scale, noise variance at each query.
    log_density : numpy.ndarray, shape (m,)
        ``log p_t(x)`` (-inf where p_t(x) underflows float64; ``log_density()`` refuses that).
    mean : numpy.ndarray, shape (m, D)
        Posterior mean ``m_t(x)`` (length).
    score : numpy.ndarray, shape (m, D)
        ``s*(x, t) = (a m - x)/h`` (1/length).
    cov : numpy.ndarray, shape (m, D, D), or None
        Posterior covariance (length^2), if requested.
    nearest : numpy.ndarray of int, shape (m,)
        Index of the training point of largest weight.
    max_weight : numpy.ndarray, shape (m,)
        Its weight.
    third : numpy.ndarray, shape (m, D, D, D), or None
        Posterior third central moment (length^3), if requested.
    """

    t: np.ndarray
    a: np.ndarray
    h: np.ndarray
    log_density: np.ndarray
    mean: np.ndarray
    score: np.ndarray
    cov: np.ndarray | None
    nearest: np.ndarray
    max_weight: np.ndarray
    third: np.ndarray | None = None

    __repr__ = short_repr

    def to_frame(self):
        """One row per query: t, a, h, log_density, nearest, max_weight, mean_k, score_k.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas (an optional dependency: ``pip install "rftheory[frames]"``) is not installed.
        """
        return _table({"t": self.t, "a": self.a, "h": self.h, "log_density": self.log_density,
                      "nearest": self.nearest, "max_weight": self.max_weight, "mean": self.mean,
                      "score": self.score}, "query")

    @property
    def hessian(self) -> np.ndarray:
        """(m, D, D) Hessian of log p_t, ``-I/h + (a^2/h^2) cov`` (P1)."""
        if self.cov is None:
            raise ValueError("hessian needs the posterior covariance: call moments(..., cov=True)")
        D = self.cov.shape[-1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # handled below
            c = (self.a * self.a / (self.h * self.h))[:, None, None]
            H = c * self.cov - np.eye(D)[None] / self.h[:, None, None]
        big = ~np.isfinite(c[:, 0, 0])
        if big.any():      # a^2/h^2 overflows below t ~ 1e-154 while (a/h) ((a/h) cov) may be finite
            r = (self.a[big] / self.h[big])[:, None, None]
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float64: refused just below
                H[big] = r * (r * self.cov[big]) - np.eye(D)[None] / self.h[big][:, None, None]
        _require_finite(H.reshape(H.shape[0], -1), "the Hessian", self.t, self.h)
        return H


def _all_finite(values) -> bool:
    """True if every entry is finite: one reduction (a finite sum proves it; an overflowing sum of finite
    values says nothing, and the caller then checks entry by entry)."""
    return math.isfinite(float(np.add.reduce(values, axis=None)))


_H_MIN = 1.0 / np.finfo(np.float64).max   # below it 1/h_t is not a float64


def _require_finite(values, what: str, tt, h, scale=None) -> None:
    """ValueError, naming the first query, if ``values`` (m, ...) holds NaN or inf: float64 cannot represent
    the result at that time for the data's (or the query's) scale. The library never returns them silently."""
    if _all_finite(values):
        return
    bad = ~np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" (data radius {scale:.3g})" if scale is not None else ""
        raise ValueError(f"{what} at t = {tt[i]:.3g} (h_t = {h[i]:.3g}) for query x[{i}] is not representable in "
                         f"float64{where}: t is below what float64 resolves at this scale, or the data or query "
                         f"are too large; use a larger t or rescale the data")


class EmpiricalDensity:
    """Smoothed empirical density of a finite training set under a forward schedule.

    Parameters
    ----------
    data : (n, D) array_like
        Training points (finite).
    schedule : Schedule or str, default OU()
        Forward process giving a_t and h_t.
    chunk_size : int, default 2048
        Training points per streaming chunk; memory scales with it, not with n.
    precise : {"auto", True, False}
        Scatter-matrix path: "auto" switches to the per-query centred sum at small h (see module doc).

    Attributes
    ----------
    data : numpy.ndarray, shape (n, D)
        The training set (a read-only float64 copy).
    n, D : int
        Number of training points and dimension.
    schedule : Schedule
        The forward process.

    Raises
    ------
    ValueError
        If ``data`` is empty, not 2-D or not finite, ``chunk_size`` is not a positive integer or
        ``precise`` is not one of its values.
    TypeError
        If ``data`` is not numeric.

    Notes
    -----
    It is a score field (docs/design.md §3.1): ``score``, ``hessian``, ``score_and_hessian``,
    ``log_density``, ``posterior_mean``, ``posterior_cov`` take x of shape (m, D) and t a scalar or (m,); a
    single point of shape (D,) returns results without the query axis, as scipy does ((D,), (D, D), a
    float). :meth:`moments` always returns the batch. The formulas are in docs/theory.md §1.

    Examples
    --------
    >>> import numpy as np
    >>> from rftheory import EmpiricalDensity
    >>> p = EmpiricalDensity(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    >>> p.score(np.array([0.0, 0.5]), 0.3).shape
    (2,)
    >>> p.hessian(np.zeros((4, 2)), 0.3).shape
    (4, 2, 2)
    """

    def __init__(self, data: ArrayLike, schedule: Schedule | str | None = None, chunk_size: int = 2048,
                 precise: str | bool = "auto"):
        self.data = as_data(data, "data")
        self.data.setflags(write=False)
        self.n, self.D = self.data.shape
        self.schedule = OU() if schedule is None else get_schedule(schedule)
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
        self.chunk_size = int(chunk_size)
        if precise not in ("auto", True, False):
            raise ValueError(f"precise must be 'auto', True or False; got {precise!r}")
        self.precise = precise
        self.center = self.data.mean(axis=0)
        self._xc = self.data - self.center
        self._sq = np.einsum("nd,nd->n", self._xc, self._xc)
        self._r2 = float(self._sq.max())
        if not np.isfinite(self._r2):
            raise ValueError("data: squared distances from the data's mean overflow float64 (largest |x_i - mean| "
                             f"~ {np.abs(self._xc).max():.3g}); rescale the data")
        self._radius = float(np.sqrt(self._r2))
        # logits of a chunk as one product: [a x'/h, a^2/h] . [x_i, -|x_i|^2/2]
        self._feat_cache, self._feat_bytes = {}, 0
        self._aug = np.concatenate([self._xc, -0.5 * self._sq[:, None]], axis=1)
        D = self.D
        self._pairs = np.triu_indices(D)
        self._pair_index = np.zeros((D, D), dtype=np.intp)
        self._pair_index[self._pairs] = np.arange(self._pairs[0].size)
        self._pair_index[self._pairs[1], self._pairs[0]] = np.arange(self._pairs[0].size)
        ii, jj, kk = np.meshgrid(np.arange(D), np.arange(D), np.arange(D), indexing="ij")
        keep = (ii <= jj) & (jj <= kk)
        self._triples = (ii[keep], jj[keep], kk[keep])
        # column of the sorted (i, j, k) among the triples, and of (i, j) among the pairs, for every index
        srt = np.sort(np.stack([ii, jj, kk]), axis=0)
        pos = np.zeros((D, D, D), dtype=np.intp)
        pos[self._triples] = np.arange(self._triples[0].size)
        self._triple_index = pos[srt[0], srt[1], srt[2]]
        self._pair_flat = self._pair_index.ravel()

    def __repr__(self):
        return f"EmpiricalDensity(n={self.n}, D={self.D}, schedule={self.schedule.name})"

    # ------------------------------------------------------------------ core pass
    def moments(self, x: ArrayLike, t: ArrayLike, cov: bool = False, third: bool = False) -> PosteriorMoments:
        """Log-density, posterior mean, score (and covariance if ``cov``) in one streaming pass.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (a single point is treated as m = 1; the result keeps its batch axis).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.
        cov : bool, default False
            Also compute the posterior covariance (needed for the Hessian).
        third : bool, default False
            Also compute the posterior third central moment (implies ``cov``).

        Returns
        -------
        PosteriorMoments
            Arrays with a leading query axis of length m (see its docstring for shapes and units).

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).

        Notes
        -----
        ``third`` also returns the posterior third central moment (implies ``cov``), as used by the Newton
        step of the ridge projection. For D <= 4 it comes from the same pass (raw third moments summed with
        the same weights, then centred: absolute error ~ eps R^3, R the data radius); queries where that
        could matter against the moment itself (the precise path: small h or a nearly one-hot posterior),
        and every query for D > 4, get the cancellation-free two-pass :meth:`third_cumulant`.
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._moments(x, tt, cov, third)

    def _moments(self, x, tt, cov=False, third=False) -> PosteriorMoments:
        """:meth:`moments` on validated input (x (m, D) finite float64, tt (m,) in the domain): the library's
        inner loops (ridge projection, tracing) call this once per step, the public call validates once."""
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
                # the chunks' moment columns are built once per call when they fit the cache budget
                cache = {} if self.n * ncols * 8 <= _FEATURE_CACHE_BYTES else None
                # the blocks are fixed by the memory budget, never by the thread count: same bits for any
                # number of threads (tests/test_threads.py)
                _run_blocks(lambda sl: self._block(out_lp, out_mu, out_cov, out_k3, out_idx, out_wmax, sl, xq, a,
                                                   h, cov, fused, cache),
                            [slice(q0, min(m, q0 + qc)) for q0 in range(0, m, qc)])
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
        # log p may be -inf where p_t underflows (a query far from the data): log_density() refuses that,
        # while the score there is finite and usable; NaN is refused everywhere
        total = float(np.add.reduce(out_lp)) + float(np.add.reduce(score, axis=None))
        if cov:
            total += float(np.add.reduce(out_cov, axis=None))
        if third:
            total += float(np.add.reduce(out_k3, axis=None))
        if not math.isfinite(total):   # a finite total proves every entry finite; else check each by name
            if not _all_finite(out_lp):
                _require_finite(np.where(out_lp == -np.inf, 0.0, out_lp)[:, None], "log p_t", tt, h, self._radius)
            _require_finite(score, "the score", tt, h, self._radius)
            if cov:
                _require_finite(out_cov, "the posterior covariance", tt, h, self._radius)
            if third:
                _require_finite(out_k3, "the posterior third moment", tt, h, self._radius)
        return PosteriorMoments(t=tt, a=a, h=h, log_density=out_lp, mean=mean, score=score,
                                cov=out_cov, nearest=out_idx, max_weight=out_wmax, third=out_k3)

    def _block(self, out_lp, out_mu, out_cov, out_k3, out_idx, out_wmax, sl, xq, a, h, cov, fused, cache=None):
        res = self._pass(xq[sl], a[sl], h[sl], cov, fused, cache)
        out_lp[sl], out_mu[sl], c_, out_idx[sl], W_, _ = res[:6]
        out_wmax[sl] = 1.0 / W_
        if cov:
            out_cov[sl] = c_
        if fused:
            out_k3[sl] = central_third(res[6], out_mu[sl], c_, self._triples, self._triple_index)

    def _use_precise(self, a, h) -> bool:
        if self.precise != "auto":
            return bool(self.precise)
        return bool(np.max(a * a * self._r2 / h) > _PRECISE_RATIO)

    def _chunk_features(self, n0, nc, want_cov, want_k3, cache=None):
        """Columns ``[1, y, y_i y_j (i <= j), y_i y_j y_k (i <= j <= k)]`` of a data chunk, y = x - chunk mean:
        one matrix product of the weights with them gives every weighted sum of the fast path at once."""
        key = (n0, nc, want_cov, want_k3)
        if key in self._feat_cache:
            return self._feat_cache[key]
        if cache is not None and n0 in cache:
            return cache[n0]
        Xb = self._xc[n0:n0 + nc]
        xbar = Xb.mean(axis=0)
        Y = Xb - xbar
        cols = [np.ones((Y.shape[0], 1)), Y]
        if want_cov:
            i2, j2 = self._pairs
            cols.append(Y[:, i2] * Y[:, j2])
        if want_k3:
            i3, j3, k3 = self._triples
            cols.append(Y[:, i3] * Y[:, j3] * Y[:, k3])
        out = xbar, np.concatenate(cols, axis=1)
        nb = out[1].nbytes
        if self._feat_bytes + nb <= _FEATURE_KEEP_BYTES:  # kept on the object (read-only data)
            self._feat_cache[key] = out
            self._feat_bytes += nb
        elif cache is not None:
            cache[n0] = out
        return out

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
        for n0 in range(0, self.n, nc):
            Xb = X[n0:n0 + nc]
            e = self._logits(xq, a, h, n0, Xb)
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
                S2 = S[:, 1 + D:1 + D + i2.size]
                Cb = S2[:, self._pair_flat].reshape(q, D, D)  # the symmetric matrix from its unique entries
                Cb -= Wb[:, None, None] * dm[:, :, None] * dm[:, None, :]
                # per query: the centred (precise) sum where the chunk's posterior is nearly one-hot
                # (mass off its top point < 1e-2: the covariance is small against R^2 and the one-product
                # form would lose its relative precision) or where h is small; one product otherwise
                sel = np.ones(q, dtype=bool) if precise else (Wb - 1.0) < 1e-2 * Wb
                if self.precise is False:
                    sel[:] = False
                ip = np.flatnonzero(sel)
                if ip.size:
                    mub[ip], Cb[ip] = centred_scatter(Xb, e[ip], Wb[ip], jb[ip], _BLOCK_BYTES)
                if want_k3:
                    # raw third moments about the data centre: sum e y^3 with x = xbar + y
                    S3 = S[:, 1 + D + i2.size:]
                    R3b = shift_third(S3, S[:, 1 + D:1 + D + i2.size], S[:, 1:1 + D], Wb, xbar, self._triples,
                                      self._pair_index)
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
            if want_cov:
                C = C * fa[:, None, None] + Cb * fb[:, None, None] \
                    + (Wa * Wbn / Wt)[:, None, None] * delta[:, :, None] * delta[:, None, :]
            if want_k3:
                R3 = R3 * fa[:, None] + R3b * fb[:, None]
            better = Mb > M
            idx = np.where(better, n0 + jb, idx)
            M, W = Mn, Wt
        # log p around the heaviest point: never forms |x'|^2/(2h)
        dstar = xq - a[:, None] * X[idx]
        lp = (-np.einsum("qd,qd->q", dstar, dstar) * 0.5 * inv_h + np.log(W)
              - np.log(self.n) - 0.5 * D * np.log(2.0 * np.pi * h))
        cov = None
        if want_cov:
            cov = C / W[:, None, None]
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        if want_k3:
            return lp, mu, cov, idx, W, M, R3 / W[:, None]
        return lp, mu, cov, idx, W, M

    # ------------------------------------------------------------------ score-field interface
    @single_query
    def log_density(self, x: ArrayLike, t: ArrayLike) -> np.ndarray | float:
        """The log-density ``log p_t(x)``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m,), or float
            ``log p_t(x)`` (log of 1/length^D); a float for a single (D,) query.
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, t lies outside the schedule's domain or has the
            wrong shape, or p_t(x) underflows float64 (log p_t would be -inf).
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t)
        _require_finite(mom.log_density, "log p_t", mom.t, mom.h, float(np.sqrt(self._r2)))
        return mom.log_density

    @single_query
    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The exact score ``s*(x, t) = grad log p_t(x) = (a_t m_t(x) - x)/h_t``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            The score (1/length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t).score

    @single_query
    def hessian(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The Hessian of ``log p_t``, ``H = -I/h_t + (a_t^2/h_t^2) Cov[x_0 | x]`` (P1, docs/theory.md §1).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            Symmetric Hessians (1/length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t, cov=True).hessian

    @single_query
    def score_and_hessian(self, x: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The score and the Hessian from one streaming pass (what the ridge code calls).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        score : numpy.ndarray, shape (m, D), or (D,) for a single query
            As :meth:`score` (1/length).
        hessian : numpy.ndarray, shape (m, D, D), or (D, D) for a single query
            As :meth:`hessian` (1/length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t, cov=True)
        return mom.score, mom.hessian

    @single_query
    def posterior_mean(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior mean ``m_t(x) = E[x_0 | x_t = x]`` (Tweedie's denoiser, in data units).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            Posterior means (length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t).mean

    @single_query
    def posterior_cov(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior covariance ``Cov[x_0 | x_t = x]``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            Symmetric positive semi-definite covariances (length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t, cov=True).cov

    @single_query
    def denoiser(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The target ``a_t m_t(x)`` of the posterior-mean parametrization.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            ``a_t`` times the posterior mean (length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t)
        return mom.a[:, None] * mom.mean

    @single_query
    def third_cumulant(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior third central moment ``E[(x_0 - m)^{(x)3} | x]``.

        Two passes: the first fixes the running maximum, normaliser and mean; the second sums the centred cubes
        with the final weights (no merge formula needed, no cancellation).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            Symmetric tensors (length^3).

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._third_cumulant(x, tt)

    def _third_cumulant(self, x, tt):
        """:meth:`third_cumulant` on validated input."""
        m = x.shape[0]
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        xq = x - a[:, None] * self.center[None, :]
        D, nc = self.D, self.chunk_size
        out = np.empty((m, D, D, D))
        qc = int(max(1, _BLOCK_BYTES // (8 * min(nc, self.n) * D * 2)))
        for q0 in range(0, m, qc):
            sl = slice(q0, min(m, q0 + qc))
            xs, as_, hs = xq[sl], a[sl], h[sl]
            M, W, mu = self._normaliser(xs, as_, hs)
            acc = np.zeros((xs.shape[0], D, D, D))
            for n0 in range(0, self.n, nc):
                Xb = self._xc[n0:n0 + nc]
                w = np.exp(self._logits(xs, as_, hs, n0, Xb) - M[:, None]) / W[:, None]
                d = Xb[None, :, :] - mu[:, None, :]
                # a fixed contraction (no einsum path search per call): (w d)_i d_j d_k summed over n
                acc += np.einsum("qni,qnj,qnk->qijk", d * w[:, :, None], d, d)
            out[sl] = acc
        return out

    @single_query
    def hessian_derivative(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """``dH_ij/dx_k = (a^3/h^3) kappa3_ijk``: the derivative of P1, the third derivative of log p_t.

        Used by the Newton projection onto the ridge and by the frame-turning rate of T2.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            1/length^3.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        k3 = self._third_cumulant(x, tt)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # handled below
            out = ((a / h) ** 3)[:, None, None, None] * k3
            big = ~np.isfinite((a / h) ** 3)
        if big.any():      # (a/h)^3 overflows below t ~ 1e-103 while c (c (c k3)) may be finite
            c = (a[big] / h[big])[:, None, None, None]
            out[big] = c * (c * (c * k3[big]))
        _require_finite(out, "the Hessian derivative", tt, h, float(np.sqrt(self._r2)))
        return out

    def _logits(self, xq, a, h, n0, Xb):
        """Logits up to a per-query constant, ``(a x'.x_i - a^2 |x_i|^2 / 2)/h``, as the same single product
        that :meth:`_pass` uses (so the two agree to the last bit)."""
        Q = np.concatenate([xq * (a / h)[:, None], (a * a / h)[:, None]], axis=1)
        return Q @ self._aug[n0:n0 + Xb.shape[0]].T

    def _normaliser(self, xq, a, h):
        _, mu, _, _, W, M = self._pass(xq, a, h, False)
        return M, W, mu

    @single_query
    def weights(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior weights ``w_i(x, t)`` over the training set, as a dense matrix (for moderate n).

        The other methods stream over the data; this one holds (m, n) at once.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, n), or (n,) for a single (D,) query
            Non-negative, each row summing to 1.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        xq = x - a[:, None] * self.center[None, :]
        lt = ((xq @ self._xc.T) * (a / h)[:, None]
              - np.outer(0.5 * a * a / h, self._sq))
        lt -= lt.max(axis=1, keepdims=True)
        w = np.exp(lt)
        return w / w.sum(axis=1, keepdims=True)

    def sample(self, t: float, size: int, rng: RngLike = None) -> np.ndarray:
        """Exact draws from p_t: pick a training point uniformly, scale by a_t and add N(0, h_t I) noise.

        Parameters
        ----------
        t : float
            Time in the schedule's domain.
        size : int
            Number of draws.
        rng : None, int, SeedSequence or numpy.random.Generator, optional
            Source of randomness; None draws from a fresh generator (docs/design.md §5).

        Returns
        -------
        numpy.ndarray, shape (size, D)
            The draws (length).

        Raises
        ------
        ValueError
            If t is outside the schedule's domain or size is negative.
        TypeError
            If rng is not one of the accepted types.
        """
        from .._checks import as_generator, check_positive_int

        rng = as_generator(rng)
        size = check_positive_int(size, "size", minimum=0)
        tt = self.schedule.check_t(t)
        if tt.ndim:
            raise ValueError(f"t must be a scalar here; got shape {tt.shape}")
        tt = float(tt)
        a, h = float(self.schedule._a(np.float64(tt))), float(self.schedule._h(np.float64(tt)))
        i = rng.integers(0, self.n, size=int(size))
        return a * self.data[i] + np.sqrt(h) * rng.standard_normal((int(size), self.D))
