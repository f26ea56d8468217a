"""R3: Pythagoras against the directly integrated DSM loss; two-mode normal vs tangent architectural bias."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory.rf.decomposition import (architectural_bias, average_split, finite_sample_error,
                                    optimization_error, pythagoras, split_error)
from rftheory.rf.model import RandomFeatureModel, gradient_flow
from rftheory.rf.moments import time_rule, weight_fn

X2 = np.array([[-3.0, 0.0], [3.0, 0.0]])


def _direct_loss(model, W, data, schedule, t0, T, weight, n_gl, nz=40):
    """(1/(nD)) sum_i int lambda E_z |W sigma(a x_i + sqrt(h) z, t) - a x_i|^2 dt with the same time rule and
    a nz x nz Gauss-Hermite rule in z (cos features: entire integrand, so the z-rule is exact to round-off)."""
    nodes, wts = time_rule(t0, T, model.K, model.T, n_gl)
    g, gw = np.polynomial.hermite_e.hermegauss(nz)
    gw = gw / np.sqrt(2 * np.pi)
    Z = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    Wz = np.outer(gw, gw).ravel()
    lam = weight_fn(weight)
    tot = 0.0
    for t, w in zip(nodes, wts):
        a, h = schedule.a_h(t)
        for x in data:
            xt = a * x + np.sqrt(h) * Z
            r = model.features(xt, t) @ W.T - a * x
            tot += w * lam(h) * float(Wz @ np.sum(r * r, 1))
    return tot / (len(data) * model.D)


def test_pythagoras_against_direct_loss():
    m = RandomFeatureModel(2, 10, 2, 2.0, activation="cos", rng=7)
    mom = m.moments(X2, t0=1e-2, weight="1", T=2.0, n_gl=6, report=False)
    W0 = np.random.default_rng(8).standard_normal((2, m.p))
    gf = gradient_flow(mom.U, mom.V, W0)
    W_inf = gf.W_star
    for tau in (0.05, 1.0, 20.0):
        W_tau = gf.predict(tau)
        lhs = (_direct_loss(m, W_tau, X2, mom_sched(), 1e-2, 2.0, "1", 6)
               - _direct_loss(m, W_inf, X2, mom_sched(), 1e-2, 2.0, "1", 6))
        rhs = pythagoras(mom, W_tau, W_inf)["rhs"]
        assert abs(lhs - rhs) <= 1e-10 * abs(rhs), (tau, lhs, rhs)


def mom_sched():
    from rftheory.density.schedules import OU
    return OU()


@pytest.fixture(scope="module")
def two_mode():
    dens = EmpiricalDensity(X2)
    out = {}
    for weight in ("1", "1/h", "1/h2"):
        m = RandomFeatureModel(2, 60, 4, 10.0, activation="relu", rng=11)
        mom = m.moments(X2, t0=1e-3, weight=weight, report=False)
        gf = gradient_flow(mom.U, mom.V, np.zeros((2, m.p)))
        out[weight] = (m, mom, gf)
    return dens, out


@pytest.mark.parametrize("weight", ["1", "1/h", "1/h2"])
def test_two_mode_bias_normal_far_below_tangent(two_mode, weight):
    """Posterior-mean parametrization, W0 = 0: V's y-row is 0 (data on the x-axis), so f_y = 0 and the normal
    (y) error vanishes up to round-off; the tangent part is O(1). Averaged over 400 draws from p_t."""
    dens, out = two_mode
    m, mom, gf = out[weight]
    field = m.score_field(gf.W_star)
    for t in (0.01, 0.1, 1.0):
        avg = average_split(lambda x, tt: field.score(x, tt) - dens.score(x, tt), dens, t, 1,
                            n_samples=400, rng=np.random.default_rng(0))
        h = dens.schedule.h(t)
        # round-off of (f - x)/h with |x| <= ~4: 64 eps * 4 / h
        assert avg.rms_normal <= 64 * np.finfo(float).eps * 4 / h
        assert avg.rms_tangent > 1e3 * avg.rms_normal


def test_split_parts_match_an_independent_projection(two_mode):
    """The split of s_tau - s_inf against the projection on the top eigenvector of the (P1-tested) Hessian by
    np.linalg.eigh, at points between the modes at t = 1 where the posterior is mixed and the frame determined
    (eigengap >= 1e-2 |H|); round-off 64 eps |e| |H| / eigengap (the normal part is ~0 here: data on the
    x-axis, see above; a 1e-6 error in the tangent part fails). finite_sample_error on the runs
    [f_tau, f_inf] about f_inf (errors e and 0) must give half of each part's square, and half of e."""
    dens, out = two_mode
    m, mom, gf = out["1"]
    rng = np.random.default_rng(1)
    t = 1.0
    x = np.column_stack([rng.uniform(-1.0, 1.0, 20), rng.normal(size=20)])
    f_tau = m.score_field(gf.predict(5.0))
    f_inf = m.score_field(gf.W_star)
    s = optimization_error(f_tau, f_inf, dens, x, t, 1)
    e = f_tau.score(x, t) - f_inf.score(x, t)
    lam, Q = np.linalg.eigh(dens.hessian(x, t))
    top, gap = Q[:, :, -1], lam[:, -1] - lam[:, -2]
    assert np.all(gap >= 1e-2 * np.abs(lam).max())
    want_t = top * np.einsum("md,md->m", top, e)[:, None]
    eps = np.finfo(float).eps
    tol = 64 * eps * np.abs(e).max() * np.abs(lam).max() / gap.min()
    np.testing.assert_allclose(s.error, e, rtol=0, atol=64 * eps * np.abs(e).max())
    np.testing.assert_allclose(s.tangent, want_t, rtol=0, atol=tol)
    np.testing.assert_allclose(s.normal, e - want_t, rtol=0, atol=tol)
    b = architectural_bias(f_inf, dens, x, t, 1)
    np.testing.assert_allclose(b.error, f_inf.score(x, t) - dens.score(x, t), rtol=0,
                               atol=64 * eps * np.abs(b.error).max())
    mean, sqn, sqt = finite_sample_error([f_tau, f_inf], f_inf, dens, x, t, 1)
    sc = 4 * tol * np.abs(e).max()
    np.testing.assert_allclose(sqt, 0.5 * np.sum(want_t**2, 1), rtol=0, atol=sc)
    np.testing.assert_allclose(sqn, 0.5 * np.sum((e - want_t) ** 2, 1), rtol=0, atol=sc)
    np.testing.assert_allclose(mean.error, 0.5 * e, rtol=0, atol=tol)


def test_bad_input(two_mode):
    dens, out = two_mode
    with pytest.raises(ValueError, match="error"):
        split_error(np.zeros((3, 2)), dens, np.zeros((2, 2)), 0.1, 1)
    with pytest.raises(ValueError, match="d"):
        split_error(np.zeros((2, 2)), dens, np.zeros((2, 2)), 0.1, 2)
    with pytest.raises(ValueError, match="n_samples"):
        average_split(lambda x, t: x, dens, 0.1, 1)
