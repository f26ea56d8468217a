"""The ReLU moments' lower tails without quadrature: ``T_k(x) = int_0^inf y^k exp(-x y - y^2/2) dy`` for k = 1, 2
and x > 1, so that ``g(-x) = phi(x) T_1(x)`` and ``E[((-x + z)+)^2] = phi(x) T_2(x)`` (rf/_bvn.py).

The closed forms ``T_1 = 1 - x R``, ``T_2 = (1 + x^2) R - x`` (R = T_0, the Mills ratio) cancel: ~x^2 and x^4
relative. Instead (issue 17: the composite quadrature these replace cost ~1 us per entry, ~10 % of the exact
U, V assembly, much of it on one thread):

- x in (1, 2]: the Taylor series about x0 = 3/2, ``T_k(x0 + d) = sum_n (-d)^n T_{k+n}(x0) / n!`` (since
  ``T_k' = -T_{k+1}``), 22 terms (measured against mpmath: 16 terms err 7e-13, 18 8e-15, 20 reach round-off);
  its coefficients come from
  ``T_0(x0) = sqrt(pi/2) erfcx(x0/sqrt 2)`` and ``T_{k+1} = k T_{k-1} - x0 T_k`` in 60-digit mpmath, once.
  Terms alternate for d > 0, but the sum of their magnitudes is at most T_k(1) <= 3.3 T_k(2): no cancellation
  worth a digit.
- x > 2: the continued fraction of the Mills ratio, ``R = 1/(x + t_1)``, ``t_k = k / (x + t_{k+1})``, which gives
  ``T_1 = t_1 R`` and ``T_2 = t_2 t_1 R``: positive terms only. The backward recurrence starts from t = 0 at the
  depth that reaches round-off (measured against mpmath on each bin: 84, 56, 28 and 14 terms from x = 2, 3, 5
  and 10 on reach it, half of them err 3e-13 to 4e-12; used: 100, 68, 34, 17).

Both hold ~1e-15 relative (tests/test_relu_far_tails.py checks 1e-14 against mpmath on (1, 40]).
"""
from __future__ import annotations

import math

import numpy as np

_X0 = 1.5
_NTAYLOR = 22
_COEF: dict = {}
_CF_DEPTH = ((2.0, 100), (3.0, 68), (5.0, 34), (10.0, 17))   # (x above which, terms)


def _taylor_coefficients():
    if not _COEF:
        import mpmath as mp

        with mp.workdps(60):
            x0 = mp.mpf(_X0)
            T = [mp.sqrt(mp.pi / 2) * mp.erfc(x0 / mp.sqrt(2)) * mp.exp(x0 * x0 / 2)]
            T.append(1 - x0 * T[0])
            for k in range(1, _NTAYLOR + 2):
                T.append(k * T[k - 1] - x0 * T[k])
            for k in (1, 2):
                _COEF[k] = np.array([float((-1) ** n * T[k + n] / mp.factorial(n)) for n in range(_NTAYLOR)])
    return _COEF


def tails(x):
    """``(T_1(x), T_2(x))`` for an array x > 1 (module docstring; both cost about what one does)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and not np.all(x > 1.0):
        raise ValueError("x must be > 1")
    t1 = np.empty(x.shape)
    t2 = np.empty(x.shape)
    near = x <= 2.0
    if near.any():
        c = _taylor_coefficients()
        d = x[near] - _X0
        for k, out in ((1, t1), (2, t2)):
            acc = np.full(d.shape, c[k][-1])
            for a in c[k][-2::-1]:
                acc *= d
                acc += a
            out[near] = acc
    edges = [e for e, _ in _CF_DEPTH] + [math.inf]
    for (lo, depth), hi in zip(_CF_DEPTH, edges[1:]):
        sel = (x > lo) & (x <= hi)
        if not sel.any():
            continue
        xs = x[sel]
        t = np.zeros(xs.shape)
        for k in range(depth, 1, -1):
            t = k / (xs + t)
        t_2 = t
        t_1 = 1.0 / (xs + t_2)
        R = 1.0 / (xs + t_1)
        t1[sel] = t_1 * R
        t2[sel] = t_2 * t_1 * R
    return t1, t2
