"""The fast ReLU pair kernel in the far tails (issues 16 and 17): per-entry values (``std``, calling the kernel)
hold 1e-12 relative wherever the value is a normal float -- the flagged far-tail entries are recomputed by
``relu_pair_std`` -- against mpmath at 30 digits (tests/mp_reference.py); outside the flagged region the fast
quadrature itself holds 1e-12 relative (against ``relu_pair_std``, itself held against mpmath in
tests/test_hostile.py). Tolerance 1e-12: round-off of a few terms (~1e-15) and the quadratures' error
(< 1e-13 measured, worst 9.7e-14 at a = -6, rho = 0.995) are what remain.

Power: with the routing off the far-tail points are off by up to 1e+263 relative (cancellation for rho < 0) or
8e-2 (a missed peak for rho > 0) -- test_without_routing_the_far_tails_fail; a kernel with half the panels
(ds = 1.5) fails the unflagged grid at ~1e-9 (test_coarser_kernel_fails_the_unflagged_grid).

``relu_pair_std`` itself is held over the whole region (a, b in [-38, 10], |rho| <= 1 - 1e-6) at 342 random
points of a fixed seed (tests/relu_far_refs.csv, mpmath at 30 digits, written by tests/make_relu_far_refs.py):
worst 1.2e-13 (before issue 16's last fix: 5.6e-11, five points above 1e-12 -- the angle variable near
r = +-1 and the unit-wide panels of the segment integral lost digits).
"""
from pathlib import Path

import numpy as np
import pytest

from rftheory.rf import _bvn
from rftheory.rf._bvn import relu_pair_std
from rftheory.rf._relu_pair_kernel import _ReluPairKernel, relu_pair_kernel

from .mp_reference import relu_pair_ref

REL = 1e-12
# (alpha, beta, rho): mu/s down to -37 and |rho| up to 1 - 1e-6, both signs; every value a normal float
# the last three were 1.3e-12 .. 2.9e-12 off before issue 16's last fix (rho < 0, a + b near 0 or above)
FAR = [(-30.0, -25.0, 0.5), (-20.0, -20.0, 1 - 1e-6), (-37.0, -37.0, 0.999), (-25.0, 3.0, 0.9),
       (-10.0, -10.0, -0.5), (-6.5, -6.0, -0.1), (-20.0, 20.5, -(1 - 1e-6)),
       (-8.0, 8.0, -(1 - 1e-6)), (-3.0, 2.0, -0.999), (-30.0, 31.0, -0.5)]


@pytest.fixture(scope="module")
def far_refs():
    return np.array([float(relu_pair_ref(a, b, r, dps=30)) for a, b, r in FAR])


def _kernel_values(points):
    a, b, r = (np.array(v) for v in zip(*points))
    k = relu_pair_kernel(r)
    return k.std(a, b), k(a * 0.5, 0.5 * np.ones_like(a), b * 2.0, 2.0 * np.ones_like(b)) / 1.0


def test_far_tails_relative_accuracy_vs_mpmath(far_refs):
    assert np.all(far_refs > 2.3e-308), "the grid must hold normal floats"
    assert np.all(_ReluPairKernel.flagged(*(np.array(v) for v in zip(*FAR))))
    std, called = _kernel_values(FAR)
    rel = np.abs(std - far_refs) / far_refs
    assert rel.max() <= REL, rel
    # __call__ with scales s_u = 0.5, s_v = 2: mu/s as above, value s_u s_v G = G
    assert np.max(np.abs(called - far_refs) / far_refs) <= REL


def _table():
    rows = np.loadtxt(Path(__file__).with_name("relu_far_refs.csv"), delimiter=",", comments="#")
    return rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]


def test_random_far_region_vs_mpmath_table():
    """relu_pair_std and the kernel's std (routed) at 342 random points of the far-tail region."""
    a, b, r, ref = _table()
    assert a.size > 300 and ref.min() > 2.3e-308 and a.min() < -37 and np.abs(r).max() > 1 - 2e-6
    assert np.sum((r < -0.999) & (np.abs(a + b) < 2)) >= 15          # the hard corner is populated (17)
    for v in (relu_pair_std(a, b, r), relu_pair_kernel(r).std(a, b)):
        rel = np.abs(v - ref) / ref
        assert rel.max() <= REL, (rel.max(), a[rel.argmax()], b[rel.argmax()], r[rel.argmax()])


def test_table_rows_are_the_mpmath_reference():
    """A few rows, recomputed now, and the table's points are the generator's (fixed seed)."""
    from .make_relu_far_refs import candidates

    a, b, r, ref = _table()
    ca, cb, cr = candidates()
    pos = np.searchsorted(ca, a, sorter=np.argsort(ca))
    assert np.array_equal(np.sort(ca)[pos], a)
    for i in np.random.default_rng(0).choice(a.size, 3, replace=False):
        assert float(relu_pair_ref(a[i], b[i], r[i], dps=30)) == ref[i]


@pytest.mark.slow
def test_regenerated_table_equals_the_stored_one():
    from .make_relu_far_refs import rows

    got = np.array(rows())
    assert np.array_equal(got, np.column_stack(_table()))


@pytest.mark.parametrize("which", ["g", "second"])
def test_mean_moments_random_far_region_vs_mpmath(which):
    """relu_g and relu_second_std at 200 random alpha in [-38.5, 10] (values normal floats) against mpmath."""
    import mpmath as mp

    a = np.random.default_rng(5).uniform(-38.5, 10, 200)
    f = _bvn.relu_g if which == "g" else _bvn.relu_second_std
    v = f(a)
    with mp.workdps(40):
        ref = np.array([float(x * mp.ncdf(x) + mp.npdf(x)) if which == "g"
                        else float((x * x + 1) * mp.ncdf(x) + x * mp.npdf(x)) for x in map(mp.mpf, a)])
    keep = ref > 2.3e-308
    assert keep.sum() > 150
    rel = np.abs(v[keep] - ref[keep]) / ref[keep]
    assert rel.max() <= REL, (rel.max(), a[keep][rel.argmax()])


def test_without_routing_the_far_tails_fail(far_refs, monkeypatch):
    monkeypatch.setattr(_ReluPairKernel, "flagged",
                        staticmethod(lambda a, b, rho: np.zeros(np.broadcast(a, b, rho).shape, dtype=bool)))
    std, _ = _kernel_values(FAR)
    rel = np.abs(std - far_refs) / far_refs
    assert rel.max() > 1e-3            # observed: 1e+263 (cancellation), 8e-2 (missed peak)


RHO_GRID = np.array([-1.0, -0.9999, -0.99, -0.95, -0.8, -0.3, 0.0, 0.05, 0.3, 0.7, 0.95, 0.97, 0.99, 0.995,
                     0.9999, 1 - 1e-9, 1.0])


def _unflagged_grid():
    av = np.arange(-10.0, 10.01, 0.5)          # down to -10: a looser flag (-7.5) fails here (1.4e-11)
    A, B, R = (x.ravel() for x in np.meshgrid(av, av, RHO_GRID, indexing="ij"))
    keep = ~_ReluPairKernel.flagged(A, B, R)
    return A[keep], B[keep], R[keep]


def _raw_fast(k, a, b):
    """The fast quadrature alone (no routing) in the caller's order."""
    ao, bo = a[k.order], b[k.order]
    acc = k._integral(0, ao.size, ao[:, None], bo[:, None])[:, 0]
    res = _bvn.relu_g(ao) * _bvn.relu_g(bo) + k.rho_sorted * _bvn.norm_cdf(ao) * _bvn.norm_cdf(bo) + acc
    return res[k.inv]


def test_unflagged_region_holds_relative_accuracy():
    a, b, r = _unflagged_grid()
    ref = relu_pair_std(a, b, r)
    assert ref.min() > 1e-300
    fast = _raw_fast(relu_pair_kernel(r), a, b)
    assert np.max(np.abs(fast - ref) / ref) <= REL


def test_coarser_kernel_fails_the_unflagged_grid():
    a, b, r = _unflagged_grid()
    ref = relu_pair_std(a, b, r)
    fast = _raw_fast(relu_pair_kernel(r, ds=1.5), a, b)
    assert np.max(np.abs(fast - ref) / ref) > 100 * REL


def test_weighted_sum_equals_std_where_unflagged():
    """The batched U-assembly path gives the same values as std on unflagged entries (1e-13: same quadrature,
    other summation order)."""
    rng = np.random.default_rng(2)
    p, B = 9, 5
    jj, kk = np.triu_indices(p, 1)
    W = rng.standard_normal((p, 3))
    W /= np.linalg.norm(W, axis=1)[:, None]
    rho = np.clip((W[jj] * W[kk]).sum(1), -1, 1)
    alpha = rng.uniform(-4, 6, (B, p))
    k = relu_pair_kernel(rho)
    ws = k.weighted_sum(jj, kk, alpha, np.ones((B, p)), np.eye(B))                 # (P, B)
    for bb in range(B):
        ref = relu_pair_std(alpha[bb, jj], alpha[bb, kk], rho)
        keep = ~_ReluPairKernel.flagged(alpha[bb, jj], alpha[bb, kk], rho)
        assert keep.sum() > 10
        assert np.max(np.abs(ws[keep, bb] - ref[keep]) / ref[keep]) <= 1e-13 * 10


def test_weighted_sum_absolute_accuracy_everywhere():
    """The fast quadrature of the U-assembly path (``route=False``) keeps absolute accuracy 1e-13 of the
    Cauchy-Schwarz scale sqrt(E[u+^2] E[v+^2]) at every scale of alpha (as std did before the routing;
    tests/test_features.py): the bound ``_KERN_ABS`` that weighted_sum's routing relies on."""
    rng = np.random.default_rng(1)
    rho = np.concatenate([rng.uniform(-1, 1, 300), [0.999, -0.999, 1 - 1e-9, -1 + 1e-9, 0.0]])
    P = rho.size
    k = relu_pair_kernel(rho)
    jj, kk = np.arange(P), P + np.arange(P)
    for sc in (0.3, 1.0, 3.0, 10.0, 30.0):
        a, b = rng.normal(size=P) * sc, rng.normal(size=P) * sc
        scale = np.sqrt(_bvn.relu_second_std(a)) * np.sqrt(_bvn.relu_second_std(b))
        ws = k.weighted_sum(jj, kk, np.concatenate([a, b])[None, :], np.ones((1, 2 * P)), np.ones(1), route=False)
        err = np.abs(ws - relu_pair_std(a, b, rho))
        assert np.all(err <= 1e-13 * scale + 1e-300), (sc, np.max(err / np.maximum(scale, 1e-300)))


def test_lower_tail_integrals_vs_mpmath():
    """T_1, T_2 of rf/_relu_tails.py (Taylor series about 3/2 on (1, 2], continued fraction above) at the seams
    (2, 3, 5, 10 and their successors) and on (1, 40] against mpmath quadrature: 1e-14 relative (observed
    2.4e-15). Power (measured): 16 Taylor terms (7e-13), half the continued fraction's depth on any bin (1e-11 to
    8e-10) and a Taylor coefficient x (1 + 1e-12) (7e-14) fail it."""
    import mpmath as mp

    from rftheory.rf import _relu_tails

    seams = np.array([2.0, 3.0, 5.0, 10.0])
    x = np.concatenate([[1 + 1e-12, 1.0001], np.linspace(1.01, 2.0, 25), seams, np.nextafter(seams, 11.0),
                        np.geomspace(2.01, 40.0, 40)])
    t1, t2 = _relu_tails.tails(x)
    with mp.workdps(40):
        ref = np.array([[float(mp.quad(lambda y: y**k * mp.exp(-xi * y - y * y / 2), [0, 0.5, 2, 8, mp.inf]))
                         for k in (1, 2)] for xi in map(mp.mpf, x)])
    assert np.max(np.abs(t1 / ref[:, 0] - 1)) <= 1e-14
    assert np.max(np.abs(t2 / ref[:, 1] - 1)) <= 1e-14
    with pytest.raises(ValueError, match="x must be > 1"):
        _relu_tails.tails(np.array([1.0]))
