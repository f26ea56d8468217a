"""The moments' composite Gauss-Legendre time rule (issue 17): no panel wider than (T_emb/K)/panels_per_period,
the geometric panels included (before, the last geometric panels were wider than a period of the fastest
Fourier mode and dominated the error of U, V at the papers' size)."""
import numpy as np
import pytest

from rftheory.rf.moments import time_rule

PAPER = (1e-3, 40.0, 128, 40.0)


def _edges(t0, T, K, T_emb, n_gl, ppp, cap=True):
    nodes, wts = time_rule(t0, T, K, T_emb, n_gl, ppp, cap_panels=cap)
    x0, _ = np.polynomial.legendre.leggauss(n_gl)
    mids = nodes.reshape(-1, n_gl).mean(axis=1)
    half = (nodes.reshape(-1, n_gl)[:, -1] - mids) / x0[-1]
    return mids - half, mids + half


@pytest.mark.parametrize("n_gl,ppp", [(8, 2.0), (12, 1.0), (5, 3.0)])
def test_no_panel_wider_than_the_oscillation_width(n_gl, ppp):
    lo, hi = _edges(*PAPER, n_gl, ppp)
    width = (40.0 / 128) / ppp
    assert np.all(hi - lo <= width * (1 + 1e-9))
    assert np.allclose(lo[1:], hi[:-1], rtol=0, atol=1e-12) and lo[0] == pytest.approx(1e-3) and hi[-1] == pytest.approx(40.0, rel=1e-14)
    lo0, hi0 = _edges(*PAPER, n_gl, ppp, cap=False)             # the old edges are all kept
    new = np.concatenate([lo, hi[-1:]])
    assert all(np.min(np.abs(new - e)) < 1e-12 for e in np.concatenate([lo0, hi0[-1:]]))


def test_uncapped_rule_is_the_old_one():
    nodes, wts = time_rule(*PAPER, 12, 2.0, cap_panels=False)
    assert nodes.size == 3120 and np.all(np.diff(nodes) > 0)
    assert time_rule(*PAPER, 12, 2.0)[0].size == 3168


def test_the_fastest_mode_is_integrated_within_the_gauss_legendre_bound():
    """int cos(2 pi K t / T_emb) dt over [t0, T] with 8 nodes per panel, in units of 1/w: within the
    Gauss-Legendre remainder bound sum_panels (w L)^(2n+1) (n!)^4 / ((2n+1) ((2n)!)^3) (+ round-off of the
    sum and of the phases w t) with the split panels (observed 2.5e-12); the old rule (panel [0.512, 1] of 1.6
    periods) is off by 7.7e-7 -- far outside the bound of its own panels' width cap -- so the test has power."""
    from math import factorial

    t0, T, K, Te = PAPER
    n = 8
    w = 2 * np.pi * K / Te
    exact = (np.sin(w * T) - np.sin(w * t0)) / w
    for cap in (True, False):
        nodes, wts = time_rule(t0, T, K, Te, n, 2.0, cap_panels=cap)
        lo, hi = _edges(t0, T, K, Te, n, 2.0, cap)
        terms = wts * np.cos(w * nodes)
        err = abs(terms.sum() - exact) * w
        c = factorial(n) ** 4 / ((2 * n + 1) * factorial(2 * n) ** 3)
        # the bound as the capped rule would have it (every panel <= the cap width)
        L = np.minimum(hi - lo, (Te / K) / 2.0)
        eps = np.finfo(float).eps
        # + round-off: of the sum, and of the phases w t (|w t| up to 800 rad) at the nodes and in the exact value
        tol = (np.sum((w * L) ** (2 * n + 1)) * c + 10 * eps * np.abs(terms).sum() * w
               + eps * w * np.sum(np.abs(wts) * w * nodes) + 2 * eps * w * T)
        assert (err <= tol) == cap, (cap, err, tol)
