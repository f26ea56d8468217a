"""Ridge geometry: P2 exactly, P3 against the Bessel oracle, the ridge definition, invariances, errors."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rftheory import EmpiricalDensity, datasets, ridge
from rftheory.density.schedules import OU

from .strategies import rotations, training_sets

EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- P2
@pytest.mark.parametrize("D", [2, 5, 20])
def test_p2_two_points_project_onto_their_line(D):
    rng = np.random.default_rng(D)
    X = rng.normal(size=(2, D))
    dens = EmpiricalDensity(X)
    origin, basis, normal, c = ridge.affine_hull(X)
    for t in (0.05, 0.5, 2.0):
        a, h = dens.schedule.a(t), dens.schedule.h(t)
        # queries around the blurred segment: a * (convex combination) + N(0, 4 h/D I)
        lam = rng.uniform(-0.2, 1.2, size=(50, 1))
        x = a * (lam * X[0] + (1 - lam) * X[1]) + 2 * np.sqrt(h / D) * rng.normal(size=(50, D))
        pr = ridge.project(dens, x, t, 1, tol=1e-12)
        # where the posterior is one-hot to double precision (a far-off query at small t) the covariance
        # underflows to 0, the frame is undetermined and the point is flagged not_regular (status 2),
        # never reported as converged; every converged point lies on the line
        assert np.all((pr.status == 0) | (pr.status == 2))
        assert pr.converged.mean() >= (0.9 if t >= 0.5 else 0.5)
        off = (pr.points[pr.converged] - a * origin) @ normal
        assert np.abs(off).max() <= 1e-10
        # H restricted to the normal space is exactly -I/h (P2)
        H = dens.hessian(pr.points, t)
        HN = np.einsum("di,mde,ej->mij", normal, H, normal)
        np.testing.assert_allclose(HN, np.broadcast_to(-np.eye(D - 1) / h, HN.shape), rtol=0,
                                   atol=64 * EPS / dens.schedule.h(t))


def test_p2_three_points_project_onto_their_plane():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3, 6))
    dens = EmpiricalDensity(X)
    t = 0.4
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    wts = rng.dirichlet(np.ones(3), size=40)
    x = a * wts @ X + 2 * np.sqrt(h) * rng.normal(size=(40, 6))
    pr = ridge.project(dens, x, t, 2, tol=1e-12)
    assert pr.converged.mean() >= 0.9
    origin, basis, normal, c = ridge.affine_hull(X)
    assert basis.shape[1] == 2
    off = np.abs((pr.points[pr.converged] - a * origin) @ normal).max(axis=1)
    # 1e-10 outright, except where the frame is ill-conditioned: rounding of the centred data leaves the
    # exact hull by ~eps, which tilts the normal frame by ~eps mu_1/mu_d (mu: posterior covariance
    # eigenvalues) and moves the converged point off the plane by ~ h |s| times that tilt
    mu = np.linalg.eigvalsh(dens.posterior_cov(pr.points[pr.converged], t))[:, ::-1]
    s = np.linalg.norm(dens.score(pr.points[pr.converged], t), axis=1)
    bound = np.maximum(1e-10, h * 16 * EPS * mu[:, 0] / mu[:, 1] * s)
    assert np.all(off <= bound)
    assert np.mean(off <= 1e-10) >= 0.9
    # P2 normal score: P_N s* = -(P_N x - a c)/h at arbitrary points
    q = rng.normal(size=(10, 6))
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    sn = dens.score(q, t) @ normal
    np.testing.assert_allclose(sn, -(q @ normal - a * c) / h, rtol=0, atol=64 * EPS * (1 + np.abs(q).max()) / h)


# ----------------------------------------------------------------------------- P3
@pytest.mark.parametrize("h", [0.05, 0.2, 0.4, 0.45])
def test_p3_blurred_circle_radius(h):
    # a = 1 (VE-like pair (a, h) set through a schedule with a = 1): use OU time then rescale by a
    n = 720
    X = datasets.circle(n)
    dens = EmpiricalDensity(X)
    # pick OU time with h_t / a_t^2 = h, i.e. the circle of radius a and variance h_t
    t = 0.5 * np.log1p(h)
    a, ht = dens.schedule.a(t), dens.schedule.h(t)
    assert ht / a**2 == pytest.approx(h, rel=1e-12)
    r_oracle = ridge.blurred_circle_radius(ht, a=a, rho=1.0)
    pcs = ridge.trace(dens, t, 1)
    pts = np.concatenate([p.points for p in pcs])
    r = np.linalg.norm(pts, axis=1)
    # finite n: the kernel sum over n evenly spaced angles is the continuous one up to a term of order
    # exp(-n^2 h / (2 rho^2)) (aliasing of the Fourier series); at these n and h it is below 1e-12
    assert np.abs(r - r_oracle).max() <= 1e-8
    assert sum(p.closed for p in pcs) >= 1


def test_p3_oracle_values_and_collapse():
    assert ridge.blurred_circle_radius(0.2) == pytest.approx(0.8768, abs=1e-4)
    assert ridge.blurred_circle_radius(0.4) == pytest.approx(0.5897, abs=1e-4)
    # just before the collapse at a^2 rho^2 / (2h) = 1 the radius is small but positive; after it, NaN
    assert 0 < ridge.blurred_circle_radius(0.499) < 0.1
    assert np.isnan(ridge.blurred_circle_radius(0.5))
    assert np.isnan(ridge.blurred_circle_radius(0.6))


# ----------------------------------------------------------------------------- the definition
def test_projection_satisfies_ridge_definition_and_is_fast():
    dens = EmpiricalDensity(datasets.thirteen_points())
    x = np.random.default_rng(1).uniform(-4, 4, size=(400, 2))
    for t in (1.0, 0.3, 0.1):
        pr = ridge.project(dens, x, t, 1, tol=1e-10)
        assert pr.converged.mean() > 0.9
        c = pr.converged
        r = ridge.residual(dens, pr.points[c], t, 1)
        assert np.all(r.residual <= pr.tol[c] * (1 + 1e-9) + 64 * EPS * np.abs(r.frame.eigenvalues).max())
        assert np.all(r.curvature_ok)
        assert np.all(np.isfinite(pr.points))
        # Newton phase with the frame-turning term converges quadratically
        assert pr.order > 1.6


def test_flags_not_nan_for_hopeless_points():
    dens = EmpiricalDensity(datasets.thirteen_points())
    x = np.array([[0.0, 0.3], [1e3, 1e3]])
    pr = ridge.project(dens, x, 0.02, 1, max_iter=3)
    assert np.all(np.isfinite(pr.points))
    assert set(pr.status_names) <= set(ridge.STATUS.values())


@settings(max_examples=25, deadline=None)
@given(X=training_sets(min_n=2, max_n=5, min_D=2, max_D=3), data=st.data())
def test_projection_invariance_translation_rotation(X, data):
    D = X.shape[1]
    dist = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(len(X), 1)]
    assume(dist.min() >= 0.5)
    t = 0.5
    dens = EmpiricalDensity(X)
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = a * X[rng.integers(0, len(X), 6)] + rng.normal(size=(6, D)) * 0.5
    Q = data.draw(rotations(D))
    c = rng.normal(size=D) * 2
    p0 = ridge.project(dens, x, t, 1, tol=1e-12)
    p1 = ridge.project(EmpiricalDensity(X @ Q.T + c), x @ Q.T + a * c, t, 1, tol=1e-12)
    # compare where both converged to a well-conditioned ridge point (eigengap >= 1e-3/h): the two runs
    # see the same problem up to rounding, so the projected points map onto each other; the position is
    # fixed to ~ tol/beta plus rounding amplified by 1/eigengap, far below 1e-8 here
    both = (p0.status == 0) & (p1.status == 0) & (p0.eigengap > 1e-3 / h) & (p1.eigengap > 1e-3 / h)
    mapped = np.linalg.norm(p0.points @ Q.T + a * c - p1.points, axis=1)
    assert np.all(mapped[both] <= 1e-8), mapped[both]


def test_decompose_and_frame_shapes():
    dens = EmpiricalDensity(np.random.default_rng(0).normal(size=(6, 3)))
    x = np.random.default_rng(1).normal(size=(5, 3))
    v = np.random.default_rng(2).normal(size=(5, 3))
    vn, vt = ridge.decompose(v, dens, x, 0.3, 1)
    # independent of the frame code: the tangent part is the projection on the Hessian's top eigenvector
    # (np.linalg.eigh of the P1-tested Hessian); round-off 64 eps |v| over the eigengap (>= 1e-2 here)
    lam, Q = np.linalg.eigh(dens.hessian(x, 0.3))
    top = Q[:, :, -1]
    want_t = np.einsum("md,m->md", top, np.einsum("md,md->m", top, v))
    gap = lam[:, -1] - lam[:, -2]
    assert gap.min() > 1e-2
    np.testing.assert_allclose(vt, want_t, rtol=0, atol=64 * EPS * np.abs(v).max() / gap.min())
    np.testing.assert_allclose(vn, v - want_t, rtol=0, atol=64 * EPS * np.abs(v).max() / gap.min())
    fr = ridge.frame(dens, x, 0.3, 1)
    assert fr.normal.shape == (5, 3, 2) and fr.tangent.shape == (5, 3, 1)
    assert np.all(np.diff(fr.eigenvalues, axis=1) <= 0)
    np.testing.assert_allclose(fr.beta, -fr.eigenvalues[:, 1])
    f0 = ridge.frame(dens, x, 0.3, 0)
    assert np.all(np.isinf(f0.eigengap))


def test_thirteen_point_set_traces_at_several_times():
    dens = EmpiricalDensity(datasets.thirteen_points())
    for t in (1.0, 0.3):
        pcs = ridge.trace(dens, t, 1)
        assert len(pcs) >= 1
        for p in pcs:
            r = ridge.residual(dens, p.points, t, 1)
            assert np.all(r.residual <= 1e-8)
            if len(p.points) > 1:
                gaps = np.linalg.norm(np.diff(p.points, axis=0), axis=1)
                assert gaps.max() <= 3 * np.median(gaps)  # ordered, no jumps


@pytest.mark.parametrize("d", [-1, 2, 3])
def test_bad_ridge_dimension(d):
    dens = EmpiricalDensity(np.zeros((2, 2)) + [[0, 0], [1, 0]])
    with pytest.raises(ValueError, match="d"):
        ridge.project(dens, np.zeros((1, 2)), 0.5, d)


def test_bad_queries_and_field():
    dens = EmpiricalDensity(np.array([[0.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="x"):
        ridge.project(dens, np.array([[np.nan, 0.0]]), 0.5, 1)
    with pytest.raises(TypeError, match="score"):
        ridge.project(object(), np.zeros((1, 2)), 0.5, 1)
