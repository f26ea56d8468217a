"""A compiled, fused posterior pass for :class:`rftheory.EmpiricalDensity` at small D (issue 17), used when the
optional ``numba`` is installed (``pip install "rftheory[fast]"``; ``EmpiricalDensity(engine=...)``).

Why: on an AVX2 CPU numpy's float64 ``exp`` is scalar libm (5.6-8.5 ns per entry), ~70 % of a ridge-projection
pass at D = 2, and an exact per-query cut of the posterior (dropped mass below 1e-16 relative) keeps 72-82 % of
the (query, point) pairs of the ridge benchmark (h = 0.04 on a unit circle: most points are within the cut), so
fewer exps cannot give the needed 2x. This pass computes the same quantities with one compiled loop per query,
three sweeps over the n points, all in cache:

1. the logits ``l_i = (a/h) x'.x_i - (a^2/h) |x_i|^2/2`` (the same formula as the numpy pass), their maximum M and
   its first index (the heaviest point, as ``np.argmax``);
2. ``w_i = exp(l_i - M)`` by :func:`_exp_le0` (below), ``W = sum w_i`` and the mean ``m = sum w_i x_i / W``;
3. (``cov``/``third``) the centred sums ``sum w_i (x_i - m)^{(x)2}`` and ``^{(x)3}`` about the EXACT mean: no
   cancellation, so the covariance and third moment are as precise as the numpy pass's precise path
   (``precise=True``) everywhere, without its extra pass.

``log p`` is formed around the heaviest point as in the numpy pass. Each query is computed alone, in a fixed
order, so the bits do not depend on the query blocks or the thread count.

The exponential :func:`_exp_le0` (for x <= 0): ``x = k ln2 + r`` with ``k = round(x / ln2)``, ``|r| <= ln2/2``,
Cody-Waite with fdlibm's two-part ln2 (``k ln2_hi`` exact for |k| < 2^21), ``e^r`` by the Taylor polynomial of
degree 13 in Horner form (truncation ``(ln2/2)^14/14! < 5e-18`` relative), times ``2^k`` assembled from its bits
(for results below 2^-1000 the factor 2^-64 moves into the polynomial, so subnormal results round once, as
libm's do). Its error against libm's ``exp`` is at most 1 ulp (of the subnormal grid below 2^-1022) over
[-746, 0] (``tests/test_fused_pass.py``); below -746 it returns 0, as libm does. Results therefore differ from
the numpy pass at the level of round-off (bounded in the tests), never more.
"""
from __future__ import annotations

import math
import os

import numpy as np

# optional: numba is imported on the first use of the pass (importing it costs ~1-2 s; ``import rftheory`` should
# not pay that), and only looked up (no import) to answer :func:`installed`
_STATE = {"installed": None, "compiled": False}

# dimensions up to which the fused pass is used (its third-moment sums grow as D^3 per point, like the GEMM's)
MAX_D = 4
# ... and up to which engine="auto" picks it. Measured (n = m = 2000, t = 0.3, third=True, one thread, CPU time,
# loaded machine): 2.5x / 2.9x faster than the numpy pass at D = 1 / 2, 1.07x at D = 3, 0.9x at D = 4 (the
# general-D loops are not written out); so the numpy pass stays the default from D = 3 on
AUTO_MAX_D = 2
_QUERY_BLOCK = 256   # queries per block on the query threads (fixed: the bits never depend on the blocks)

_LN2_HI = 6.93147180369123816490e-01   # fdlibm: the high part has 21 trailing zero bits
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_X_MIN = -746.0                        # below: 0, as libm's exp (e^-746 < 2^-1075, half the least subnormal)
_TWO_M64 = 2.0 ** -64                  # results below 2^-1000: 2^(k+64) from the bits, the 2^-64 in the polynomial
_INV_FACT = tuple(1.0 / math.factorial(k) for k in range(14))


def installed() -> bool:
    """True if numba is installed (looked up once, not imported)."""
    if _STATE["installed"] is None:
        import importlib.util

        _STATE["installed"] = importlib.util.find_spec("numba") is not None
    return _STATE["installed"]


def available() -> bool:
    """True if the compiled pass can run (numba installed and not disabled by ``RFTHEORY_NUMBA=0``)."""
    return os.environ.get("RFTHEORY_NUMBA", "1") != "0" and installed()


_SHIFTER = 6755399441055744.0          # 1.5 * 2^52: x + _SHIFTER rounds x to an integer in the low mantissa bits
_SHIFTER_BITS = int(np.float64(_SHIFTER).view(np.int64))


def _exp_rows_py(buf, tb, M):
    """``buf[j] <- exp(buf[j] - M)``: :func:`_exp_parts` and the product of its two parts."""
    _exp_parts(buf, tb, M)
    for j in range(buf.shape[0]):
        buf[j] = buf[j] * tb[j]


def _exp_parts_py(buf, tb, M):
    """``exp(buf[j] - M) = buf[j] * tb[j]`` on return (the caller forms the product, possibly fused with its
    sums); ``buf[j] <- exp(buf[j] - M)`` (arguments <= 0) by the exponential of the module doc, in three loops that
    the compiler vectorises: the reduction and the polynomial in float64, then ``2^k`` assembled from its bits
    (k, read from the low mantissa bits of ``x / ln2 + 1.5 * 2^52``, is exact: |k| <= 1022)."""
    n = buf.shape[0]
    c = _INV_FACT
    for j in range(n):
        x = buf[j] - M
        xc = _X_MIN if x < _X_MIN else x      # a NaN stays NaN (and is refused after the pass)
        t = xc * _INV_LN2 + _SHIFTER
        kf = t - _SHIFTER
        r = (xc - kf * _LN2_HI) - kf * _LN2_LO
        p = c[13]
        p = p * r + c[12]
        p = p * r + c[11]
        p = p * r + c[10]
        p = p * r + c[9]
        p = p * r + c[8]
        p = p * r + c[7]
        p = p * r + c[6]
        p = p * r + c[5]
        p = p * r + c[4]
        p = p * r + c[3]
        p = p * r + c[2]
        p = p * r + c[1]
        p = p * r + c[0]
        # for k < -1000 the scale 2^k would leave the normal range: 2^-64 goes into p (exact) and 2^(k+64)
        # into the scale, so the product rounds once, to the subnormal grid, as libm's exp does
        p = p * (_TWO_M64 if kf < -1000.0 else 1.0)
        buf[j] = 0.0 if x < _X_MIN else p
        tb[j] = t
    ti = tb.view(np.int64)
    for j in range(n):
        k = ti[j] - _SHIFTER_BITS
        ti[j] = (k + (1023 + 64 if k < -1000 else 1023)) << 52


def _exp_array_py(x, out, tb):
    for j in range(x.shape[0]):
        out[j] = x[j]
    _exp_rows(out, tb, 0.0)


def _max_py(buf):
    """max(buf) with four independent running maxima (a NaN anywhere makes the result NaN or is carried into
    the weights, which are refused after the pass)."""
    n = buf.shape[0]
    m0 = m1 = m2 = m3 = buf[0]
    n4 = n - n % 4
    for j in range(0, n4, 4):
        m0 = buf[j] if buf[j] > m0 else m0
        m1 = buf[j + 1] if buf[j + 1] > m1 else m1
        m2 = buf[j + 2] if buf[j + 2] > m2 else m2
        m3 = buf[j + 3] if buf[j + 3] > m3 else m3
    for j in range(n4, n):
        m0 = buf[j] if buf[j] > m0 else m0
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


def _sums2_py(YT, w, sc, i, want_cov, want_k3, lp, mu, cov, k3, W_out):
    """The sums of :func:`_pass` for D = 2 written out (the same quantities, one loop per stage); the weights
    are formed first as ``w * sc`` (the two parts of :func:`_exp_parts`)."""
    n = w.shape[0]
    W = s0 = s1 = 0.0
    for j in range(n):
        wj = w[j] * sc[j]
        w[j] = wj
        W += wj
        s0 += wj * YT[0, j]
        s1 += wj * YT[1, j]
    m0 = s0 / W
    m1 = s1 / W
    W_out[i] = W
    lp[i] = math.log(W)
    mu[i, 0] = m0
    mu[i, 1] = m1
    if not want_cov:
        return
    c00 = c01 = c11 = 0.0
    t000 = t001 = t011 = t111 = 0.0
    if want_k3:
        for j in range(n):
            z0 = YT[0, j] - m0
            z1 = YT[1, j] - m1
            a0 = w[j] * z0
            a1 = w[j] * z1
            b00 = a0 * z0
            b01 = a0 * z1
            b11 = a1 * z1
            c00 += b00
            c01 += b01
            c11 += b11
            t000 += b00 * z0
            t001 += b00 * z1
            t011 += b01 * z1
            t111 += b11 * z1
    else:
        for j in range(n):
            z0 = YT[0, j] - m0
            z1 = YT[1, j] - m1
            a0 = w[j] * z0
            c00 += a0 * z0
            c01 += a0 * z1
            c11 += w[j] * z1 * z1
    cov[i, 0, 0] = c00 / W
    cov[i, 0, 1] = cov[i, 1, 0] = c01 / W
    cov[i, 1, 1] = c11 / W
    if want_k3:
        k3[i, 0, 0, 0] = t000 / W
        k3[i, 0, 0, 1] = k3[i, 0, 1, 0] = k3[i, 1, 0, 0] = t001 / W
        k3[i, 0, 1, 1] = k3[i, 1, 0, 1] = k3[i, 1, 1, 0] = t011 / W
        k3[i, 1, 1, 1] = t111 / W


def _pass_py(YT, nsq, xq, a, h, want_cov, want_k3, buf, tb, Z, lp, mu, cov, k3, idx, W_out):
    """One block of queries: see the module doc. ``YT`` (D, n) centred data (transposed: every inner loop runs
    over the n points), ``nsq`` (n,) ``-|y|^2/2``, ``xq`` (q, D) centred queries; scratch ``buf``, ``tb`` (n,),
    ``Z`` (D, n); outputs ``lp`` (``log W``), ``mu`` (q, D) centred mean, ``cov`` (q, D, D), ``k3``
    (q, D, D, D), ``idx`` (q,) heaviest point, ``W_out`` (q,) ``W = sum exp(l - M)``."""
    D, n = YT.shape
    nq = xq.shape[0]
    for i in range(nq):
        ca = a[i] / h[i]
        cb = a[i] * a[i] / h[i]
        if D == 2:   # one loop per stage with all sums at once (the ridge benchmark's case)
            q0 = xq[i, 0] * ca
            q1 = xq[i, 1] * ca
            for j in range(n):
                buf[j] = cb * nsq[j] + q0 * YT[0, j] + q1 * YT[1, j]
        else:
            for j in range(n):
                buf[j] = cb * nsq[j]
            for d in range(D):
                qd = xq[i, d] * ca
                for j in range(n):
                    buf[j] += qd * YT[d, j]
        M = _max(buf)
        jm = 0
        while jm < n - 1 and not (buf[jm] >= M):
            jm += 1
        idx[i] = jm
        if D == 2:
            _exp_parts(buf, tb, M)
            _sums2(YT, buf, tb, i, want_cov, want_k3, lp, mu, cov, k3, W_out)
            continue
        _exp_rows(buf, tb, M)
        W = 0.0
        for j in range(n):
            W += buf[j]
        W_out[i] = W
        lp[i] = math.log(W)
        for d in range(D):
            s = 0.0
            for j in range(n):
                s += buf[j] * YT[d, j]
            mu[i, d] = s / W
        if want_cov:
            for d in range(D):
                md = mu[i, d]
                for j in range(n):
                    Z[d, j] = YT[d, j] - md
            for d in range(D):
                for e in range(d, D):
                    s = 0.0
                    for j in range(n):
                        s += buf[j] * Z[d, j] * Z[e, j]
                    v = s / W
                    cov[i, d, e] = v
                    cov[i, e, d] = v
                    if want_k3:
                        for f in range(e, D):
                            s = 0.0
                            for j in range(n):
                                s += buf[j] * Z[d, j] * Z[e, j] * Z[f, j]
                            v = s / W
                            k3[i, d, e, f] = v
                            k3[i, d, f, e] = v
                            k3[i, e, d, f] = v
                            k3[i, e, f, d] = v
                            k3[i, f, d, e] = v
                            k3[i, f, e, d] = v


# reassociation (vectorised sums) and contraction (FMA) only: no assumption that values are finite, so an
# overflow still shows as inf/NaN and is refused by name after the pass
_FLAGS = {"reassoc", "contract"}
# until _compile() runs, the names are the plain-Python functions (the same arithmetic, very slow)
_exp_parts, _exp_rows, _exp_array, _pass, _max, _sums2 = (_exp_parts_py, _exp_rows_py, _exp_array_py, _pass_py,
                                                          _max_py, _sums2_py)


def _compile() -> None:
    """Import numba and bind the module's kernel names to their compiled versions (once; numba compiles each on
    its first call, or loads it from its cache). The kernels call each other through these global names."""
    global _exp_parts, _exp_rows, _exp_array, _pass, _max, _sums2
    if _STATE["compiled"]:
        return
    import numba as nb

    # the exponential without reassociation: it would fold (t + 1.5 2^52) - 1.5 2^52 back into t
    _exp_parts = nb.njit(nogil=True, cache=True, fastmath={"contract"})(_exp_parts_py)
    _exp_rows = nb.njit(nogil=True, cache=True)(_exp_rows_py)
    _exp_array = nb.njit(nogil=True, cache=True)(_exp_array_py)
    _max = nb.njit(nogil=True, cache=True)(_max_py)
    _sums2 = nb.njit(nogil=True, cache=True, fastmath=_FLAGS)(_sums2_py)
    _pass = nb.njit(nogil=True, cache=True, fastmath=_FLAGS)(_pass_py)
    _STATE["compiled"] = True


def exp_le0(x: np.ndarray) -> np.ndarray:
    """The pass's exponential on an array of x <= 0 (for the tests: its ulp error against ``np.exp``)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if np.any(x > 0):
        raise ValueError("x must be <= 0")
    _compile()
    out = np.empty(x.size)
    _exp_array(x.ravel(), out, np.empty(x.size))
    return out.reshape(x.shape)


def fused_moments(dens, x, tt, cov=False, third=False):
    """:meth:`EmpiricalDensity._moments` by the compiled pass (validated input; D <= MAX_D)."""
    from .._blas import run_blocks
    from ._posterior import PosteriorMoments, _H_MIN, _refuse_non_finite, _require_finite

    _compile()
    m, D = x.shape
    a = dens.schedule._a(tt)
    h = dens.schedule._h(tt)
    if m and float(h.min()) < _H_MIN:
        with np.errstate(over="ignore", divide="ignore"):
            _require_finite((1.0 / h)[:, None], "log p_t", tt, h, dens._radius)
    xq = x - a[:, None] * dens.center[None, :]
    cov = bool(cov or third)
    Y = dens._xc
    nsq = dens.__dict__.get("_nsq_half")
    if nsq is None:
        nsq = dens._nsq_half = np.ascontiguousarray(-0.5 * dens._sq)
        dens._xcT = np.ascontiguousarray(Y.T)
    YT = dens._xcT
    lw = np.empty(m)
    mu = np.empty((m, D))
    C = np.empty((m, D, D)) if cov else np.empty((0, D, D))
    K3 = np.empty((m, D, D, D)) if third else np.empty((0, D, D, D))
    idx = np.empty(m, dtype=np.int64)
    W = np.empty(m)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # non-finite results are refused below
        def block(sl):
            _pass(YT, nsq, xq[sl], a[sl], h[sl], cov, bool(third), np.empty(dens.n), np.empty(dens.n),
                  np.empty((D, dens.n)), lw[sl], mu[sl],
                  C[sl] if cov else C, K3[sl] if third else K3, idx[sl], W[sl])

        run_blocks(block, [slice(i, min(m, i + _QUERY_BLOCK)) for i in range(0, m, _QUERY_BLOCK)])
        dstar = xq - a[:, None] * Y[idx]
        lp = (-np.einsum("qd,qd->q", dstar, dstar) * 0.5 / h + lw
              - np.log(dens.n) - 0.5 * D * np.log(2.0 * np.pi * h))
        mean = mu + dens.center[None, :]
        score = (a[:, None] * mu - xq) / h[:, None]
    _refuse_non_finite(lp, score, C if cov else None, K3 if third else None, tt, h, dens._radius)
    return PosteriorMoments(t=tt, a=a, h=h, log_density=lp, mean=mean, score=score, cov=C if cov else None,
                            nearest=idx, max_weight=1.0 / W, third=K3 if third else None)


def fused_one(dens, x1, a, h, third, fixed=None):
    """One query of :func:`fused_moments` with its per-call work hoisted (the one-point projection calls it once
    per step; x1 (1, D) validated, a and h (1,) its schedule values): ``(score (D,), cov (D, D), third (D, D, D)
    or None)``, the same bits as :func:`fused_moments`' row for that query (the same kernel on the same inputs:
    each query is computed alone). None where the general call is needed (subnormal h_t, or a result that is
    not finite, which that call refuses by name). ``fixed``, a dict kept by a caller whose a and h do not change
    between calls, holds the scratch and the factors computed from them alone."""
    from ._posterior import _H_MIN

    f = fixed.get("fused") if fixed is not None else None
    if f is None:
        _compile()
        if float(h[0]) < _H_MIN:
            return None
        if dens.__dict__.get("_nsq_half") is None:
            dens._nsq_half = np.ascontiguousarray(-0.5 * dens._sq)
            dens._xcT = np.ascontiguousarray(dens._xc.T)
        n, D = dens.n, dens.D
        f = (a[:, None] * dens.center[None, :], np.empty(n), np.empty(n), np.empty((D, n)), np.empty(1),
             np.empty(1, dtype=np.int64), np.empty(1), np.empty((0, D, D, D)))
        if fixed is not None:
            fixed["fused"] = f
    a_center, buf, tb, Z, lw, idx, W, no_k3 = f
    D = x1.shape[1]
    xq = x1 - a_center
    mu = np.empty((1, D))
    C = np.empty((1, D, D))
    K3 = np.empty((1, D, D, D)) if third else no_k3
    _pass(dens._xcT, dens._nsq_half, xq, a, h, True, bool(third), buf, tb, Z, lw, mu, C, K3, idx, W)
    # fused_moments' (a mu - xq) / h on Python floats: the same IEEE operations, so the same bits, without
    # numpy's per-call cost on (1, D) arrays (an overflow gives inf, as numpy's, and is caught just below)
    af, hf = float(a[0]), float(h[0])
    sl = [(af * m_ - q_) / hf for m_, q_ in zip(mu[0].tolist(), xq[0].tolist())]
    total = sum(sl) + sum(C.ravel().tolist()) + float(lw[0])
    if third:
        total += sum(K3.ravel().tolist())
    if not math.isfinite(total):
        return None
    return np.array(sl), C[0], (K3[0] if third else None)
