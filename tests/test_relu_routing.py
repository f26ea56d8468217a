"""U assembly (``_ReluPairKernel.weighted_sum``) in the far tails (issue 16): the fast quadrature is only
absolutely accurate on far-tail terms (min(a, b) < -6, or cancelling terms with rho < 0 and a + b < 1), so a U
entry made of such terms can be wrong by 1e-8 .. 1e+1 relative; ``weighted_sum`` routes the terms that could
spoil their entry to ``relu_pair_std`` when called with ``route=True`` (module docstring of rf/_relu_pair_kernel.py,
"Routing"; not the default, since it doubles U's assembly at the papers' size). Judged here against the
scalar accurate path summed, ``sum_b w_b s_j s_k relu_pair_std(...)``, at 1e-12 relative per entry (the routed
terms are relu_pair_std itself; the rest hold 1e-13 each, and the entry sum adds round-off).

Power: without routing (the default) the far-tail entries fail by > 1e-6 (test_far_entries_need_routing);
with a routing ratio of 1e4 instead of 100 test_cancelling_term_at_the_ratio_margin fails (3.8e-11);
with the routing threshold made useless (_U_REL huge) or the cancellation ratio made lax (_R_CANCEL huge) the
test fails as well (test_routing_thresholds_have_power).
"""
import numpy as np
import pytest

from rftheory.rf import _relu_pair_kernel
from rftheory.rf._bvn import relu_pair_std
from rftheory.rf._relu_pair_kernel import relu_pair_kernel

REL = 1e-12
# (a, b, rho) about which the B steps of each pair scatter by +-0.5: every step of the pair is in the far tail
CASES = [(-20.0, -18.0, 0.9), (-8.0, 8.0, -(1 - 1e-6)), (-3.0, 2.0, -0.999), (-12.0, -12.0, 1 - 1e-6),
         (-7.0, -30.0, 0.3), (-2.0, 1.5, -0.99), (-4.0, -3.0, -0.9), (-30.0, 29.0, -0.5)]


def _far_setup(B=12, seed=3):
    rng = np.random.default_rng(seed)
    rho = np.array([c[2] for c in CASES])
    P = rho.size
    jj, kk = np.arange(P), P + np.arange(P)
    alpha = np.empty((B, 2 * P))
    for i, (a, b, _) in enumerate(CASES):
        alpha[:, i] = a + rng.uniform(-0.5, 0.5, B)
        alpha[:, P + i] = b + rng.uniform(-0.5, 0.5, B)
    S = rng.uniform(0.5, 2.0, (B, 2 * P))
    w = rng.uniform(0.1, 1.0, B)
    return jj, kk, rho, alpha, S, w


def _scalar_sum(jj, kk, rho, alpha, S, w):
    ref = np.zeros(jj.size)
    for b in range(alpha.shape[0]):
        ref += w[b] * S[b, jj] * S[b, kk] * relu_pair_std(alpha[b, jj], alpha[b, kk], rho)
    return ref


def test_far_entries_match_the_scalar_accurate_sum():
    jj, kk, rho, alpha, S, w = _far_setup()
    ref = _scalar_sum(jj, kk, rho, alpha, S, w)
    assert ref.min() > 1e-300
    k = relu_pair_kernel(rho)
    got = k.weighted_sum(jj, kk, alpha, S, w, route=True)
    assert np.max(np.abs(got - ref) / ref) <= REL
    # several weightings at once: each column as the single weighting
    W2 = np.column_stack([w, w[::-1]])
    got2 = k.weighted_sum(jj, kk, alpha, S, W2, route=True)
    assert np.max(np.abs(got2[:, 0] - ref) / ref) <= REL
    assert np.max(np.abs(got2[:, 1] - _scalar_sum(jj, kk, rho, alpha, S, w[::-1])) / ref) <= 10 * REL


def test_far_entries_need_routing():
    jj, kk, rho, alpha, S, w = _far_setup()
    ref = _scalar_sum(jj, kk, rho, alpha, S, w)
    fast = relu_pair_kernel(rho).weighted_sum(jj, kk, alpha, S, w)            # the default: no routing
    assert np.max(np.abs(fast - ref) / ref) > 1e-6          # observed: 9 (cancellation), 2e-8 (missed peak)


@pytest.mark.parametrize("name,value", [("_U_REL", 1e300), ("_R_CANCEL", 1e300)])
def test_routing_thresholds_have_power(monkeypatch, name, value):
    monkeypatch.setattr(_relu_pair_kernel, name, value)
    jj, kk, rho, alpha, S, w = _far_setup()
    ref = _scalar_sum(jj, kk, rho, alpha, S, w)
    got = relu_pair_kernel(rho).weighted_sum(jj, kk, alpha, S, w, route=True)
    assert np.max(np.abs(got - ref) / ref) > 100 * REL


def _mixed_setup(seed=0, p=40, B=24):
    """Unit directions in the plane (rho spread to +-1, as in the papers' D = 2), alphas from -14 to 10."""
    rng = np.random.default_rng(seed)
    jj, kk = np.triu_indices(p, 1)
    W = rng.standard_normal((p, 2))
    W /= np.linalg.norm(W, axis=1)[:, None]
    rho = np.clip((W[jj] * W[kk]).sum(1), -1, 1)
    alpha = rng.normal(-2.0, 4.0, (B, p))
    return jj, kk, rho, alpha, rng.uniform(0.5, 2.0, (B, p)), rng.uniform(0.1, 1.0, B)


def test_mixed_entries_hold_relative_accuracy_and_do_not_depend_on_threads():
    jj, kk, rho, alpha, S, w = _mixed_setup()
    ref = _scalar_sum(jj, kk, rho, alpha, S, w)
    k = relu_pair_kernel(rho)
    one = k.weighted_sum(jj, kk, alpha, S, w, threads=1, chunk=128, route=True)
    two = k.weighted_sum(jj, kk, alpha, S, w, threads=2, chunk=128, route=True)
    assert np.array_equal(one, two)
    pos = ref > 1e-300
    assert pos.sum() > 700
    assert np.max(np.abs(one[pos] - ref[pos]) / ref[pos]) <= REL
    assert np.all(np.abs(one[~pos]) <= 1e-300)
    fast = k.weighted_sum(jj, kk, alpha, S, w)                     # the region is reached: observed 5e-12
    assert np.max(np.abs(fast[pos] - ref[pos]) / ref[pos]) > REL


def test_cancelling_term_at_the_ratio_margin():
    """One term with R = (g_a g_b + |rho| P_a P_b) / G ~ 9e3, where the fast term is 3.8e-11 off: a routing ratio
    of 1e4 instead of _R_CANCEL = 100 would leave it (mapped: the fast term is within 30 eps R)."""
    a, b, rho = np.array([1.5]), np.array([-6.0]), np.array([-0.6])
    ref = relu_pair_std(a, b, rho)
    k = relu_pair_kernel(rho)
    args = (np.array([0]), np.array([1]), np.array([[a[0], b[0]]]), np.ones((1, 2)), np.ones(1))
    assert abs(k.weighted_sum(*args)[0] - ref[0]) > 1e-11 * ref[0]
    assert abs(k.weighted_sum(*args, route=True)[0] - ref[0]) <= REL * ref[0]
