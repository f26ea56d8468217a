"""Closed-form eigendecomposition of symmetric 1x1 and 2x2 matrices (issue 17): the ridge frame's ``eigh`` at
D <= 2, in two forms with the same bits, a vectorised one for a stack (the batch path) and one on Python floats
(the one-point path), so a point projected alone keeps the bits it has in a batch. Only IEEE-exact operations
(+, -, *, /, sqrt, abs, comparisons) appear, in the same order in both forms; no ``hypot`` (numpy's and
Python's differ).

For ``[[a, b], [b, c]]``: ``p = (a - c)/2``, ``r = sqrt(p^2 + b^2)`` as ``s sqrt(1 + (t/s)^2)`` with
``s = max(|p|, |b|)``, ``t = min(|p|, |b|)`` (no overflow or underflow of the squares), eigenvalues
``(a + c)/2 -+ r``; the eigenvector of the larger one is ``(cos th, sin th)`` with ``cos 2th = p/r``,
``sin 2th = b/r`` (p/r and b/r as ``(p/s)/(r/s)``: exact scaling, no rounding of r at subnormal scales), its
larger component from ``sqrt(1/2 +- p/(2r))`` (the sign chosen by that of p: no cancellation) and the other
from ``sin 2th = 2 sin th cos th``. Equal eigenvalues (p = b = 0) give the identity.

Errors (tests/test_eigh_small.py, against mpmath and ``np.linalg.eigh``): eigenvalues within 4 ulp of the
spectral norm (plus a few least subnormals), eigenvectors orthonormal and ``C v - mu v`` within 4 eps |C|, as
LAPACK's (normwise backward stable). Input must be finite (the moments passes refuse non-finite covariances
before the frame). Private."""
from __future__ import annotations

import math

import numpy as np


def eigh_small(C):
    """``np.linalg.eigh`` of a stack ``C`` (m, D, D), D in (1, 2), in closed form: ``(w (m, D) ascending,
    v (m, D, D) eigenvectors as columns)``. Only the lower triangle (``C[:, 1, 0]``) is read, as eigh does."""
    m, D = C.shape[0], C.shape[-1]
    if D == 1:
        return C[:, :, 0].copy(), np.ones((m, 1, 1))
    a, b, c = C[:, 0, 0], C[:, 1, 0], C[:, 1, 1]
    p = (a - c) * 0.5
    mean = (a + c) * 0.5
    ap, ab = np.abs(p), np.abs(b)
    s = np.maximum(ap, ab)
    with np.errstate(divide="ignore", invalid="ignore"):   # 0/0 where s (r) = 0: replaced below
        q = np.minimum(ap, ab) / s
        rs = np.sqrt(1.0 + q * q)              # r / s
        r = np.where(s == 0.0, 0.0, s * rs)
        pr = (p / s) / rs                      # p / r without r's rounding at subnormal scales
        br = (b / s) / rs
        big = np.sqrt(np.where(p >= 0.0, 0.5 + 0.5 * pr, 0.5 - 0.5 * pr))
        small = br * 0.5 / big
    zero = r == 0.0
    cs = np.where(zero, 1.0, np.where(p >= 0.0, big, small))
    sn = np.where(zero, 0.0, np.where(p >= 0.0, small, big))
    w = np.empty((m, 2))
    w[:, 0] = mean - r
    w[:, 1] = mean + r
    v = np.empty((m, 2, 2))
    v[:, 0, 0] = -sn
    v[:, 1, 0] = cs
    v[:, 0, 1] = cs
    v[:, 1, 1] = sn
    return w, v


def eigh2(a, b, c):
    """:func:`eigh_small` of one 2x2 ``[[a, b], [b, c]]`` on Python floats, the same bits:
    ``(mu_lo, mu_hi, cs, sn)``, the eigenvalues ascending, ``(cs, sn)`` the eigenvector of ``mu_hi`` and
    ``(-sn, cs)`` that of ``mu_lo``."""
    p = (a - c) * 0.5
    mean = (a + c) * 0.5
    ap, ab = abs(p), abs(b)
    s = ap if ap >= ab else ab
    if s == 0.0:   # a multiple of the identity (mean -+ 0.0, as the stack form's, so a -0.0 mean keeps its bits)
        return mean - 0.0, mean + 0.0, 1.0, 0.0
    q = (ab if ap >= ab else ap) / s
    rs = math.sqrt(1.0 + q * q)
    r = s * rs
    pr = (p / s) / rs
    br = (b / s) / rs
    if p >= 0.0:
        cs = math.sqrt(0.5 + 0.5 * pr)
        sn = br * 0.5 / cs
    else:
        sn = math.sqrt(0.5 - 0.5 * pr)
        cs = br * 0.5 / sn
    return mean - r, mean + r, cs, sn
