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

``relu_pair_kernel`` was the fast path for U assembly (now the baseline, ``rf/_exact.RELU_PAIRS = "kernel"``;
production U uses the Mehler series of ``rf/_mehler.py``); its ``std`` and calls remain the accurate-fast pair
moment for many pairs at once. The correlation of a pair of random features does not
depend on (i, t), so its quadrature nodes, the constants ``1/(2(1-r^2))``, ``1/(1+|r|)`` and the weights
``(rho - r) w / (2 pi)`` are computed once per pair; each (i, t) then costs one exp per node. It expands about
rho_0 = 0 for both signs (absolute, not relative, accuracy in the far tails: tests state the bound). The
constants are stored pair-major in blocks of 64 sorted pairs, so that a batch of B (i, t) steps costs per block
one small matmul for the exponents (nodes x B), one exp, and one matmul for the node sum
(``weighted_sum``; pair chunks can run on several threads).

Far tails of the fast kernel: expanded about rho_0 = 0 with fixed nodes (12 per panel of width 0.75 in
atanh r: 25 per pair on average for uniform angles) it cancels for rho < 0 (the ``rho Phi(a) Phi(b)`` term
against the rest when the value is tiny) and misses the peak of a sharp integrand for rho > 0, so it is only
*absolutely* accurate where ``min(a, b) < -6`` or (rho < 0 and ``a + b < 1``): those entries are *flagged*
(the region was mapped against ``relu_pair_std`` on a grid of a, b in [-38, 10] and |rho| up to 1 - 1e-6;
outside it the kernel holds 1e-12 relative, tests/test_relu_far_tails.py). ``std`` (and calling the kernel)
recomputes every flagged entry with ``relu_pair_std``: relative accuracy ~1e-13 wherever the value is a
normal float.

Routing in ``weighted_sum(route=True)`` (U assembly), where a flagged term is one of many summed into an entry:
a term is a *candidate* when min(a, b) < -6, or when it cancels (rho < 0, a + b < 1) with
``R = (g_a g_b + |rho| P_a P_b) / G > _R_CANCEL = 100`` (for R <= 1e4 the fast term is within 30 eps R of G,
mapped on a grid of a, b in [-6, 7]: below 100 it holds 7e-13 relative by itself). Every fast term is within
``_KERN_ABS = 1e-13`` of ``s_j s_k sqrt(E[u+^2] E[v+^2])`` (tests/test_relu_far_tails.py); an entry's
candidates in a batch are recomputed by ``relu_pair_std`` unless these bounds sum to less than ``_U_REL = 1e-13``
of the entry's batch sum (weights >= 0, so the batch sum is below the final entry). Each U entry then holds
~1e-12 relative, including one made of far-tail terms only (tests/test_relu_routing.py). It is *not* the
default: at the papers' size (p = 1000, D = 2, so many rho near -1) about a third of the terms are flagged and
~10 % are routed (relu_pair_std costs ~7x a fast term), which doubles U's assembly time; without routing, ~3 %
of U's entries are more than 1e-12 relative off (max 1.1e-17 of the largest entry).
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
_BLOCK = 64            # pairs per block of the hoisted ReLU kernel
_FAR_MIN = -6.0        # fast kernel: flagged where min(a, b) < _FAR_MIN ...
_FAR_SUM = 1.0         # ... or rho < 0 and a + b < _FAR_SUM (module docstring)
_KERN_DS = 0.75        # fast kernel: panel width in atanh(r) ...
_KERN_N = 12           # ... and Gauss-Legendre nodes per panel
_R_CANCEL = 100.0      # routing (weighted_sum): a cancelling term is a candidate when (g_a g_b + |rho| P_a P_b) / G
_KERN_ABS = 1e-13      # exceeds this, a far term always; a candidate's error is <= _KERN_ABS sqrt(E[u+^2] E[v+^2])
_U_REL = 1e-13         # (tested); they are routed unless their bounds sum to less than this share of the entry


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


class _ReluPairKernel:
    """E[u+ v+] for fixed pair correlations, nodes and constants hoisted (see module docstring).

    Pairs are sorted by node count so that node l touches a prefix of the (sorted) pairs."""

    def __init__(self, rho, ds: float = _KERN_DS, n: int = _KERN_N):
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
        self.sgn = sgn
        self.n_nodes = int(np.sum(self.count))
        self.rho_sorted = ro
        # pair-major blocks of _BLOCK sorted pairs: C (m, L, 2) = -(c1, c2), Wb (m, 1, L); a pair with fewer
        # than L nodes is padded with zeros (exp(0) times weight 0). Then, for B steps at once,
        # E = C @ (d2, ab) (m, L, B), exp in place, and the node sum is Wb @ exp(E): two small matmuls and one
        # exp per (pair, node, step), no per-node Python loop.
        self.blocks = []
        for c0 in range(0, P, _BLOCK):
            c1e = min(c0 + _BLOCK, P)
            L = int(np.searchsorted(-self.count, -c0, side="left"))
            Cb = np.empty((c1e - c0, L, 2))
            Cb[:, :, 0] = -c1[:L, c0:c1e].T
            Cb[:, :, 1] = -c2[:L, c0:c1e].T
            self.blocks.append((c0, c1e, Cb, np.ascontiguousarray(W[:L, c0:c1e].T)[:, None, :]))
        self.Lmax = self.blocks[0][2].shape[1] if self.blocks else 0
        del c1, c2, W

    def _integral(self, i0, i1, a, b):
        """sum_nodes W exp(-E) for the sorted pairs i0..i1 (block-aligned i0); a, b (i1 - i0, B)."""
        n, B = a.shape
        sg = self.sgn[i0:i1, None]
        X = np.empty((n, 2, B))
        d = a - sg * b
        np.multiply(d, d, out=X[:, 0, :])
        np.multiply(a * b, sg, out=X[:, 1, :])
        acc = np.empty((n, B))
        k0 = i0 // _BLOCK
        buf = np.empty(_BLOCK * max(self.blocks[k0][2].shape[1], 1) * B) if n else None
        for c0, c1e, Cb, Wb in self.blocks[k0:]:
            if c0 >= i1:
                break
            m, L = Cb.shape[0], Cb.shape[1]
            E = buf[:m * L * B].reshape(m, L, B)
            np.matmul(Cb, X[c0 - i0:c1e - i0], out=E)
            np.exp(E, out=E)
            acc[c0 - i0:c1e - i0] = np.matmul(Wb, E)[:, 0, :]
        return acc

    def std(self, alpha, beta, g_a=None, g_b=None, P_a=None, P_b=None):
        """G(alpha_p, beta_p; rho_p) for the P pairs (inputs (P,) in the caller's order)."""
        a = np.asarray(alpha, dtype=np.float64)[self.order]
        b = np.asarray(beta, dtype=np.float64)[self.order]
        g_a = relu_g(a) if g_a is None else np.asarray(g_a)[self.order]
        g_b = relu_g(b) if g_b is None else np.asarray(g_b)[self.order]
        P_a = norm_cdf(a) if P_a is None else np.asarray(P_a)[self.order]
        P_b = norm_cdf(b) if P_b is None else np.asarray(P_b)[self.order]
        acc = self._integral(0, a.size, a[:, None], b[:, None])[:, 0]
        res = g_a * g_b + self.rho_sorted * P_a * P_b + acc
        far = self.flagged(a, b, self.rho_sorted)
        if far.any():
            res[far] = relu_pair_std(a[far], b[far], self.rho_sorted[far])
        return res[self.inv]

    @staticmethod
    def flagged(a, b, rho):
        """Entries where the fast kernel is only absolutely accurate (module docstring); broadcasting."""
        far = np.minimum(a, b) < _FAR_MIN
        far |= (rho < 0) & (a + b < _FAR_SUM)
        return far

    def weighted_sum(self, jj, kk, alpha, scale, weight, g=None, P=None, threads: int = 1, chunk: int = 4096,
                     route: bool = False):
        """``sum_b weight_b scale[b, j] scale[b, k] G(alpha[b, j], alpha[b, k]; rho)`` for the pairs (jj, kk) (P,).

        Batched form of :meth:`std` for U assembly: ``alpha``, ``scale`` (and optionally ``g = relu_g(alpha)``,
        ``P = norm_cdf(alpha)``) are per-unit arrays (B, p) for B (point, time) steps, ``weight`` (B,) -- or
        (B, nw) for nw weightings of the same steps at the cost of one, giving (P, nw); weights >= 0. The
        per-pair constants are read once per batch. Pairs are processed in chunks of ``chunk`` (rounded to
        whole blocks) by ``threads`` threads (NumPy releases the GIL in matmul and ufuncs); each chunk is
        computed the same way whatever the thread count, so the result does not depend on it.

        ``route=True``: far-tail terms that could spoil an entry's relative accuracy are recomputed by
        :func:`relu_pair_std` (module docstring, "Routing"): every entry then holds ~1e-12 relative, at about
        twice the cost at the papers' size. The default, ``route=False``, is the fast quadrature alone: each
        entry absolutely accurate (1e-13 of its Cauchy-Schwarz scale), not relatively where far-tail terms
        make it up."""
        alpha = np.atleast_2d(np.asarray(alpha, dtype=np.float64))
        g = relu_g(alpha) if g is None else np.atleast_2d(g)
        P = norm_cdf(alpha) if P is None else np.atleast_2d(P)
        S = np.atleast_2d(np.asarray(scale, dtype=np.float64))
        w = np.asarray(weight, dtype=np.float64)
        multi = w.ndim == 2
        w = w if multi else w.reshape(-1)
        AT, GT, PT, ST = (np.ascontiguousarray(x.T) for x in (alpha, g, P, S))     # (p, B)
        SWT = ST if multi else ST * w[None, :]
        jo = np.asarray(jj)[self.order]
        ko = np.asarray(kk)[self.order]
        npairs = jo.size
        m = max(1, int(chunk) // _BLOCK) * _BLOCK
        out = np.empty((npairs, w.shape[1]) if multi else npairs)
        if route:
            # per unit: any far step in the batch, its lowest alpha, and s sqrt(E[u+^2]) (x |w|)
            far_u = (AT < _FAR_MIN).any(axis=1)
            low_u = AT.min(axis=1) if AT.shape[1] else np.zeros(AT.shape[0])
            wabs = np.abs(w).max(axis=1) if multi else np.abs(w)
            QW = np.sqrt(relu_second_std(AT)) * ST
            QWa = QW * wabs[None, :]

        def run(c0):
            c1 = min(c0 + m, npairs)
            jc, kc = jo[c0:c1], ko[c0:c1]
            aj, ak = AT[jc], AT[kc]
            rc = self.rho_sorted[c0:c1]
            acc = self._integral(c0, c1, aj, ak)
            gg = GT[jc] * GT[kc]
            acc += gg
            pp = PT[jc] * PT[kc]
            pp *= rc[:, None]
            acc += pp
            cand = []       # (rows, steps) of terms that may spoil their entry; error <= _KERN_ABS s s sqrt(E E)
            if route:
                rows = np.nonzero((rc < 0) & (low_u[jc] + low_u[kc] < _FAR_SUM))[0]
                if rows.size:   # cancelling terms (below _R_CANCEL each is accurate to 30 eps R: mapped)
                    As, Bs = aj[rows], ak[rows]
                    r2, c2 = np.nonzero((As + Bs < _FAR_SUM) & (np.minimum(As, Bs) >= _FAR_MIN))
                    rr = rows[r2]
                    bad = ~(gg[rr, c2] - pp[rr, c2] <= _R_CANCEL * acc[rr, c2])
                    cand.append((rr[bad], c2[bad]))
                rows = np.nonzero(far_u[jc] | far_u[kc])[0]
                if rows.size:   # far terms
                    r2, c2 = np.nonzero(np.minimum(aj[rows], ak[rows]) < _FAR_MIN)
                    cand.append((rows[r2], c2))
            acc *= ST[jc]
            acc *= SWT[kc]
            part = acc @ w if multi else acc.sum(axis=1)
            if cand:        # route the candidates of the entries whose bound is not below _U_REL of the sum
                rr, c2 = (np.concatenate(x) for x in zip(*cand))
                bnd = _KERN_ABS * QW[jc[rr], c2] * QWa[kc[rr], c2]
                tot = np.abs(part).min(axis=1) if multi else np.abs(part)
                fail = ~(np.bincount(rr, bnd, minlength=c1 - c0) <= _U_REL * tot)
                sel = fail[rr]
                rr, c2 = rr[sel], c2[sel]
                if rr.size:
                    acc[rr, c2] = (relu_pair_std(aj[rr, c2], ak[rr, c2], rc[rr]) * ST[jc[rr], c2] * SWT[kc[rr], c2])
                    rows = np.nonzero(fail)[0]
                    part[rows] = acc[rows] @ w if multi else acc[rows].sum(axis=1)
            out[c0:c1] = part

        starts = range(0, npairs, m)
        if threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(int(threads)) as ex:
                list(ex.map(run, starts))
        else:
            for c0 in starts:
                run(c0)
        return out[self.inv]

    def __call__(self, mu_u, s_u, mu_v, s_v):
        s_u = np.asarray(s_u, dtype=np.float64)
        s_v = np.asarray(s_v, dtype=np.float64)
        return s_u * s_v * self.std(np.asarray(mu_u) / s_u, np.asarray(mu_v) / s_v)


def relu_pair_kernel(rho, ds: float = _KERN_DS, n: int = _KERN_N) -> _ReluPairKernel:
    """Fast ReLU pair moments for fixed per-pair correlations ``rho`` (P,): see :class:`_ReluPairKernel`."""
    return _ReluPairKernel(rho, ds=ds, n=n)
