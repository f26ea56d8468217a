"""Compiled kernels of the Mehler pair sum of U (rf/_mehler.py), used when numba is installed (issue 17).

The far-pair quadrature (pairs with |rho| > rho_c) costs one exponential per (pair, node, step): ~12 M per step at
the papers' size. numpy's float64 ``exp`` is scalar libm on an AVX2 CPU (~5 ns), and the batched small matmuls
around it cost as much again, so the quadrature was half of the assembly. :func:`far_sums` computes the same
quantity per pair, all the block's steps at once: the exponents ``c1 (a - s b)^2 + c2 s a b`` of one node for all
steps, their exponential by the vectorised one of density/_fused_pass.py (``_exp_parts``: <= 1 ulp from libm's),
and the node sum, in loops the compiler vectorises over the steps. Each pair is computed alone, in a fixed order,
so the bits depend neither on the pair chunks nor on the thread count; they differ from the numpy path's at the
level of round-off (the exponential and the order of the node sum), so the engine is part of the moment cache's
key (rf/_moment_cache.py) and the tests bound the difference.

``RFTHEORY_NUMBA=0`` turns the kernels off (the numpy path of rf/_mehler.py), as for the density's pass.
"""
from __future__ import annotations

import numpy as np

from ..density import _fused_pass as _fp

_STATE = {"compiled": False}
_PAIR_CHUNK = 64          # pairs per task on the pool (fixed: each pair is computed alone, so the bits do not
                          # depend on it)


def available() -> bool:
    """True if the compiled kernels run (numba installed, ``RFTHEORY_NUMBA`` not 0)."""
    return _fp.available()


def engine() -> str:
    """``"numba"`` or ``"numpy"``: which path the exact assembly's pair sums take (their bits differ at round-off)."""
    return "numba" if available() else "numpy"


def _far_py(q0, q1, jf, kf, sg, off, c1, c2, wn, AT, ST, w, out):
    """``out[q] = sum_b w[b] S[j, b] S[k, b] sum_l wn[l] exp(c1[l] (a - s b')^2 + c2[l] s a b')`` for the pairs
    q0..q1-1 (a = AT[j], b' = AT[k]; node l of pair q in off[q]..off[q+1]-1)."""
    B = AT.shape[1]
    nw = w.shape[1]
    X0 = np.empty(B)
    X1 = np.empty(B)
    acc = np.empty(B)
    buf = np.empty(B)
    tb = np.empty(B)
    for q in range(q0, q1):
        j = jf[q]
        k = kf[q]
        s = sg[q]
        for b in range(B):
            a = AT[j, b]
            bb = AT[k, b]
            d = a - s * bb
            X0[b] = d * d
            X1[b] = (a * bb) * s
            acc[b] = 0.0
        for node in range(off[q], off[q + 1]):
            u = c1[node]
            v = c2[node]
            wl = wn[node]
            for b in range(B):
                buf[b] = u * X0[b] + v * X1[b]
            _fp._exp_parts(buf, tb, 0.0)
            for b in range(B):
                acc[b] += wl * (buf[b] * tb[b])
        for b in range(B):
            acc[b] *= ST[j, b] * ST[k, b]
        for i in range(nw):
            tot = 0.0
            for b in range(B):
                tot += acc[b] * w[b, i]
            out[q, i] = tot


_far = _far_py
_mask_add = None      # compiled _mask_add_py (set by _compile)


def _compile() -> None:
    global _far, _mask_add
    if _STATE["compiled"]:
        return
    import numba as nb

    _fp._compile()
    _far = nb.njit(nogil=True, cache=True, fastmath={"contract"})(_far_py)
    _mask_add = nb.njit(nogil=True, cache=True)(_mask_add_py)     # no contraction: numpy's bits
    _STATE["compiled"] = True


def far_sums(jf, kf, sg, off, c1, c2, wn, AT, ST, w, pool):
    """The far pairs' weighted node sums (Pf, nw) by the compiled kernel, pair chunks on ``pool``
    (rf/_mehler_far.py's ``_Pool``). jf, kf (Pf,) units, sg (Pf,) sign of rho, off (Pf + 1,) node offsets,
    c1, c2, wn (nodes,) the exponent factors and weights; AT, ST (p, B) alpha and scale; w (B, nw)."""
    _compile()
    P = jf.shape[0]
    out = np.empty((P, w.shape[1]))
    AT = np.ascontiguousarray(AT)
    ST = np.ascontiguousarray(ST)
    w = np.ascontiguousarray(w)
    pool.map(lambda q0: _far(q0, min(q0 + _PAIR_CHUNK, P), jf, kf, sg, off, c1, c2, wn, AT, ST, w, out),
             list(range(0, P, _PAIR_CHUNK)))
    return out


def _mask_add_py(M, R0, DL, P, acc, a0, b0, k):
    """``acc[i, rows, cols] += M[i] * mask_k`` with ``mask_k = (DL k + R0) P`` (1 for k = 0), then ``P *= R0``
    (P = rho_0^(k-1) -> rho_0^k), on the block at (a0, b0) of M's shape: the numpy path's operations in its
    order (no contraction), so the same bits."""
    nw, nr, nc = M.shape
    m = np.empty(nc)
    for r in range(nr):
        ra = a0 + r
        if k == 0:
            for c in range(nc):
                m[c] = 1.0
        else:
            for c in range(nc):
                x = R0[ra, b0 + c]
                pk = P[ra, b0 + c]
                m[c] = (DL[ra, b0 + c] * k + x) * pk
                P[ra, b0 + c] = pk * x
        for i in range(nw):
            for c in range(nc):
                acc[i, ra, b0 + c] += M[i, r, c] * m[c]


def _mask_add_np(M, R0, DL, P, acc, a0, b0, k):
    nr, nc = M.shape[1], M.shape[2]
    rs, cs = slice(a0, a0 + nr), slice(b0, b0 + nc)
    if k == 0:
        acc[:, rs, cs] += M
        return
    Pv = P[rs, cs]
    mask = DL[rs, cs] * k
    mask += R0[rs, cs]
    mask *= Pv
    Pv *= R0[rs, cs]
    M *= mask[None]
    acc[:, rs, cs] += M


def mask_adder():
    """The series' masked update of one run of tiles, ``fn(M, R0, DL, P, acc, a0, b0, k)`` (:func:`_mask_add_py`):
    compiled where numba runs, else numpy (the same operations, so the same bits). Resolved once per pair sum,
    not per call."""
    if available():
        _compile()
        return _mask_add
    return _mask_add_np
