"""Bivariate normal CDF and ReLU Gaussian moments (docs/theory.md §4, R1); re-exported by features.py.

ReLU (closed form; derivations/r1_moments.py). With ``alpha = mu/s`` and x, y standard normal with
correlation rho, ``E[u+] = s g(alpha)``, ``g(a) = a Phi(a) + phi(a)``, and ``E[u+ v+] = s_u s_v G(alpha, beta; rho)``,
``G = E[(alpha + x)+ (beta + y)+]``. Price's theorem gives ``dG/drho = Phi2(alpha, beta; rho)`` and
``dPhi2/drho = phi2``, hence, expanding about rho_0 = 0 (for rho >= 0) or rho_0 = -1 (for rho < 0),

    G(rho) = G(rho_0) + (rho - rho_0) Phi2(rho_0) + int_{rho_0}^{rho} (rho - r) phi2(alpha, beta; r) dr,

    G(0) = g(alpha) g(beta),  Phi2(0) = Phi(alpha) Phi(beta),
    G(-1) = int_{-alpha}^{beta} (alpha + x)(beta - x) phi(x) dx,  Phi2(-1) = P(-alpha < x < beta).

Every term is non-negative, so nothing cancels, and the result keeps its *relative* accuracy in the tails
(|alpha|/s = 30, rho = +-0.999). This is equivalent to the closed form in docs/theory.md §4 (the derivation checks
it), which loses all digits when alpha, beta << 0. The integral in r is evaluated in theta = asin r, where
``phi2 dr = exp(-E(r)) dtheta / (2 pi)``, with ``E = (a^2 - 2 r a b + b^2) / (2 (1 - r^2))`` written without
cancellation as ``(a -+ b)^2 / (2 (1 - r^2)) +- a b / (1 +- r)``; the nodes are placed by their angle from
the pole, ``phi = pi/2 - |theta|``, so that ``1 - |r| = 2 sin^2(phi/2)``, ``1 - r^2 = sin^2 phi`` and the weight
``rho - r = +-((1 - |r|) - (1 - |rho|))`` keep their relative accuracy near r = +-1 (``cos theta`` and
``rho - sin theta`` do not: that cost up to 6e-11 relative at rho -> -1, a + b near 0). E is unimodal in r
with its minimum at ``r* = a b / max(a^2, b^2)``; the integrand is restricted to the window where ``E <= E(r_c) + 40`` (a
quadratic in r, solved exactly), split at the peak, and integrated by composite Gauss-Legendre (16 nodes per
panel) with panels uniform in ``atanh r``: near ``r = +-1`` (where E has poles) the panels shrink
geometrically. The same routine gives Phi2 (weight 1 instead of rho - r). The segment integrals (x from
-alpha to beta) use panels no wider than ``4 / |x|`` where phi(x) decays at rate |x|.

The hoisted fast kernel of many pairs at once (``relu_pair_kernel``, its far tails and routing) is in
rf/_relu_pair_kernel.py.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erfc

from ._relu_tails import tails

__all__ = ["norm_cdf", "norm_pdf", "bvn_cdf", "relu_g", "relu_second_std", "relu_pair_std", "relu_pair_kernel"]

_SQ2 = np.sqrt(2.0)
_SQ2PI = np.sqrt(2.0 * np.pi)
_WINDOW = 40.0          # integrands are kept where they exceed exp(-40) = 4e-18 of their peak
_NODES = 16             # Gauss-Legendre nodes per panel (precise routines)
_DS = 0.5               # panel width in atanh(r) (precise routines)
_S_CAP = 21.0           # atanh(r) cap: |r| <= 1 - 1e-18 before the last panel (theta gap 1.5e-9)
_GL_CACHE: dict = {}


def _gl(n: int):
    if n not in _GL_CACHE:
        _GL_CACHE[n] = np.polynomial.legendre.leggauss(n)
    return _GL_CACHE[n]


def norm_cdf(x):
    """Standard normal CDF (erfc form: full relative accuracy in the lower tail)."""
    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) / _SQ2)


def norm_pdf(x):
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-0.5 * x * x) / _SQ2PI


# ----------------------------------------------------------------------------- composite quadrature
def _composite(f, lo, hi, hmax, n=_NODES):
    """sum over elements of int_lo^hi f, composite Gauss-Legendre with panels of width <= hmax.

    lo, hi: (m,) arrays; f(x, idx) -> values at nodes x (k, n) for the elements idx (k,).
    """
    x0, w0 = _gl(n)
    m = lo.shape[0]
    out = np.zeros(m)
    L = hi - lo
    npan = np.maximum(1, np.ceil(L / hmax)).astype(np.int64)
    for k in range(int(npan.max()) if m else 0):
        idx = np.nonzero(npan > k)[0]
        h = L[idx] / npan[idx]
        a = lo[idx] + k * h
        x = (a + 0.5 * h)[:, None] + (0.5 * h)[:, None] * x0[None, :]
        out[idx] += 0.5 * h * (f(x, idx) @ w0)
    return out


def _exponent(a, b, r, c2):
    """E(r) = (a^2 - 2 r a b + b^2)/(2(1 - r^2)) without cancellation; c2 = 1 - r^2 (= cos^2 theta)."""
    return np.where(r >= 0, (a - b) ** 2 / (2.0 * c2) + a * b / (1.0 + r),
                    (a + b) ** 2 / (2.0 * c2) - a * b / (1.0 - r))


def _rho_integral(a, b, lo, hi, rho, weighted: bool):
    """int_lo^hi (rho - r)^[weighted] phi2(a, b; r) dr for [lo, hi] inside [0, 1] or inside [-1, 0] (arrays (m,)).

    Evaluated in phi = pi/2 - |theta| (theta = asin r), the angle from the pole sigma = sign(r): with
    ``d = 1 - |r| = 2 sin^2(phi/2)``, ``1 - r^2 = sin^2 phi`` and ``rho - r = sigma (d - d_rho)``, nodes near
    r = +-1 keep their relative accuracy (theta near +-pi/2 would not: ``cos theta`` and ``rho - sin theta``
    lose digits there, up to ~3e-12 relative in G at rho = -(1 - 1e-6)).
    """
    m = a.shape[0]
    if m == 0:
        return np.zeros(m)
    sig = np.where(lo + hi >= 0, 1.0, -1.0)
    amax2 = np.maximum(a * a, b * b)
    safe = np.where(amax2 > 0, amax2, 1.0)
    rc = np.clip(np.where(amax2 > 0, a * b / safe, 0.0), lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        Ec = np.where(np.abs(rc) < 1, _exponent(a, b, rc, (1 - rc) * (1 + rc)), 0.5 * amax2)
    M = Ec + _WINDOW
    # E(r) = M  <=>  2M r^2 - 2ab r + (a^2 + b^2 - 2M) = 0, discriminant (2M - a^2)(2M - b^2)
    disc = np.sqrt(np.maximum((2 * M - a * a) * (2 * M - b * b), 0.0))
    big = (a * b + np.where(a * b >= 0, disc, -disc)) / (2 * M)          # the larger-|.| root
    small = np.where(big != 0, (a * a + b * b - 2 * M) / (2 * M) / np.where(big != 0, big, 1.0), 0.0)
    wl = np.clip(np.minimum(big, small), lo, rc)
    wh = np.clip(np.maximum(big, small), rc, hi)
    # distances from the pole (exact where |r| >= 1/2); the interval [d_lo, d_hi] in d runs the other way for
    # sigma = +1, which does not matter for an integral of a positive weight over |dtheta| = dphi
    d_rho = 1.0 - np.abs(rho)
    x0, w0 = _gl(_NODES)
    ab = a * b
    dif2 = (a - sig * b) ** 2

    def side(ra, rb):
        da = np.clip(1.0 - sig * ra, 0.0, 1.0)
        db = np.clip(1.0 - sig * rb, 0.0, 1.0)
        d0, d1 = np.minimum(da, db), np.maximum(da, db)
        with np.errstate(divide="ignore"):
            s0 = np.minimum(0.5 * np.log((2.0 - d0) / d0), _S_CAP)      # atanh(1 - d), capped
        s1 = np.minimum(0.5 * np.log((2.0 - d1) / d1), _S_CAP)
        npan = np.maximum(2, np.ceil((s0 - s1) / _DS)).astype(np.int64)  # >= 2: <= 20 e-folds each
        f_end0 = 2.0 * np.arcsin(np.sqrt(0.5 * d0))                      # phi at the ends, exactly
        f_end1 = 2.0 * np.arcsin(np.sqrt(0.5 * d1))
        res = np.zeros(m)
        for k in range(int(npan.max())):
            idx = np.nonzero(npan > k)[0]
            nk = npan[idx]
            sa = s1[idx] + (s0[idx] - s1[idx]) * k / nk                  # panel edges uniform in s, from d1 down
            sb = s1[idx] + (s0[idx] - s1[idx]) * (k + 1) / nk
            pa = np.where(k == 0, f_end1[idx], 2.0 * np.arcsin(1.0 / np.sqrt(np.exp(2.0 * sa) + 1.0)))
            pb = np.where(k + 1 == nk, f_end0[idx], 2.0 * np.arcsin(1.0 / np.sqrt(np.exp(2.0 * sb) + 1.0)))
            h = pa - pb
            ph = (pb + 0.5 * h)[:, None] + (0.5 * h)[:, None] * x0[None, :]
            sh = np.sin(0.5 * ph)
            d = 2.0 * sh * sh
            sn = np.sin(ph)
            E = dif2[idx, None] / (2.0 * sn * sn) + (sig * ab)[idx, None] / (2.0 - d)
            f = np.exp(-E)
            if weighted:
                f = f * (sig[idx, None] * (d - d_rho[idx, None]))
            res[idx] += 0.5 * h * (f @ w0)
        return res

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = side(wl, rc) + side(rc, wh)
    return out / (2.0 * np.pi)


def relu_g(alpha):
    """``g(a) = E[(a + x)+] = a Phi(a) + phi(a)``; for a < -1 as ``phi(a) T_1(-a)`` (no cancellation;
    rf/_relu_tails.py)."""
    a = np.asarray(alpha, dtype=np.float64)
    flat = a.ravel()
    out = np.empty_like(flat)
    p = flat >= -1.0
    out[p] = flat[p] * norm_cdf(flat[p]) + norm_pdf(flat[p])
    q = ~p
    out[q] = norm_pdf(flat[q]) * tails(-flat[q])[0]
    return out.reshape(a.shape)


def relu_second_std(alpha):
    """``E[((a + x)+)^2] = (a^2 + 1) Phi(a) + a phi(a)``; for a < -1 as ``phi(a) T_2(-a)``."""
    a = np.asarray(alpha, dtype=np.float64)
    flat = a.ravel()
    out = np.empty_like(flat)
    p = flat >= -1.0
    out[p] = (flat[p] ** 2 + 1) * norm_cdf(flat[p]) + flat[p] * norm_pdf(flat[p])
    q = ~p
    out[q] = norm_pdf(flat[q]) * tails(-flat[q])[1]
    return out.reshape(a.shape)


def _segment(A, B, poly: bool):
    """int_{-A}^{B} [(A + x)(B - x)]^[poly] phi(x) dx (0 when A + B <= 0)."""
    L = -A
    U = np.maximum(B, L)
    xc = np.clip(0.0, L, U)
    R = np.sqrt(xc * xc + 2 * _WINDOW)
    lo = np.minimum(np.maximum(L, -R), xc)
    hi = np.maximum(np.minimum(U, R), xc)
    if poly:
        f = lambda x, i: (A[i, None] + x) * (B[i, None] - x) * norm_pdf(x)  # noqa: E731
    else:
        f = lambda x, i: norm_pdf(x)  # noqa: E731
    # phi decays like exp(-|xc| y) away from xc: panels no wider than 4 / |xc| (16 nodes then resolve it)
    hmax = 1.0 / (1.0 + 0.25 * np.abs(xc))
    return _composite(f, lo, xc, hmax) + _composite(f, xc, hi, hmax)


def _check_rho(rho):
    if np.any(np.abs(rho) > 1) or not np.all(np.isfinite(rho)):
        raise ValueError("rho (correlation) must lie in [-1, 1]")


def _by_rho_sign(alpha, beta, rho, f_pos, f_neg):
    """Broadcast, check rho, and evaluate ``f_pos`` where rho >= 0 and ``f_neg`` where rho < 0 (the two
    expansions of the module docstring), on flat arrays; the result has the broadcast shape."""
    a, b, r = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(alpha, beta, rho))
    _check_rho(r)
    shape = a.shape
    a, b, r = a.ravel(), b.ravel(), r.ravel()
    out = np.empty(a.shape)
    pos = r >= 0
    out[pos] = f_pos(a[pos], b[pos], r[pos])
    out[~pos] = f_neg(a[~pos], b[~pos], r[~pos])
    return out.reshape(shape)


def bvn_cdf(alpha, beta, rho):
    """Bivariate standard normal CDF ``Phi2(alpha, beta; rho) = P(x < alpha, y < beta)``, vectorised.

    Relative accuracy ~1e-13 including deep tails and |rho| -> 1 (see module docstring)."""
    return _by_rho_sign(
        alpha, beta, rho,
        lambda a, b, r: norm_cdf(a) * norm_cdf(b) + _rho_integral(a, b, np.zeros_like(r), r, r, False),
        lambda a, b, r: _segment(a, b, False) + _rho_integral(a, b, -np.ones_like(r), r, r, False))


def relu_pair_std(alpha, beta, rho):
    """``G(alpha, beta; rho) = E[(alpha + x)+ (beta + y)+]``, x, y standard normal with correlation rho.

    Every term of the expansion is non-negative (module docstring): relative accuracy ~1e-13 wherever the
    value is above the float64 underflow (~1e-290), including |alpha| = 30 and rho = +-0.999."""
    return _by_rho_sign(
        alpha, beta, rho,
        lambda a, b, r: (relu_g(a) * relu_g(b) + r * norm_cdf(a) * norm_cdf(b)
                         + _rho_integral(a, b, np.zeros_like(r), r, r, True)),
        lambda a, b, r: (_segment(a, b, True) + (1 + r) * _segment(a, b, False)
                         + _rho_integral(a, b, -np.ones_like(r), r, r, True)))
