"""Activations with their Gaussian moments, and the Fourier time embedding (THEORY.md §4, R1).

For ``u ~ N(mu_u, s_u^2)``, ``v ~ N(mu_v, s_v^2)`` with correlation ``rho`` every activation gives

    mean(mu, s)                       E[sigma(u)]
    second(mu, s)                     E[sigma(u)^2]
    pair(mu_u, s_u, mu_v, s_v, rho)   E[sigma(u) sigma(v)]
    pair_kernel(rho)                  the same for fixed per-pair correlations, constants hoisted

ReLU (closed form; derivations/r1_moments.py). With ``alpha = mu/s`` and x, y standard normal with
correlation rho, ``E[u+] = s g(alpha)``, ``g(a) = a Phi(a) + phi(a)``, and ``E[u+ v+] = s_u s_v G(alpha, beta; rho)``,
``G = E[(alpha + x)+ (beta + y)+]``. Price's theorem gives ``dG/drho = Phi2(alpha, beta; rho)`` and
``dPhi2/drho = phi2``, hence, expanding about rho_0 = 0 (for rho >= 0) or rho_0 = -1 (for rho < 0),

    G(rho) = G(rho_0) + (rho - rho_0) Phi2(rho_0) + int_{rho_0}^{rho} (rho - r) phi2(alpha, beta; r) dr,

    G(0) = g(alpha) g(beta),  Phi2(0) = Phi(alpha) Phi(beta),
    G(-1) = int_{-alpha}^{beta} (alpha + x)(beta - x) phi(x) dx,  Phi2(-1) = P(-alpha < x < beta).

Every term is non-negative, so nothing cancels, and the result keeps its *relative* accuracy in the tails
(|alpha|/s = 30, rho = +-0.999). This is equivalent to the closed form in THEORY.md (the derivation checks
it), which loses all digits when alpha, beta << 0. The integral in r is evaluated in theta = asin r, where
``phi2 dr = exp(-E(r)) dtheta / (2 pi)``, with ``E = (a^2 - 2 r a b + b^2) / (2 (1 - r^2))`` written without
cancellation as ``(a -+ b)^2 / (2 (1 - r^2)) +- a b / (1 +- r)``. E is unimodal in r with its minimum at
``r* = a b / max(a^2, b^2)``; the integrand is restricted to the window where ``E <= E(r_c) + 40`` (a
quadratic in r, solved exactly), split at the peak, and integrated by composite Gauss-Legendre (16 nodes per
panel) with panels uniform in ``atanh r``: near ``r = +-1`` (where E has poles) the panels shrink
geometrically. The same routine gives Phi2 (weight 1 instead of rho - r).

``relu_pair_kernel`` is the fast path for U assembly: the correlation of a pair of random features does not
depend on (i, t), so its quadrature nodes, the constants ``1/(2(1-r^2))``, ``1/(1+|r|)`` and the weights
``(rho - r) w / (2 pi)`` are computed once per pair; each (i, t) then costs one exp per node. It expands about
rho_0 = 0 for both signs (absolute, not relative, accuracy in the far tails: tests state the bound).

cos: ``E[cos u] = cos(mu) e^{-s^2/2}``; pairs by the sum formula. erf: ``E[erf u] = erf(mu/sqrt(1 + 2 s^2))``;
pairs exactly through Phi2 (``erf(u) = 2 P(xi < sqrt2 u) - 1`` with an independent standard normal xi),
with the 1-D Gauss-Hermite reduction of THEORY.md available as ``erf_pair_gh`` (a cross-check).
tanh (and any callable): Gauss-Hermite quadrature behind the same interface (``n_quad`` nodes per
dimension); its error is estimated by comparing with twice the nodes.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf, erfc

__all__ = [
    "Activation",
    "ReLU",
    "Cos",
    "Erf",
    "GaussHermiteActivation",
    "get_activation",
    "ACTIVATIONS",
    "norm_cdf",
    "norm_pdf",
    "bvn_cdf",
    "relu_g",
    "relu_second_std",
    "relu_pair_std",
    "relu_pair_kernel",
    "erf_pair_gh",
    "fourier_embedding",
]

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
    """int_lo^hi (rho - r)^[weighted] phi2(a, b; r) dr for -1 <= lo <= hi <= 1 (arrays (m,))."""
    m = a.shape[0]
    out = np.zeros(m)
    if m == 0:
        return out
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
    r_hi = np.maximum(big, small)
    r_lo = np.minimum(big, small)
    wl = np.clip(r_lo, lo, rc)
    wh = np.clip(r_hi, rc, hi)
    x0, w0 = _gl(_NODES)

    def side(ra, rb):
        sa = np.arctanh(np.clip(ra, -1.0, 1.0))
        sb = np.arctanh(np.clip(rb, -1.0, 1.0))
        sa_c = np.clip(sa, -_S_CAP, _S_CAP)
        sb_c = np.clip(sb, -_S_CAP, _S_CAP)
        npan = np.maximum(2, np.ceil((sb_c - sa_c) / _DS)).astype(np.int64)  # >= 2: <= 20 e-folds each
        ta, tb = np.arcsin(np.clip(ra, -1, 1)), np.arcsin(np.clip(rb, -1, 1))
        res = np.zeros(m)
        for k in range(int(npan.max())):
            idx = np.nonzero(npan > k)[0]
            nk = npan[idx]
            # panel edges uniform in s = atanh r (clipped), the outermost edges exactly at theta_a, theta_b
            s0 = sa_c[idx] + (sb_c[idx] - sa_c[idx]) * k / nk
            s1 = sa_c[idx] + (sb_c[idx] - sa_c[idx]) * (k + 1) / nk
            t0 = np.where(k == 0, ta[idx], np.arcsin(np.tanh(s0)))
            t1 = np.where(k + 1 == nk, tb[idx], np.arcsin(np.tanh(s1)))
            h = t1 - t0
            th = (t0 + 0.5 * h)[:, None] + (0.5 * h)[:, None] * x0[None, :]
            r = np.sin(th)
            c = np.cos(th)
            E = _exponent(a[idx, None], b[idx, None], r, c * c)
            f = np.exp(-E)
            if weighted:
                f = f * (rho[idx, None] - r)
            res[idx] += 0.5 * h * (f @ w0)
        return res

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = side(wl, rc) + side(rc, wh)
    return out / (2.0 * np.pi)


def _tail_int(k: int, x):
    """T_k(x) = int_0^inf y^k exp(-x y - y^2/2) dy for x >= 0 (windowed composite Gauss-Legendre)."""
    Y = np.sqrt(x * x + 2 * _WINDOW) - x
    return _composite(lambda y, i: y**k * np.exp(-x[i, None] * y - 0.5 * y * y), np.zeros_like(x), Y, 1.0)


def relu_g(alpha):
    """``g(a) = E[(a + x)+] = a Phi(a) + phi(a)``; for a < -1 as ``phi(a) T_1(-a)`` (no cancellation)."""
    a = np.asarray(alpha, dtype=np.float64)
    flat = a.ravel()
    out = np.empty_like(flat)
    p = flat >= -1.0
    out[p] = flat[p] * norm_cdf(flat[p]) + norm_pdf(flat[p])
    q = ~p
    out[q] = norm_pdf(flat[q]) * _tail_int(1, -flat[q])
    return out.reshape(a.shape)


def relu_second_std(alpha):
    """``E[((a + x)+)^2] = (a^2 + 1) Phi(a) + a phi(a)``; for a < -1 as ``phi(a) T_2(-a)``."""
    a = np.asarray(alpha, dtype=np.float64)
    flat = a.ravel()
    out = np.empty_like(flat)
    p = flat >= -1.0
    out[p] = (flat[p] ** 2 + 1) * norm_cdf(flat[p]) + flat[p] * norm_pdf(flat[p])
    q = ~p
    out[q] = norm_pdf(flat[q]) * _tail_int(2, -flat[q])
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
    return _composite(f, lo, xc, 1.0) + _composite(f, xc, hi, 1.0)


def _check_rho(rho):
    if np.any(np.abs(rho) > 1) or not np.all(np.isfinite(rho)):
        raise ValueError("rho (correlation) must lie in [-1, 1]")


def bvn_cdf(alpha, beta, rho):
    """Bivariate standard normal CDF ``Phi2(alpha, beta; rho) = P(x < alpha, y < beta)``, vectorised.

    Relative accuracy ~1e-13 including deep tails and |rho| -> 1 (see module docstring)."""
    a, b, r = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(alpha, beta, rho))
    _check_rho(r)
    shape = a.shape
    a, b, r = a.ravel(), b.ravel(), r.ravel()
    out = np.empty(a.shape)
    pos = r >= 0
    ap, bp, rp = a[pos], b[pos], r[pos]
    out[pos] = norm_cdf(ap) * norm_cdf(bp) + _rho_integral(ap, bp, np.zeros_like(rp), rp, rp, False)
    an, bn, rn = a[~pos], b[~pos], r[~pos]
    out[~pos] = _segment(an, bn, False) + _rho_integral(an, bn, -np.ones_like(rn), rn, rn, False)
    return out.reshape(shape)


def relu_pair_std(alpha, beta, rho):
    """``G(alpha, beta; rho) = E[(alpha + x)+ (beta + y)+]``, x, y standard normal with correlation rho.

    Every term of the expansion is non-negative (module docstring): relative accuracy ~1e-13 wherever the
    value is above the float64 underflow (~1e-290), including |alpha| = 30 and rho = +-0.999."""
    a, b, r = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(alpha, beta, rho))
    _check_rho(r)
    shape = a.shape
    a, b, r = a.ravel(), b.ravel(), r.ravel()
    out = np.empty(a.shape)
    pos = r >= 0
    ap, bp, rp = a[pos], b[pos], r[pos]
    out[pos] = (relu_g(ap) * relu_g(bp) + rp * norm_cdf(ap) * norm_cdf(bp)
                + _rho_integral(ap, bp, np.zeros_like(rp), rp, rp, True))
    an, bn, rn = a[~pos], b[~pos], r[~pos]
    out[~pos] = (_segment(an, bn, True) + (1 + rn) * _segment(an, bn, False)
                 + _rho_integral(an, bn, -np.ones_like(rn), rn, rn, True))
    return out.reshape(shape)


class _ReluPairKernel:
    """E[u+ v+] for fixed pair correlations, nodes and constants hoisted (see module docstring).

    Pairs are sorted by node count so that node l touches a prefix of the (sorted) pairs."""

    def __init__(self, rho, ds: float = 0.5, n: int = 12):
        rho = np.asarray(rho, dtype=np.float64).ravel()
        _check_rho(rho)
        self.rho = rho
        P = rho.size
        s_end = np.arctanh(np.minimum(np.abs(rho), 1 - 1e-16))
        npan = np.maximum(1, np.ceil(s_end / ds)).astype(np.int64)
        order = np.argsort(-npan, kind="stable")
        self.order = order
        self.inv = np.empty(P, dtype=np.int64)
        self.inv[order] = np.arange(P)
        x0, w0 = _gl(n)
        Lmax = int(npan.max()) * n if P else 0
        c1 = np.zeros((Lmax, P))
        c2 = np.zeros((Lmax, P))
        W = np.zeros((Lmax, P))
        ro = rho[order]
        so = s_end[order]
        no = npan[order]
        sgn = np.where(ro >= 0, 1.0, -1.0)
        tend = np.arcsin(ro)
        self.count = np.zeros(Lmax, dtype=np.int64)
        for k in range(int(npan.max()) if P else 0):
            m = int(np.sum(no > k))
            t0 = sgn[:m] * np.arcsin(np.tanh(so[:m] * k / no[:m]))
            t1 = np.where(k + 1 == no[:m], tend[:m], sgn[:m] * np.arcsin(np.tanh(so[:m] * (k + 1) / no[:m])))
            h = t1 - t0
            th = (t0 + 0.5 * h)[None, :] + (0.5 * h)[None, :] * x0[:, None]      # (n, m)
            r = np.sin(th)
            c = np.cos(th)
            c1[k * n:(k + 1) * n, :m] = 1.0 / (2.0 * c * c)
            c2[k * n:(k + 1) * n, :m] = 1.0 / (1.0 + np.abs(r))
            W[k * n:(k + 1) * n, :m] = (0.5 * h)[None, :] * w0[:, None] * (ro[:m][None, :] - r) / (2 * np.pi)
            self.count[k * n:(k + 1) * n] = m
        self.c1, self.c2, self.W, self.sgn = c1, c2, W, sgn
        self.n_nodes = int(np.sum(self.count))

    def std(self, alpha, beta, g_a=None, g_b=None, P_a=None, P_b=None):
        """G(alpha_p, beta_p; rho_p) for the P pairs (inputs (P,) in the caller's order)."""
        a = np.asarray(alpha, dtype=np.float64)[self.order]
        b = np.asarray(beta, dtype=np.float64)[self.order]
        g_a = relu_g(a) if g_a is None else np.asarray(g_a)[self.order]
        g_b = relu_g(b) if g_b is None else np.asarray(g_b)[self.order]
        P_a = norm_cdf(a) if P_a is None else np.asarray(P_a)[self.order]
        P_b = norm_cdf(b) if P_b is None else np.asarray(P_b)[self.order]
        d2 = (a - self.sgn * b) ** 2
        ab = self.sgn * a * b
        acc = np.zeros_like(a)
        buf = np.empty_like(a)
        for l in range(self.count.size):
            m = self.count[l]
            e = buf[:m]
            np.multiply(d2[:m], self.c1[l, :m], out=e)
            e += ab[:m] * self.c2[l, :m]
            np.negative(e, out=e)
            np.exp(e, out=e)
            e *= self.W[l, :m]
            acc[:m] += e
        res = g_a * g_b + self.rho[self.order] * P_a * P_b + acc
        return res[self.inv]

    def __call__(self, mu_u, s_u, mu_v, s_v):
        s_u = np.asarray(s_u, dtype=np.float64)
        s_v = np.asarray(s_v, dtype=np.float64)
        return s_u * s_v * self.std(np.asarray(mu_u) / s_u, np.asarray(mu_v) / s_v)


def relu_pair_kernel(rho, ds: float = 0.5, n: int = 12) -> _ReluPairKernel:
    """Fast ReLU pair moments for fixed per-pair correlations ``rho`` (P,): see :class:`_ReluPairKernel`."""
    return _ReluPairKernel(rho, ds=ds, n=n)


# ----------------------------------------------------------------------------- activations
def _mss(mu, s, name="s"):
    mu = np.asarray(mu, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if np.any(~(s > 0)) or not np.all(np.isfinite(s)):
        raise ValueError(f"{name} (standard deviation) must be finite and > 0")
    if not np.all(np.isfinite(mu)):
        raise ValueError("mu (mean) must be finite")
    return mu, s


class Activation:
    """Base class: an elementwise nonlinearity with Gaussian moments (see module docstring)."""

    name = "activation"

    def __call__(self, u):
        raise NotImplementedError

    def mean(self, mu, s):
        raise NotImplementedError

    def second(self, mu, s):
        return self.pair(mu, s, mu, s, 1.0)

    def mean_deriv(self, mu, s):
        """E[sigma'(u)] (Stein: E[z sigma(mu + s z)] = s E[sigma'(u)]); used by the direct-score V."""
        raise NotImplementedError

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        raise NotImplementedError

    def pair_kernel(self, rho):
        """Callable ``(mu_u, s_u, mu_v, s_v) -> E[sigma(u) sigma(v)]`` for fixed per-pair ``rho`` (P,)."""
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        return lambda mu_u, s_u, mu_v, s_v: self.pair(mu_u, s_u, mu_v, s_v, rho)

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """``max(u, 0)``: closed forms (derivations/r1_moments.py)."""

    name = "relu"

    def __call__(self, u):
        return np.maximum(np.asarray(u, dtype=np.float64), 0.0)

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return s * relu_g(mu / s)

    def second(self, mu, s):
        mu, s = _mss(mu, s)
        return s * s * relu_second_std(mu / s)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        return s_u * s_v * relu_pair_std(mu_u / s_u, mu_v / s_v, rho)

    def pair_kernel(self, rho):
        return relu_pair_kernel(rho)

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        return norm_cdf(mu / s)


class Cos(Activation):
    """``cos u``: ``E[cos u] = cos(mu) exp(-s^2/2)``; pairs by ``cos u cos v = (cos(u-v) + cos(u+v))/2``."""

    name = "cos"

    def __call__(self, u):
        return np.cos(np.asarray(u, dtype=np.float64))

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return np.cos(mu) * np.exp(-0.5 * s * s)

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        return -np.sin(mu) * np.exp(-0.5 * s * s)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        var_m = (s_u - s_v) ** 2 + 2 * (1 - rho) * s_u * s_v   # Var(u - v)
        var_p = np.where(rho < 0, (s_u - s_v) ** 2 + 2 * (1 + rho) * s_u * s_v,   # Var(u + v)
                         s_u**2 + s_v**2 + 2 * rho * s_u * s_v)
        return 0.5 * (np.cos(mu_u - mu_v) * np.exp(-0.5 * var_m) + np.cos(mu_u + mu_v) * np.exp(-0.5 * var_p))


class Erf(Activation):
    """``erf u``: ``E[erf u] = erf(mu / sqrt(1 + 2 s^2))``; pairs exactly through the bivariate normal CDF:
    ``E[erf u erf v] = 4 Phi2(a_u, a_v; rho') - 2 Phi(a_u) - 2 Phi(a_v) + 1`` with
    ``a = sqrt2 mu / sqrt(1 + 2 s^2)`` and ``rho' = 2 rho s_u s_v / sqrt((1 + 2 s_u^2)(1 + 2 s_v^2))``."""

    name = "erf"

    def __call__(self, u):
        return erf(np.asarray(u, dtype=np.float64))

    def mean(self, mu, s):
        mu, s = _mss(mu, s)
        return erf(mu / np.sqrt(1 + 2 * s * s))

    def mean_deriv(self, mu, s):
        mu, s = _mss(mu, s)
        q = 1 + 2 * s * s
        return 2 / np.sqrt(np.pi) * np.exp(-mu * mu / q) / np.sqrt(q)

    def pair(self, mu_u, s_u, mu_v, s_v, rho):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        qu, qv = np.sqrt(1 + 2 * s_u * s_u), np.sqrt(1 + 2 * s_v * s_v)
        au, av = _SQ2 * mu_u / qu, _SQ2 * mu_v / qv
        rp = 2 * rho * s_u * s_v / (qu * qv)
        return 4 * bvn_cdf(au, av, rp) - 2 * norm_cdf(au) - 2 * norm_cdf(av) + 1


def erf_pair_gh(mu_u, s_u, mu_v, s_v, rho, n: int = 80):
    """THEORY.md's 1-D Gauss-Hermite reduction of ``E[erf u erf v]``: conditioning on x (u = mu_u + s_u x),
    ``E[erf v | x] = erf((mu_v + s_v rho x) / sqrt(1 + 2 s_v^2 (1 - rho^2)))``; n nodes in x."""
    xg, wg = np.polynomial.hermite_e.hermegauss(n)
    wg = wg / np.sqrt(2 * np.pi)
    mu_u, s_u, mu_v, s_v, rho = (np.asarray(v, dtype=np.float64)[..., None]
                                 for v in np.broadcast_arrays(mu_u, s_u, mu_v, s_v, rho))
    val = erf(mu_u + s_u * xg) * erf((mu_v + s_v * rho * xg) / np.sqrt(1 + 2 * s_v**2 * (1 - rho**2)))
    return val @ wg


class GaussHermiteActivation(Activation):
    """Any elementwise callable: moments by Gauss-Hermite quadrature (``n_quad`` nodes per dimension).

    Pairs use the tensor rule on ``(x, rho x + sqrt(1-rho^2) y)``. The quadrature error is not zero: for
    tanh it decays like exp(-c sqrt(n)) with c shrinking as s grows (poles at +-i pi/2); ``error_estimate``
    compares n with 2n nodes."""

    def __init__(self, fn, name: str = "custom", n_quad: int = 48):
        if not callable(fn):
            raise TypeError("fn must be callable")
        if isinstance(n_quad, bool) or int(n_quad) != n_quad or n_quad < 2:
            raise ValueError(f"n_quad must be an integer >= 2; got {n_quad!r}")
        self.fn = fn
        self.name = name
        self.n_quad = int(n_quad)

    def __call__(self, u):
        return self.fn(np.asarray(u, dtype=np.float64))

    def _nodes(self, n):
        x, w = np.polynomial.hermite_e.hermegauss(n)
        return x, w / np.sqrt(2 * np.pi)

    def mean(self, mu, s, n=None):
        mu, s = _mss(mu, s)
        x, w = self._nodes(n or self.n_quad)
        return self.fn(mu[..., None] + s[..., None] * x) @ w

    def mean_deriv(self, mu, s, n=None):
        mu, s = _mss(mu, s)
        x, w = self._nodes(n or self.n_quad)
        return (self.fn(mu[..., None] + s[..., None] * x) @ (w * x)) / s

    def pair(self, mu_u, s_u, mu_v, s_v, rho, n=None):
        mu_u, s_u = _mss(mu_u, s_u, "s_u")
        mu_v, s_v = _mss(mu_v, s_v, "s_v")
        rho = np.asarray(rho, dtype=np.float64)
        _check_rho(rho)
        x, w = self._nodes(n or self.n_quad)
        r = np.sqrt(np.maximum(0.0, (1 - rho) * (1 + rho)))
        fu = self.fn(mu_u[..., None] + s_u[..., None] * x)                                   # (..., n)
        yv = rho[..., None, None] * x[:, None] + r[..., None, None] * x[None, :]             # (..., n, n)
        fv = self.fn(mu_v[..., None, None] + s_v[..., None, None] * yv)
        return np.einsum("...i,...ij,i,j->...", fu, fv, w, w)

    def error_estimate(self, mu_u, s_u, mu_v, s_v, rho):
        """|pair(n) - pair(2n)|: the a-posteriori error of the n-node rule."""
        return np.abs(self.pair(mu_u, s_u, mu_v, s_v, rho)
                      - self.pair(mu_u, s_u, mu_v, s_v, rho, n=2 * self.n_quad))


ACTIVATIONS = ("relu", "erf", "cos", "tanh")


def get_activation(activation) -> Activation:
    """An Activation from a name in ``ACTIVATIONS`` or an Activation instance."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.lower()
        if key == "relu":
            return ReLU()
        if key == "cos":
            return Cos()
        if key == "erf":
            return Erf()
        if key == "tanh":
            return GaussHermiteActivation(np.tanh, name="tanh")
    raise ValueError(f"activation must be one of {ACTIVATIONS} or an Activation; got {activation!r}")


# ----------------------------------------------------------------------------- time embedding
def fourier_embedding(t, K: int, T: float) -> np.ndarray:
    """``phi(t) = (1, sin(2 pi k t/T)_{k=1..K}, cos(2 pi k t/T)_{k=1..K})``: shape (m, 2K+1) (order as written)."""
    if isinstance(K, bool) or int(K) != K or K < 0:
        raise ValueError(f"K (number of Fourier frequencies) must be an integer >= 0; got {K!r}")
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T (embedding period) must be finite and > 0; got {T!r}")
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError("t must be a finite scalar or 1-D array")
    ang = 2 * np.pi * np.outer(t, np.arange(1, int(K) + 1)) / T
    return np.concatenate([np.ones((t.size, 1)), np.sin(ang), np.cos(ang)], axis=1)
