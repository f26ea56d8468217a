"""The numpy streaming pass's weights in one compiled sweep per row (issue 17): for a block of logits ``e``
(q, n), in place, ``M_i = max_j e_ij``, its first index (as ``np.argmax``), and ``e_ij <- exp(e_ij - M_i)`` by
the exponential of :mod:`._fused_pass` (Cody-Waite and a degree-13 polynomial, within 1 ulp of libm's ``exp``
over [-746, 0]; tests/test_fused_pass.py). On an AVX2 CPU numpy's float64 ``exp`` is scalar libm (~6 ns per
entry): at D = 32 the argmax, subtraction and exp of the weights were ~15 % of a query block of
``ridge.residual`` (m = 4096, n = 10^4); this sweep does them ~3x faster (measured, one thread).

Used by :class:`rftheory.EmpiricalDensity` with ``engine="auto"`` from D = 5 on (``MIN_D``: below, the one-point
projection's own numpy pass must keep the batch's bits) where numba is installed and not disabled
(``RFTHEORY_NUMBA=0``); ``engine="numpy"`` keeps numpy's exp. Results differ from numpy's exp by at most one
ulp per weight, so the moments agree to round-off, not to the bit. Each row is computed alone, in a fixed order:
the bits do not depend on the thread count. A row with a NaN or infinite logit is left to numpy's operations,
so it gives what the numpy pass gives (refused by name after the pass). Private.
"""
from __future__ import annotations

import math

import numpy as np

from . import _fused_pass

MIN_D = 5          # = _streaming._FUSED_THIRD_MAX_D + 1: the one-point fast path (D <= 4) uses numpy's exp
_STATE = {"kernel": None}


def _rows_py(e, tb, jb, Mb):
    """Per row of ``e``: the maximum M (``_max``), its first index, ``e <- exp(e - M)``; ``jb = -1`` where a
    logit is NaN or infinite (the row is then left unchanged)."""
    q, n = e.shape
    for i in range(q):
        r = e[i]
        M = _fused_pass._max(r)
        bad = 0
        for j in range(n):     # any logit NaN or infinite (an integer OR: the loop vectorises)
            bad |= np.int64(not (abs(r[j]) < math.inf))
        if bad or not math.isfinite(M):
            jb[i] = -1
            continue
        j = 0
        while r[j] != M:
            j += 1
        jb[i] = j
        Mb[i] = M
        _fused_pass._exp_rows(r, tb, M)


def kernel():
    """The compiled sweep (numba imported and the kernel compiled or loaded from its cache on the first call)."""
    if _STATE["kernel"] is None:
        import numba as nb

        _fused_pass._compile()   # binds the module's _max and _exp_rows to their compiled versions first
        k = nb.njit(nogil=True, cache=True)(_rows_py)
        k(np.zeros((1, 1)), np.empty(1), np.empty(1, dtype=np.int64), np.empty(1))   # compiles it now
        _STATE["kernel"] = k
    return _STATE["kernel"]


def available(D: int) -> bool:
    """True if the compiled sweep is used at dimension D (with ``engine="auto"``)."""
    return D >= MIN_D and _fused_pass.available()


def max_exp(e):
    """In place on the C-ordered logits ``e`` (q, n): ``e <- exp(e - M[:, None])``; returns ``(jb, M)``, the
    first index of each row's maximum and the maximum (numpy's ``argmax``/``exp`` on rows with a NaN or
    infinite logit)."""
    q, n = e.shape
    jb = np.empty(q, dtype=np.int64)
    Mb = np.empty(q)
    kernel()(e, np.empty(n), jb, Mb)
    bad = np.flatnonzero(jb < 0)
    if bad.size:   # NaN or infinite logits: the numpy pass's operations (its result, refused after the pass)
        eb = e[bad]
        jb[bad] = np.argmax(eb, axis=1)
        Mb[bad] = eb[np.arange(bad.size), jb[bad]]
        eb -= Mb[bad][:, None]
        np.exp(eb, out=eb)
        e[bad] = eb
    return jb, Mb
