"""EmpiricalDensity: P1, derivatives, an mpmath reference at 50 digits, invariances, chunking, errors."""
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rftheory import EmpiricalDensity
from rftheory.density.schedules import OU, LinearVP

from .strategies import query_points, rotations, times, training_sets

EPS = np.finfo(float).eps


def _roundoff_tols(dens, x, t):
    """Absolute round-off tolerances for score and Hessian when the inputs carry a relative error eps.

    Moving an input by dx moves the score by H dx and the Hessian by (third cumulant) dx, with
    |H| <= 1/h + a^2 R^2/h^2 and |d H/dx| <= 2 a^3 R^3/h^3 (R: largest distance between data points).
    dx ~ eps * scale with scale the coordinates' magnitude; a factor 64 covers the sums' accumulation.
    """
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    X = dens.data
    R = np.max(np.linalg.norm(X[:, None] - X[None], axis=-1)) if len(X) > 1 else 0.0
    scale = np.abs(x).max() + a * np.abs(X).max() + 1.0
    dx = 64 * EPS * scale
    tol_s = dx * (1 / h + a * a * R * R / h**2) + 64 * EPS * np.abs(dens.score(x, t)).max()
    tol_H = dx * 2 * (a * R) ** 3 / h**3 + 64 * EPS * (1 / h + a * a * R * R / h**2)
    return tol_s, tol_H


# ----------------------------------------------------------------------------- P1
def test_p1_identity_symmetry_and_eigen_interval():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    dens = EmpiricalDensity(X)
    x = rng.normal(size=(30, 3)) * 2
    for t in (0.01, 0.3, 2.0):
        mom = dens.moments(x, t, cov=True)
        H = dens.hessian(x, t)
        a, h = mom.a[0], mom.h[0]
        np.testing.assert_allclose(H, -np.eye(3) / h + (a * a / h**2) * mom.cov, rtol=0, atol=4 * EPS / h)
        np.testing.assert_array_equal(H, np.swapaxes(H, 1, 2))
        lam = np.linalg.eigvalsh(H)
        mu_max = np.linalg.eigvalsh(mom.cov)[:, -1]
        R2 = np.max(np.sum((X - X.mean(0)) ** 2, axis=1))
        slack = 64 * EPS * (1 / h + a * a * R2 / h**2)
        assert np.all(lam >= -1 / h - slack)
        assert np.all(lam <= (-1 / h + a * a * mu_max / h**2)[:, None] + slack)
        # lambda_max(Sigma) <= R^2 with R the radius of a ball holding the data (centred at the mean)
        assert np.all(mu_max <= R2 * (1 + 1e-12))


# ----------------------------------------------------------------------------- finite differences
def _richardson_check(f, g, x, v, delta):
    """Central differences of f along v against g; the tolerance is Richardson's error estimate:
    the O(delta^2) error at 2*delta is 4x the one at delta, so |FD(d) - FD(2d)| ~ 3 err(d)."""
    fd1 = (f(x + delta * v) - f(x - delta * v)) / (2 * delta)
    fd2 = (f(x + 2 * delta * v) - f(x - 2 * delta * v)) / (4 * delta)
    ref = g(x, v)
    round_off = 16 * EPS * np.abs(f(x)).max() / delta
    err = np.abs(fd1 - ref)
    est = np.abs(fd1 - fd2)
    assert np.all(err <= est + round_off), (err.max(), est.max(), round_off)
    return err.max()


@pytest.mark.parametrize("t", [0.05, 0.5, 3.0])
def test_score_and_hessian_match_finite_differences(t):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 2)) * 1.5
    dens = EmpiricalDensity(X)
    h = dens.schedule.h(t)
    x = rng.normal(size=(12, 2))
    v = rng.normal(size=(12, 2))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    delta = 1e-3 * np.sqrt(h)
    _richardson_check(lambda z: dens.log_density(z, t),
                      lambda z, u: np.einsum("md,md->m", dens.score(z, t), u), x, v, delta)
    _richardson_check(lambda z: dens.score(z, t),
                      lambda z, u: np.einsum("mde,me->md", dens.hessian(z, t), u), x, v, delta)


# ----------------------------------------------------------------------------- mpmath reference
def _mp_reference(X, x, a, h, dps=50):
    """log p, score and Hessian of the empirical density by direct 50-digit summation."""
    with mp.workdps(dps):
        a, h = mp.mpf(a), mp.mpf(h)
        n, D = X.shape
        out = []
        for q in x:
            q = [mp.mpf(float(v)) for v in q]
            ell = [-sum((q[k] - a * mp.mpf(float(X[i, k]))) ** 2 for k in range(D)) / (2 * h) for i in range(n)]
            M = max(ell)
            e = [mp.exp(l - M) for l in ell]
            Z = sum(e)
            w = [ei / Z for ei in e]
            m = [sum(w[i] * mp.mpf(float(X[i, k])) for i in range(n)) for k in range(D)]
            lp = M + mp.log(Z) - mp.log(n) - mp.mpf(D) / 2 * mp.log(2 * mp.pi * h)
            s = [(a * m[k] - q[k]) / h for k in range(D)]
            C = [[sum(w[i] * (mp.mpf(float(X[i, k])) - m[k]) * (mp.mpf(float(X[i, l])) - m[l]) for i in range(n))
                  for l in range(D)] for k in range(D)]
            H = [[a * a / h**2 * C[k][l] - (1 / h if k == l else 0) for l in range(D)] for k in range(D)]
            out.append((float(lp), [float(v) for v in s], [[float(v) for v in r] for r in H]))
    lp = np.array([o[0] for o in out])
    s = np.array([o[1] for o in out])
    H = np.array([o[2] for o in out])
    return lp, s, H


# (data, queries, OU times): tiny h with far-away queries, ties, near-data queries, large offsets
_X1 = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]])
_X2 = np.array([[5.0, 5.0], [5.3, 5.1], [4.8, 5.2], [5.1, 4.7]])  # far from the origin
_CASES = [
    (_X1, np.array([[30.0, -40.0], [1e3, 7.0], [0.01, 0.02], [-9.0, 3.0]]), 5e-9),  # h = 1e-8
    (_X1, np.array([[30.0, -40.0], [1.0, 0.2], [2.0, 1e-6]]), 5e-7),               # h = 1e-6
    (_X1, np.array([[1.0, -0.5], [1.0, 0.0], [0.5, 0.85]]), 0.05),                 # ties (equidistant)
    (_X2, np.array([[5.0, 5.0], [5.15, 5.05], [0.0, 0.0], [100.0, -50.0]]), 1e-4),
    (_X2, np.array([[5.0, 5.0], [3.0, 3.0]]), 2.0),
]


@pytest.mark.parametrize("X,x,t", _CASES)
def test_against_mpmath_50_digits(X, x, t):
    dens = EmpiricalDensity(X)
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    lp_ref, s_ref, H_ref = _mp_reference(X, x, a, h)
    mom = dens.moments(x, t, cov=True)
    H = mom.hessian
    assert np.all(np.isfinite(mom.log_density)) and np.all(np.isfinite(H))
    np.testing.assert_allclose(mom.log_density, lp_ref, rtol=1e-10, atol=1e-10)
    for i in range(len(x)):
        assert np.linalg.norm(mom.score[i] - s_ref[i]) <= 1e-10 * np.linalg.norm(s_ref[i]) + 1e-300
        assert np.linalg.norm(H[i] - H_ref[i]) <= 1e-10 * np.linalg.norm(H_ref[i])


def test_tiny_h_far_away_stays_finite_everywhere():
    dens = EmpiricalDensity(_X1)
    x = np.array([[1e6, -1e6], [1e-3, 0.0], [3.0, 3.0]])
    for t in (1e-12, 5e-9, 1e-6):
        mom = dens.moments(x, t, cov=True)
        for arr in (mom.log_density, mom.score, mom.hessian, mom.mean):
            assert np.all(np.isfinite(arr))


# ----------------------------------------------------------------------------- invariances
@settings(max_examples=40, deadline=None)
@given(X=training_sets(max_n=6, max_D=3), t=times(1e-2, 10.0), data=st.data())
def test_permutation_invariance(X, t, data):
    dens = EmpiricalDensity(X)
    x = data.draw(query_points(X.shape[1]))
    perm = np.random.default_rng(data.draw(st.integers(0, 2**31))).permutation(len(X))
    dp = EmpiricalDensity(X[perm])
    tol_s, tol_H = _roundoff_tols(dens, x, t)
    np.testing.assert_allclose(dp.score(x, t), dens.score(x, t), rtol=0, atol=tol_s)
    np.testing.assert_allclose(dp.hessian(x, t), dens.hessian(x, t), rtol=0, atol=tol_H)
    np.testing.assert_allclose(dp.log_density(x, t), dens.log_density(x, t), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(X=training_sets(max_n=6, max_D=3), t=times(1e-2, 10.0), data=st.data())
def test_translation_invariance(X, t, data):
    D = X.shape[1]
    x = data.draw(query_points(D))
    c = data.draw(query_points(D, min_m=1, max_m=1, scale=3.0))[0]
    dens = EmpiricalDensity(X)
    a = dens.schedule.a(t)
    ds = EmpiricalDensity(X + c)
    tol_s, tol_H = _roundoff_tols(ds, x + a * c, t)
    np.testing.assert_allclose(ds.score(x + a * c, t), dens.score(x, t), rtol=0, atol=tol_s)
    np.testing.assert_allclose(ds.hessian(x + a * c, t), dens.hessian(x, t), rtol=0, atol=tol_H)


@settings(max_examples=40, deadline=None)
@given(X=training_sets(max_n=6, min_D=2, max_D=3), t=times(1e-2, 10.0), data=st.data())
def test_rotation_equivariance(X, t, data):
    D = X.shape[1]
    x = data.draw(query_points(D))
    Q = data.draw(rotations(D))
    dens = EmpiricalDensity(X)
    dr = EmpiricalDensity(X @ Q.T)
    tol_s, tol_H = _roundoff_tols(dens, x, t)
    np.testing.assert_allclose(dr.score(x @ Q.T, t), dens.score(x, t) @ Q.T, rtol=0, atol=tol_s)
    H_rot = np.einsum("ij,mjk,lk->mil", Q, dens.hessian(x, t), Q)
    np.testing.assert_allclose(dr.hessian(x @ Q.T, t), H_rot, rtol=0, atol=tol_H)


# ----------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("t", [1e-3, 0.1, 1.0])
@pytest.mark.parametrize("precise", ["auto", True, False])
def test_chunked_equals_unchunked(t, precise):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(257, 3))
    x = rng.normal(size=(40, 3))
    full = EmpiricalDensity(X, chunk_size=10_000, precise=precise).moments(x, t, cov=True)
    # 1e-13 relative, or the conditioning of the weights when it is worse: reordering the sums moves each
    # logit by ~eps * |logit|, and the logits' spread is kappa = a |x - a c| max|x_i - x_j| / h
    a, h = full.a[0], full.h[0]
    kappa = a * np.abs(x - a * X.mean(0)).max() * np.ptp(X, axis=0).max() * np.sqrt(3) / h
    tol = max(1e-13, 8 * EPS * kappa)
    for cs in (1, 7, 64):
        part = EmpiricalDensity(X, chunk_size=cs, precise=precise).moments(x, t, cov=True)
        for name in ("log_density", "score", "mean", "hessian"):
            A, B = getattr(part, name), getattr(full, name)
            rel = np.linalg.norm((A - B).reshape(len(x), -1), axis=1) / np.linalg.norm(B.reshape(len(x), -1), axis=1)
            assert rel.max() <= tol, (name, cs, rel.max(), tol)


def test_precise_and_fast_scatter_agree_at_moderate_h():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 4))
    x = rng.normal(size=(10, 4))
    a = EmpiricalDensity(X, precise=True).posterior_cov(x, 0.5)
    b = EmpiricalDensity(X, precise=False).posterior_cov(x, 0.5)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * np.abs(a).max())


def test_weights_posterior_and_single_point():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9, 2))
    dens = EmpiricalDensity(X, schedule=LinearVP())
    x = rng.normal(size=(4, 2))
    w = dens.weights(x, 0.4)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(w @ X, dens.posterior_mean(x, 0.4), rtol=1e-13, atol=1e-14)
    one = EmpiricalDensity(X[:1])
    np.testing.assert_allclose(one.posterior_cov(x, 0.4), 0.0, atol=0)
    a, h = one.schedule.a(0.4), one.schedule.h(0.4)
    np.testing.assert_allclose(one.score(x, 0.4), (a * X[:1] - x) / h, rtol=1e-14)


def test_per_point_times_and_sampling():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(5, 2))
    dens = EmpiricalDensity(X)
    x = rng.normal(size=(3, 2))
    t = np.array([0.1, 0.5, 2.0])
    s = dens.score(x, t)
    for i in range(3):
        np.testing.assert_allclose(s[i], dens.score(x[i:i + 1], t[i])[0], rtol=0, atol=8 * EPS * np.abs(s[i]).max())
    a = dens.sample(0.3, 4, rng=np.random.default_rng(7))
    b = dens.sample(0.3, 4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("data,match", [
    (np.zeros((0, 2)), "empty"),
    (np.array([[np.nan, 0.0]]), "NaN"),
    (np.array([[np.inf, 0.0]]), "NaN or inf"),
    (np.zeros(3), "shape"),
])
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        EmpiricalDensity(data)


def test_bad_queries_and_times():
    dens = EmpiricalDensity(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x"):
        dens.score(np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="x"):
        dens.score(np.array([[np.nan, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="t"):
        dens.score(np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match="t"):
        dens.score(np.zeros((2, 2)), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="chunk_size"):
        EmpiricalDensity(np.zeros((2, 2)), chunk_size=0)
    with pytest.raises(TypeError, match="rng"):
        dens.sample(0.1, 3, rng=0.5)
    with pytest.raises(TypeError, match="rng"):
        dens.sample(0.1, 3, rng=np.random.RandomState(0))
