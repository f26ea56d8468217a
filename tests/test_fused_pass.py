"""The compiled fused posterior pass (rftheory.density._fused_pass, issue 17): its exponential against libm's, its
moments against the numpy pass at round-off, bit identity over blocks and threads, and the engine choice."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity, _blas, ridge
from rftheory.density import _fused_pass
from rftheory.density.schedules import VE

numba = pytest.importorskip("numba")
EPS = np.finfo(np.float64).eps


def _ulps(got, ref):
    return np.abs(got - ref) / np.spacing(np.abs(ref))


def test_exp_within_one_ulp_of_libm_over_its_range():
    """|exp_le0 - np.exp| <= 1 ulp on [-746, 0] (a dense grid, the reduction's boundaries k ln2/2 and random
    points; below 2^-1022 the ulp of the subnormal grid); the truncation of the degree-13 Taylor polynomial is < 5e-18 relative, the rest is Horner's and
    the reduction's rounding. A 1e-6 relative error in any coefficient is thousands of ulp."""
    rng = np.random.default_rng(0)
    k = np.arange(0, 1076)
    x = np.concatenate([-np.linspace(0.0, 746.0, 400_001), -rng.uniform(0, 746, 200_000), -rng.uniform(0, 1, 100_000),
                        -rng.uniform(690, 746, 100_000), -(k + 0.5) * np.log(2.0),
                        np.nextafter(-(k + 0.5) * np.log(2.0), 0), [-0.0, -5e-324]])
    x = x[x >= -746.0]
    u = _ulps(_fused_pass.exp_le0(x), np.exp(x))
    assert u.max() <= 1.0, u.max()
    assert np.count_nonzero(np.exp(x) < 2.2250738585072014e-308) > 10_000      # the subnormal range is covered
    assert np.mean(u) < 0.2                      # mostly the same bits (measured 0.06)


def test_exp_underflows_as_libm_and_keeps_nan():
    x = np.array([-745.1, -745.2, -746.0 - 1e-9, -1e300, -np.inf])
    assert np.array_equal(_fused_pass.exp_le0(x), np.exp(x))            # 5e-324, 5e-324, then 0
    buf = np.array([0.0, np.nan, -1.0])
    _fused_pass._compile()
    _fused_pass._exp_rows(buf, np.empty(3), 0.0)
    assert np.isnan(buf[1]) and buf[0] == 1.0   # a NaN logit is never turned into a zero weight
    with pytest.raises(ValueError, match="x must be <= 0"):
        _fused_pass.exp_le0(np.array([0.5]))


def _pair(X, schedule=None):
    return (EmpiricalDensity(X, schedule, engine="numpy", precise=True),
            EmpiricalDensity(X, schedule, engine="numba"))


@pytest.mark.parametrize("D", [1, 2, 3, 4])
def test_moments_agree_with_the_numpy_pass_to_round_off(D):
    """Fused vs numpy pass (precise=True: both centred, cancellation-free). Each weight w_i = exp(l_i - M) has
    relative error <= (1 ulp of exp + |l_i - M| eps from its argument) per pass, and each sum of n terms
    n eps more: tolerance (4 (1 + max|l - M|) + 2 n) eps times the scale of the quantity (R, R^2, R^3, R/h for
    the score, 1 for log p and the max weight). A 1e-6 relative error in one weight or one moment fails."""
    rng = np.random.default_rng(10 + D)
    n = 300
    X = rng.normal(size=(n, D)) * [1.0, 0.3, 2.0, 0.7][:D] + 3.0
    dn, df = _pair(X)
    t = np.concatenate([np.full(20, 0.05), np.full(20, 0.5), np.full(20, 2.0)])
    x = np.exp(-t)[:, None] * X[rng.integers(0, n, t.size)] + 0.7 * rng.normal(size=(t.size, D))
    A = dn.moments(x, t, third=True)
    B = df.moments(x, t, third=True)
    a, h = A.a, A.h
    R = np.sqrt(np.max(np.sum((X - X.mean(0)) ** 2, axis=1)))
    xq = x - a[:, None] * X.mean(0)
    lmax = (a * np.linalg.norm(xq, axis=1) * R + a * a * R * R) / h      # bounds |l_i - M|
    tol = (4 * (1 + lmax) + 2 * n) * EPS                                # relative, per query
    assert np.array_equal(A.nearest, B.nearest)
    checks = [("log_density", tol * (1 + np.abs(A.log_density))), ("max_weight", tol),
              ("mean", tol * R), ("score", tol * R * a / h), ("cov", 3 * tol * R**2), ("third", 7 * tol * R**3)]
    for name, bound in checks:
        d = np.abs(getattr(A, name) - getattr(B, name)).reshape(t.size, -1).max(axis=1)
        assert np.all(d <= bound), (name, float(np.max(d / bound)))
    assert np.max(np.abs(A.third)) > 1e-3 * R**3                        # mixed posteriors: content to compare


def test_bits_do_not_depend_on_blocks_or_threads():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 2))
    df = EmpiricalDensity(X, engine="numba")
    x = rng.normal(size=(600, 2))
    old = _blas.set_query_threads(1)
    try:
        one = df.moments(x, 0.3, third=True)
        _blas.set_query_threads(2)
        two = df.moments(x, 0.3, third=True)
        single = [df.moments(x[i:i + 1], 0.3, third=True) for i in (0, 255, 256, 599)]
    finally:
        _blas.set_query_threads(old)
    for name in ("log_density", "mean", "score", "cov", "third", "max_weight", "nearest"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
        for i, s in zip((0, 255, 256, 599), single):
            assert np.array_equal(getattr(one, name)[i], getattr(s, name)[0]), (name, i)


def test_projection_same_ridge_as_the_numpy_pass():
    """The ridge benchmark's workload (circle, h = 0.04) at 200 queries: both engines converge everywhere to
    residual <= 1e-10, judged by the numpy pass, and to the same points within the tolerance's reach
    (|dx| <= 10 tol / beta, beta the normal curvature)."""
    rng = np.random.default_rng(0)
    th = rng.uniform(0.0, 2.0 * np.pi, 2000)
    X = np.column_stack([np.cos(th), np.sin(th)]) + 0.05 * rng.normal(size=(2000, 2))
    q = np.random.default_rng(1).uniform(-1.5, 1.5, size=(200, 2))
    sch = VE(sigma_min=0.01, sigma_max=0.2)
    dn, df = _pair(X, sch)
    pn = ridge.project(dn, q, 1.0, 1, tol=1e-10)
    pf = ridge.project(df, q, 1.0, 1, tol=1e-10)
    assert pn.converged.all() and pf.converged.all()
    judged = ridge.residual(dn, pf.points, 1.0, 1).residual
    assert judged.max() <= 1e-10 * (1 + 1e-6)
    assert np.all(np.linalg.norm(pf.points - pn.points, axis=1) <= 10 * 1e-10 / pn.beta)


def test_frame_of_many_queries_and_the_one_point_path_run_on_the_compiled_pass():
    """Two callers that ask more of the pass than the moments: the frame of more than _EIGH_BLOCK queries (at
    D = 2 decomposed after either pass by the closed form of ``_eigh_small``; from D = 3 on the numpy pass
    decomposes in its blocks, ``eigh=True``, which the compiled pass leaves to the frame); the one-point
    projection steps outside the batch path, and must still give the batch path's bits. The frame
    matches the numpy engine's to round-off (eigenvalues 1e-9 relative to the largest |lambda|: the moments'
    tolerance above times lambda's 1/h scale), and the point projected alone is bit-identical to the same point
    projected in a batch on the same engine (each query of the compiled pass is computed alone)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 2)) * [1.0, 0.2]
    dn, df = _pair(X)
    x = rng.normal(size=(300, 2))                       # > _EIGH_BLOCK = 256 queries
    fn, ff = ridge.frame(dn, x, 0.2, 1), ridge.frame(df, x, 0.2, 1)
    scale = np.max(np.abs(fn.eigenvalues), axis=1, keepdims=True)
    assert np.all(np.abs(ff.eigenvalues - fn.eigenvalues) <= 1e-9 * scale)
    q = rng.normal(size=(3, 2))
    batch = ridge.project(df, q, 0.2, 1)
    for i in range(3):
        one = ridge.project(df, q[i], 0.2, 1)
        assert np.array_equal(one.points[0], batch.points[i]), i


def test_engine_choice_and_errors(monkeypatch):
    X = np.random.default_rng(1).normal(size=(50, 2))
    assert EmpiricalDensity(X)._use_fused()                         # auto, D = 2, numba installed
    assert not EmpiricalDensity(np.zeros((3, 3)) + np.arange(3))._use_fused()   # auto keeps numpy at D = 3
    assert not EmpiricalDensity(X, engine="numpy")._use_fused()
    monkeypatch.setenv("RFTHEORY_NUMBA", "0")
    assert not EmpiricalDensity(X)._use_fused()
    with pytest.raises(ValueError, match="engine"):
        EmpiricalDensity(X, engine="fast")
    with pytest.raises(ValueError, match="D <= 4"):
        EmpiricalDensity(np.zeros((3, 5)), engine="numba")
    monkeypatch.setattr(_fused_pass, "installed", lambda: False)
    with pytest.raises(ImportError, match="numba"):
        EmpiricalDensity(X, engine="numba")
    assert not EmpiricalDensity(X)._use_fused()


def test_non_representable_results_are_refused_by_name():
    """A tiny t: the fused pass refuses by name as the numpy pass does (no NaN returned)."""
    X = np.array([[0.0, 0.0], [1.0, 0.0]])
    df = EmpiricalDensity(X, engine="numba")
    with pytest.raises(ValueError, match="not representable"):
        df.moments(np.array([[0.5, 1e160]]), 1e-300, cov=True)
