"""Truncated (sublinear) evaluation: within its stated bounds of the exact streaming pass, and sublinear."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory.density.neighbours import TruncatedDensity

EPS = np.finfo(float).eps


@pytest.mark.parametrize("t", [1e-4, 1e-3, 1e-2, 0.3])
@pytest.mark.parametrize("rtol", [1e-12, 1e-4])
def test_truncated_within_its_bounds(t, rtol):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(3000, 2))
    full = EmpiricalDensity(X)
    tr = TruncatedDensity(X, rtol=rtol, choice="truncated")  # all truncated (the choice: test_truncated_choice)
    x = full.sample(t, 50, rng)
    a, h = float(full.schedule.a(t)), float(full.schedule.h(t))
    A, B = full.moments(x, t, cov=True), tr.moments(x, t, cov=True)
    bnd = tr.error_bounds(t)
    # the stated truncation bound plus the two evaluations' own round-off (64 eps at the quantities' scale)
    ro_mean = 64 * EPS * (1 + np.abs(X).max())
    ro_score = ro_mean * a / h + 64 * EPS * np.abs(A.score).max()
    assert np.abs(A.mean - B.mean).max() <= bnd["mean"] + ro_mean
    assert np.abs(A.score - B.score).max() <= bnd["score"] + ro_score
    cov_err = np.linalg.norm(A.cov - B.cov, axis=(1, 2)).max()
    assert cov_err <= bnd["cov"] + 64 * EPS * 4
    assert np.abs(A.log_density - B.log_density).max() <= bnd["log_density"] + 64 * EPS * (1 + np.abs(A.log_density).max())
    # third central moment (two-pass on both sides: round-off 64 eps R^3)
    k3_err = np.linalg.norm((full.third_cumulant(x, t) - tr.third_cumulant(x, t)).reshape(len(x), -1), axis=1).max()
    assert k3_err <= bnd["third"] + 64 * EPS * tr.R ** 3
    # and the truncation is not a no-op when the tolerance is loose: the bound is not vacuous
    if rtol == 1e-4 and t <= 1e-3:
        assert tr.kept(x, t).max() < 3000


def test_sublinear_at_small_h_and_complete_at_large_h():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(20_000, 2))
    tr = TruncatedDensity(X, rtol=1e-12)
    x = EmpiricalDensity(X).sample(1e-4, 20, rng)
    k_small = tr.kept(x, 1e-4)
    # expected count: density n/4 per unit area times the disc of radius sqrt(2 h log(n/rtol)) (+ d0^2 ~ 0)
    h = float(tr.schedule.h(1e-4))
    expected = 20_000 / 4 * np.pi * 2 * h * np.log(20_000 / 1e-12)
    assert np.median(k_small) <= 3 * expected and k_small.max() < 20_000 / 20
    assert np.all(tr.kept(x, 5.0) == 20_000)


def test_bad_rtol():
    with pytest.raises(ValueError, match="rtol"):
        TruncatedDensity(np.zeros((2, 2)), rtol=0.0)


def test_projection_on_truncated_density_takes_newton_steps():
    """With hessian_derivative, ridge.project converges quadratically on the truncated density too, to the
    same points as on the exact one (within the truncation's score bound times the frame's scale h)."""
    from rftheory import ridge

    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(400, 2))
    full, tr = EmpiricalDensity(X), TruncatedDensity(X, rtol=1e-12)
    t = 0.05
    x = full.sample(t, 30, rng)
    pf, pt = ridge.project(full, x, t, 1), ridge.project(tr, x, t, 1)
    ok = pf.converged & pt.converged
    assert ok.mean() >= 0.8
    assert pt.newton_steps[ok].sum() > 0 and pt.order > 1.5
    assert abs(pt.order - pf.order) < 0.1 and np.median(pt.iterations) <= np.median(pf.iterations)
    # P_perp s = 0 on both; the fields differ by <= the score bound and each stops at residual <= tol, so to
    # first order the points differ by <= (bound + tol_f + tol_t)/beta (beta: the normal curvature); 2x slack
    # for the second-order terms
    shift = np.linalg.norm(pf.points - pt.points, axis=1)[ok]
    allowed = 2 * (tr.error_bounds(t)["score"] + pf.tol[ok] + pt.tol[ok]) / pf.beta[ok]
    assert np.all(shift <= allowed)
