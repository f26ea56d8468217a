"""The posterior third central moment (fused one-pass path and two-pass path) and hessian_derivative's
(a/h)^3 factor, against an mpmath reference at 30 digits (docs/theory.md §1: d H_ij / d x_k = (a/h)^3 kappa3_ijk)."""
import mpmath as mp
import numpy as np
import pytest

from rftheory import EmpiricalDensity

EPS = np.finfo(float).eps


def _kappa3_ref(X, x, a, h):
    """kappa3 = sum_i w_i (x_i - m)^{(x)3}, w_i proportional to exp(-|x - a x_i|^2 / (2h)), at 30 digits."""
    with mp.workdps(30):
        D = X.shape[1]
        logits = [-sum((mp.mpf(x[d]) - mp.mpf(a) * mp.mpf(xi[d])) ** 2 for d in range(D)) / (2 * mp.mpf(h))
                  for xi in X]
        top = max(logits)
        w = [mp.exp(v - top) for v in logits]
        Z = mp.fsum(w)
        w = [v / Z for v in w]
        m = [mp.fsum(w[i] * mp.mpf(X[i, d]) for i in range(len(w))) for d in range(D)]
        out = np.empty((D, D, D))
        for j in range(D):
            for k in range(D):
                for l in range(D):
                    out[j, k, l] = float(mp.fsum(w[i] * (X[i, j] - m[j]) * (X[i, k] - m[k]) * (X[i, l] - m[l])
                                                 for i in range(len(w))))
        return out


@pytest.mark.parametrize("D,precise", [(2, False), (3, False), (3, True), (6, "auto")])
def test_third_moment_and_hessian_derivative_vs_mpmath(D, precise):
    """Fused path (D <= 4, precise=False: raw moments then centred, absolute error ~ eps R^3, R the data
    radius: tolerance 256 eps R^3), two-pass path (precise=True or D > 4: tolerance 64 eps R^3);
    hessian_derivative = (a/h)^3 kappa3 to the same relative accuracy. t = 0.4 (OU: a/h = 1.22), queries
    where the posterior is mixed (max weight < 0.99, so kappa3 is not ~0)."""
    rng = np.random.default_rng(D)
    X = rng.normal(size=(12, D)) + 2.0                   # off-centre: the fused path's centring is exercised
    dens = EmpiricalDensity(X, "ou", precise=precise)
    t = 0.4
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    x = a * X[:4] + 0.5 * np.sqrt(h) * rng.normal(size=(4, D))
    mom = dens.moments(x, t, third=True)
    R = np.abs(X - X.mean(0)).max() * np.sqrt(D)
    tol = (256 if (D <= 4 and precise is False) else 64) * EPS * R**3
    dH = dens.hessian_derivative(x, t)
    for q in range(x.shape[0]):
        ref = _kappa3_ref(X, x[q], a, h)
        assert np.abs(ref).max() > 1e-3                  # a mixed posterior: the comparison has content
        np.testing.assert_allclose(mom.third[q], ref, rtol=0, atol=tol)
        np.testing.assert_allclose(dH[q], (a / h) ** 3 * ref, rtol=0, atol=64 * EPS * R**3 * (a / h) ** 3)


def test_third_cumulant_is_exactly_symmetric():
    """Each (i, j, k) is read from its sorted triple's one entry, so the tensor has the same bits under every
    permutation of its indices (round-off would otherwise differ between, e.g., (w d_i) d_j d_k and
    (w d_j) d_i d_k; the three-operand einsum used before fails this, tried). D = 7 > 4: the two-pass path."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 7))
    k3 = EmpiricalDensity(X).third_cumulant(rng.standard_normal((9, 7)), 0.3)
    for perm in ((0, 2, 1, 3), (0, 1, 3, 2), (0, 3, 2, 1), (0, 2, 3, 1), (0, 3, 1, 2)):
        np.testing.assert_array_equal(k3, k3.transpose(perm))


def test_truncated_third_moment_is_exactly_symmetric_and_matches_the_dense_one():
    """TruncatedDensity's per-query third central moment (rftheory.density._sym3.third_sum, as the dense pass) is
    exactly symmetric and within its stated bound of the dense one (6 rtol R^3, plus round-off of the sums,
    64 eps R^3). Power: the einsum it replaced fails the symmetry (tried)."""
    from rftheory.density.neighbours import TruncatedDensity

    rng = np.random.default_rng(6)
    X = rng.standard_normal((400, 5))
    x = X[:7] + 0.05 * rng.standard_normal((7, 5))
    tr = TruncatedDensity(X, choice="truncated")
    k3 = tr.third_cumulant(x, 0.05)
    assert np.all(tr.kept(x, 0.05) < 400)
    for perm in ((0, 2, 1, 3), (0, 1, 3, 2), (0, 3, 2, 1)):
        np.testing.assert_array_equal(k3, k3.transpose(perm))
    ref = EmpiricalDensity(X).third_cumulant(x, 0.05)
    bound = tr.error_bounds(0.05)["third"] + 64 * EPS * tr.R ** 3
    assert np.linalg.norm((k3 - ref).reshape(7, -1), axis=1).max() <= bound
