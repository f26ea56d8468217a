"""The streaming pass's packed-scatter arithmetic in compiled sweeps (issue 17, session 18): per data chunk, the
chunk's centred scatter ``S_ij - (W dm_i) dm_j`` and the merge of the running scatter with it,
``(C fa + Cb fb) + ((Wa Wb / W) delta_i) delta_j``, over the (q, D(D+1)/2) packed pairs. In numpy these are ten
passes over (q, pairs) arrays with two gathers (``np.take``); here each is one sweep per row.

The operations are numpy's, in numpy's order, one rounding each, with no contraction into fused multiply-adds
(numba's default): the bits are those of the numpy expressions in ``_streaming._StreamingPass._pass``
(tests/test_fused_merge.py compares them bit for bit). Used where the pass's compiled weights sweep is used
(``_fused_exp.available``: numba installed and enabled, ``engine="auto"``, D >= 5). Each row is computed alone:
the bits do not depend on the query blocks or the thread count. Private.
"""
from __future__ import annotations

_STATE = {"kernels": None}


def _scatter_py(S, off, dm, Wb, i2, j2, Cb):
    """``Cb[i, p] = S[i, off + p] - (dm[i, i2[p]] * Wb[i]) * dm[i, j2[p]]``."""
    q, P = Cb.shape
    for i in range(q):
        w = Wb[i]
        for p in range(P):
            Cb[i, p] = S[i, off + p] - (dm[i, i2[p]] * w) * dm[i, j2[p]]


def _merge_py(C, Cb, fa, fb, delta, g, i2, j2):
    """``C[i, p] = (C[i, p] * fa[i] + Cb[i, p] * fb[i]) + (delta[i, i2[p]] * g[i]) * delta[i, j2[p]]``."""
    q, P = C.shape
    for i in range(q):
        a = fa[i]
        b = fb[i]
        gi = g[i]
        for p in range(P):
            C[i, p] = (C[i, p] * a + Cb[i, p] * b) + (delta[i, i2[p]] * gi) * delta[i, j2[p]]


def kernels():
    """``(scatter, merge)`` compiled (numba imported and the kernels compiled or loaded from its cache on the
    first call; call it before the query threads start)."""
    if _STATE["kernels"] is None:
        import numba as nb
        import numpy as np

        sc = nb.njit(nogil=True, cache=True)(_scatter_py)
        mg = nb.njit(nogil=True, cache=True)(_merge_py)
        z, i = np.zeros((1, 2)), np.zeros(1, dtype=np.intp)
        sc(z, 1, z, z[:, 0], i, i, np.zeros((1, 1)))   # compiles them now (W: a column of the sums, strided)
        mg(np.zeros((1, 1)), np.zeros((1, 1)), z[0], z[0], z, z[0], i, i)
        _STATE["kernels"] = (sc, mg)
    return _STATE["kernels"]
