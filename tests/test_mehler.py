"""The Mehler-series pair sum of U (rf/_mehler.py) against the precise ReLU pair moment (rf/_bvn.relu_pair_std,
relative ~1e-13, an independent expansion: Price's theorem about rho_0 = 0 or -1 with windowed quadrature).

Tolerance: the series' truncation bound (TOL = 1e-15 per unit s_j s_k) plus round-off of its largest term
``g(a) g(b)`` (the k = 0 term; every other term is <= 0.19 in absolute value): ``1e-14 (1 + g(a) g(b))``,
on a grid of a, b in [-38, 10] and rho up to +-1 (observed <= 2.2e-14 at g g = 18, i.e. 1.2e-15 of the scale).
Power: half the series' orders, or a 1e-9 relative error in the far-pair quadrature's weights, fail it.
"""
import numpy as np
import pytest

from rftheory.rf import _bvn, _mehler

A = np.array([-38, -10, -6, -3, -1, -0.3, 0, 0.5, 1, 3, 6, 10.0])
RHOS = [0.0, 0.3, 0.8, 0.9, 0.95, 0.999, 1 - 1e-6, 1.0]


def _worst(rhos):
    p = A.size
    jj, kk = np.triu_indices(p, 1)
    gg = _bvn.relu_g(A[jj]) * _bvn.relu_g(A[kk])
    worst = 0.0
    for r in rhos:
        for sg in (1, -1):
            rho = np.full(jj.size, sg * r)
            got = _mehler.MehlerPairs(rho, p).weighted_sum(A[None, :], np.ones((1, p)), np.ones((1, 1)))[:, 0]
            ref = _bvn.relu_pair_std(A[jj], A[kk], rho)
            worst = max(worst, float(np.max(np.abs(got - ref) / (1 + gg))))
    return worst


def test_series_matches_precise_pair_moment():
    assert _worst(RHOS) <= 1e-14


def test_half_the_orders_fails(monkeypatch):
    orig = _mehler.n_orders
    monkeypatch.setattr(_mehler, "n_orders", lambda *a: orig(*a) // 2)
    assert _worst([0.9]) > 1e-12


def test_far_quadrature_error_fails(monkeypatch):
    orig = _mehler._ShiftedQuadrature.__init__

    def init(self, *a):
        orig(self, *a)
        self.blocks = [(c0, c1, C, W * (1 + 1e-9)) for c0, c1, C, W in self.blocks]
    monkeypatch.setattr(_mehler._ShiftedQuadrature, "__init__", init)
    assert _worst([0.999]) > 1e-12


def test_orders_follow_the_bound():
    """N grows as rho_c -> 1 and as tol shrinks; the bound at N is below tol and at N - 1 above it."""
    assert _mehler.n_orders(0.5) < _mehler.n_orders(0.9) < _mehler.n_orders(0.95)
    assert _mehler.n_orders(0.9, 1e-10) < _mehler.n_orders(0.9, 1e-15)
    with pytest.raises(ValueError, match="rho_c"):
        _mehler.n_orders(1.0)


def test_threads_and_batches_give_the_same_bits():
    rng = np.random.default_rng(3)
    p, B = 300, 40
    W = rng.standard_normal((p, 2))
    u = W / np.linalg.norm(W, axis=1)[:, None]
    jj, kk = np.triu_indices(p, 1)
    rho = np.clip((u[jj] * u[kk]).sum(1), -1, 1)
    mp = _mehler.MehlerPairs(rho, p, perm=_mehler.unit_order(W))
    assert mp.far.size > 0 and mp.far.size < rho.size            # both parts are exercised
    orders = [t[4] for t in mp.tiles]
    assert min(orders) < max(orders)                              # the tiles skip orders
    alpha, S, w = rng.standard_normal((B, p)) * 3, rng.uniform(0.5, 2, (B, p)), rng.uniform(0.1, 1, (B, 2))
    ref = mp.weighted_sum(alpha, S, w, batch=32, threads=1)
    for threads in (2, 3):
        assert np.array_equal(mp.weighted_sum(alpha, S, w, batch=32, threads=threads), ref)
    # the unit order changes only round-off and truncation below the bound (~1e-16 of the scale here)
    plain = _mehler.MehlerPairs(rho, p).weighted_sum(alpha, S, w, batch=32)
    assert np.max(np.abs(plain - ref)) <= 1e-14 * np.max(np.abs(plain))


def test_mixed_node_counts_and_rho_one_stay_finite():
    """Pairs of one block with different panel counts (padded nodes) and |rho| = 1 exactly: finite, and each
    pair equals the precise moment (the other tests give every pair of a call the same rho)."""
    p = A.size
    jj, kk = np.triu_indices(p, 1)
    rho = np.resize([0.95, -0.999999, 1.0, -1.0, 0.5, 0.9999], jj.size)
    got = _mehler.MehlerPairs(rho, p).weighted_sum(A[None, :], np.ones((1, p)), np.ones((1, 1)))[:, 0]
    ref = _bvn.relu_pair_std(A[jj], A[kk], rho)
    gg = _bvn.relu_g(A[jj]) * _bvn.relu_g(A[kk])
    assert np.all(np.isfinite(got)) and np.max(np.abs(got - ref) / (1 + gg)) <= 1e-14
