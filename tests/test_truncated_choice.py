"""TruncatedDensity chooses per query between the truncated and the dense pass (issue 17); either way the result is
within the truncation's stated bounds of the exact (dense) posterior."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory.density import _cut_plan
from rftheory.density.neighbours import TruncatedDensity

EPS = np.finfo(float).eps


def _mixed_data(D, rng, n_cluster=3600, n_square=400):
    """A tight cluster (at 3 e_3, std 0.02) and points uniform on the square [-1, 1]^2 of the first two
    coordinates: queries at the cluster keep nearly all of it (the dense pass is cheaper), queries at the
    square keep tens of points spread over the whole cut radius (the truncated sum is cheaper)."""
    cluster = 0.02 * rng.standard_normal((n_cluster, D))
    cluster[:, 2] += 3.0
    square = np.zeros((n_square, D))
    square[:, :2] = rng.uniform(-1, 1, (n_square, 2))
    return np.concatenate([cluster, square])


@pytest.mark.parametrize("D", [3, 32])  # the k-d tree search (D <= 8) and the blocked-product search
def test_per_query_choice_stays_within_the_bounds(D):
    rng = np.random.default_rng(0)
    # at D = 32 the search itself costs ~ n per query, so truncation pays only for larger n
    n_cluster, n_square = (3600, 400) if D == 3 else (19000, 1000)
    X = _mixed_data(D, rng, n_cluster, n_square)
    t = 2e-3 if D == 3 else 1e-3
    full, tr = EmpiricalDensity(X), TruncatedDensity(X, rtol=1e-12)
    a, h = float(full.schedule.a(t)), float(full.schedule.h(t))
    near_square = a * X[n_cluster:n_cluster + 40] + np.sqrt(h) * rng.standard_normal((40, D))
    x = np.concatenate([full.sample(t, 60, rng), near_square])
    kept = tr.kept(x, t)
    assert np.any(kept == X.shape[0]) and np.any(kept < 200)  # both passes are used in one batch
    low = D == 3  # covariance and third moment at D = 3 only (the dense precise scatter at D = 32 takes a minute)
    A, B = full.moments(x, t, cov=low, third=low), tr.moments(x, t, cov=low, third=low)
    bnd = tr.error_bounds(t)
    ro_mean = 64 * EPS * (1 + np.abs(X).max())
    assert np.abs(A.mean - B.mean).max() <= bnd["mean"] + ro_mean
    assert np.abs(A.score - B.score).max() <= bnd["score"] + ro_mean * a / h + 64 * EPS * np.abs(A.score).max()
    if low:
        assert np.linalg.norm(A.cov - B.cov, axis=(1, 2)).max() <= bnd["cov"] + 64 * EPS * tr.R ** 2
    assert np.abs(A.log_density - B.log_density).max() <= bnd["log_density"] + 64 * EPS * (
        1 + np.abs(A.log_density).max())
    if low:
        k3 = np.linalg.norm((A.third - B.third).reshape(len(x), -1), axis=1).max()
        assert k3 <= bnd["third"] + 64 * EPS * tr.R ** 3
    np.testing.assert_array_equal(A.nearest[kept == X.shape[0]], B.nearest[kept == X.shape[0]])


def test_the_choice_follows_the_cost_model():
    rng = np.random.default_rng(1)
    X = _mixed_data(32, rng, 19000, 1000)
    tr = TruncatedDensity(X, rtol=1e-12)
    x = EmpiricalDensity(X).sample(1e-3, 100, rng)
    a, h = float(tr.schedule.a(1e-3)), float(tr.schedule.h(1e-3))
    r2 = 2 * h * np.log(tr.n / tr.rtol) / a ** 2
    est = _cut_plan.estimate_kept(X, x / a, r2)
    kept = tr.kept(x, 1e-3)
    dense = kept == tr.n
    np.testing.assert_array_equal(dense, _cut_plan.prefer_dense(est, tr.n, 32))
    assert dense.any() and not dense.all()
    # a time at which the radius covers the whole data set goes dense without any search
    assert np.all(tr.kept(x, 50.0) == tr.n)
