"""Compiled evaluation of a ReLU random-feature field in one or two dimensions at one time (issue 17).

A sampler's step asks ``f_W(x, t) = W relu(W_x x + c_t)`` for thousands of points at a single t. The numpy path
(rf/_rf_field.py) makes the (rows, p) pre-activations with a GEMM of inner dimension D, adds c_t, clips them and
multiplies by W^T: four passes over p numbers per point, ~2 ns per (point, unit) at D = 2. The output has only D
columns, so nothing needs the (rows, p) array: :func:`relu_field` keeps each point's D outputs and walks the units
once, ``out_d += max(c_j + x_0 w_j0 + x_1 w_j1, 0) W_dj``, in a loop the compiler vectorises over the points
(~0.3 ns per (point, unit)). In D = 1 the second input column and weight are zero: adding 0 changes nothing.

Every point's outputs are summed over the units in the same order, whatever the blocks or threads, so the bits
depend on neither; they differ from the numpy path's at round-off (a different order of the unit sum, no BLAS).
Above D = 2 the GEMMs of the numpy path are as fast as a compiled loop (measured: 1.2x at D = 8), and per-point
times gather a row of c per point, so those keep the numpy path. ``RFTHEORY_NUMBA=0`` turns the kernel off.
"""
from __future__ import annotations

import numpy as np

from ..density import _fused_pass as _fp

_BLOCK = 512              # points per block: their inputs and outputs (4 x 4 KiB) stay in the L1 cache
_STATE = {"kernel": None}


def applies(model, n_times: int) -> bool:
    """True if the compiled kernel evaluates ``model``'s field: ReLU, D <= 2, one time, numba running."""
    return model.act.name == "relu" and model.D <= 2 and n_times == 1 and _fp.available()


def _relu_field_py(xT, WxT, c, Wo, out):
    """``out[d, i] = sum_j max(c[j] + xT[0, i] WxT[j, 0] + xT[1, i] WxT[j, 1], 0) Wo[j, d]`` (d = 0, 1), the
    unit sum in order j = 0..p-1 for every point."""
    m = xT.shape[1]
    p = c.shape[0]
    for i0 in range(0, m, _BLOCK):
        i1 = min(m, i0 + _BLOCK)
        x0 = xT[0, i0:i1]
        x1 = xT[1, i0:i1]
        o0 = out[0, i0:i1]
        o1 = out[1, i0:i1]
        n = i1 - i0
        for i in range(n):
            o0[i] = 0.0
            o1[i] = 0.0
        for j in range(p):
            cj = c[j]
            w0 = WxT[j, 0]
            w1 = WxT[j, 1]
            v0 = Wo[j, 0]
            v1 = Wo[j, 1]
            for i in range(n):
                r = max(cj + x0[i] * w0 + x1[i] * w1, 0.0)
                o0[i] += r * v0
                o1[i] += r * v1


def relu_field(x, W_x, c, W) -> np.ndarray:
    """``relu(x W_x^T + c) W^T`` for x (m, D), W_x (p, D), c (p,), W (D, p), D in {1, 2}: (m, D)."""
    if _STATE["kernel"] is None:
        import numba as nb
        _STATE["kernel"] = nb.njit(nogil=True, cache=True, error_model="numpy")(_relu_field_py)
    m, D = x.shape
    p = c.shape[0]
    xT = np.zeros((2, m))
    xT[:D] = x.T
    WxT = np.zeros((p, 2))
    WxT[:, :D] = W_x
    Wo = np.zeros((p, 2))
    Wo[:, :D] = W.T
    out = np.empty((2, m))
    _STATE["kernel"](xT, WxT, np.ascontiguousarray(c, dtype=np.float64), Wo, out)
    return out[:D].T.copy()
