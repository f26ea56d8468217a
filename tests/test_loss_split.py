"""Loss-level normal/tangent split of the excess DSM loss (rf.decomposition.loss_split) and L*."""
import numpy as np
import pytest
from scipy import integrate, special

from rftheory.density.schedules import OU
from rftheory.rf.decomposition import irreducible_loss, loss_split, ridge_normal
from rftheory import EmpiricalDensity
from rftheory.rf.model import RandomFeatureModel, gradient_flow
from rftheory.rf.moments import time_rule, weight_fn

X2 = np.array([[-3.0, 0.0], [3.0, 0.0]])     # two modes: ridge = x-axis, normal = y exactly
NY = np.array([[0.0], [1.0]])
Z = 4.0                                      # z-score of every Monte Carlo comparison below
N_GL = 6


@pytest.fixture(scope="module")
def models():
    m = RandomFeatureModel(2, 40, 2, 3.0, rng=3)
    moms = m.moments(X2, t0=1e-3, weight=("1", "1/h2"), n_gl=N_GL, report=False)
    W0 = np.random.default_rng(4).standard_normal((2, m.p)) / np.sqrt(m.p)
    return m, {mom.weight: (mom, gradient_flow(mom.U, mom.V, W0)) for mom in moms}


def _const_frame(x, t):
    return np.broadcast_to(np.diag([0.0, 1.0]), (x.shape[0], 2, 2))


TILT = np.array([[-np.sin(0.5)], [np.cos(0.5)]])       # a fixed normal not along an axis: every term non-zero


def _tilted_frame(x, t):
    return np.broadcast_to(TILT @ TILT.T, (x.shape[0], 2, 2))


@pytest.mark.parametrize("weight", ["1", "1/h2"])
@pytest.mark.parametrize("tau", [3.0, np.inf])
def test_fixed_frame_pythagoras_part_by_part(models, weight, tau):
    """L_P(W(tau)) - L_P(W_inf) = (1/D) tr(P dW U dW^T P) for each part: an exact identity (L* cancels, same
    draws). Tolerance: round-off of the cancelling terms, 1e-11 x their size (|c0| + |tr(W U W^T)|/D)."""
    m, d = models
    mom, gf = d[weight]
    Ls = irreducible_loss(m, X2, mom, normal=NY, n_draws=50, rng=1, n_gl=N_GL)
    W_inf, W = gf.W_star, gf.predict(tau if np.isfinite(tau) else 1e3)
    s_inf = loss_split(m, W_inf, X2, mom, NY, n_gl=N_GL, L_star=Ls)
    s_tau = loss_split(m, W, X2, mom, NY, n_gl=N_GL, L_star=Ls)
    dW = W - W_inf
    P = NY @ NY.T
    scale = abs(mom.c0) + abs(np.einsum("dj,jk,dk->", W, mom.U, W)) / 2
    for part, Pp in (("normal", P), ("tangent", np.eye(2) - P)):
        rhs = np.einsum("dj,jk,dk->", Pp @ dW, mom.U, Pp @ dW) / 2
        lhs = getattr(s_tau, part) - getattr(s_inf, part)
        assert abs(lhs - rhs) <= 1e-11 * scale, (part, lhs, rhs)
    assert abs(s_tau.normal + s_tau.tangent - s_tau.excess) <= 1e-11 * scale


@pytest.mark.parametrize("weight", ["1", "1/h2"])
@pytest.mark.parametrize("tau", [3.0, np.inf])
def test_point_dependent_split_agrees_with_moments(models, weight, tau):
    """The Monte Carlo split with a point-dependent frame (the ridge frame of p_t, which for two modes on the
    x-axis is y/x at every point, and a constant callable) against the moments path, which takes
    ``L_P(W)`` exactly from U, V and only L*_P by Monte Carlo. Independent draws; tolerance Z standard errors
    taken from an independent pilot pair (other seeds), not from the draws judged."""
    m, d = models
    mom, gf = d[weight]
    W = gf.predict(tau)
    n = 600
    exact = loss_split(m, W, X2, mom, NY, n_draws=n, rng=10, n_gl=N_GL)
    pilot_e = loss_split(m, W, X2, mom, NY, n_draws=n, rng=20, n_gl=N_GL)
    exact_tilt = loss_split(m, W, X2, mom, TILT, n_draws=n, rng=13, n_gl=N_GL)
    pilot_tilt = loss_split(m, W, X2, mom, TILT, n_draws=n, rng=23, n_gl=N_GL)
    for frame, seed, exact, pilot_e in ((_const_frame, 11, exact, pilot_e),
                                        (ridge_normal(EmpiricalDensity(X2), 1, fallback=NY), 12, exact, pilot_e),
                                        (_tilted_frame, 14, exact_tilt, pilot_tilt)):
        mc = loss_split(m, W, X2, mom, frame, n_draws=n, rng=seed, n_gl=N_GL)
        pilot = loss_split(m, W, X2, mom, frame, n_draws=n, rng=seed + 100, n_gl=N_GL)
        for part in ("normal", "tangent"):
            se = np.hypot(getattr(pilot, f"se_{part}"), getattr(pilot_e, f"se_{part}"))
            diff = getattr(mc, part) - getattr(exact, part)
            assert abs(diff) <= Z * se + 1e-13, (part, getattr(mc, part), getattr(exact, part), se)
        # the Monte Carlo total against L(W) - L* of the moments (R3: the excess over the exact denoiser)
        se = np.hypot(np.hypot(pilot.se_normal, pilot.se_tangent), pilot_e.L_star.se)
        assert abs(mc.normal + mc.tangent - exact.excess) <= Z * se, (mc.normal + mc.tangent, exact.excess, se)


def _lstar_reference(model, mom, n_gl):
    """L* for two points x_i = +-c e1 by a deterministic route: tr Cov[a x0 | x] = a^2 |2c|^2 w1 w2 depends on
    x only through u = x.e1, and E[w1 w2] = int p_t(u) w1 w2 du, a 1-D integral (scipy quad, error ~1e-10)
    on the same time rule as the moments."""
    nodes, wts = time_rule(mom.t0, mom.T, model.K, model.T, n_gl)
    c = 3.0
    tot = 0.0
    for t, w in zip(nodes, wts):
        a, h = OU().a_h(t)
        sd = np.sqrt(h)

        def f(u):
            w1 = special.expit(2 * a * c * u / h)
            dens = 0.5 * (np.exp(-(u - a * c) ** 2 / (2 * h)) + np.exp(-(u + a * c) ** 2 / (2 * h))) / (
                np.sqrt(2 * np.pi) * sd)
            return dens * w1 * (1 - w1)
        val = integrate.quad(f, -a * c - 12 * sd, a * c + 12 * sd, points=[0.0], epsabs=1e-13, limit=200)[0]
        tot += w * weight_fn(mom.weight)(h) * a * a * (2 * c) ** 2 * val
    return tot / 2


@pytest.mark.parametrize("weight", ["1", "1/h2"])
def test_irreducible_loss_against_quadrature(models, weight):
    """L* (Monte Carlo in x) against the 1-D quadrature reference; SE from an independent pilot run; and the
    normal part of L* for the two modes is exactly 0 (the data have no y-component)."""
    m, d = models
    mom, _ = d[weight]
    ref = _lstar_reference(m, mom, N_GL)
    got = irreducible_loss(m, X2, mom, normal=NY, n_draws=2000, rng=5, n_gl=N_GL)
    pilot = irreducible_loss(m, X2, mom, normal=NY, n_draws=2000, rng=6, n_gl=N_GL)
    assert abs(got.value - ref) <= Z * pilot.se, (got.value, ref, pilot.se)
    assert got.normal == 0.0 and got.tangent == got.value


def test_loss_split_refuses_bad_input(models):
    m, d = models
    mom, gf = d["1"]
    with pytest.raises(ValueError, match="time rule"):
        loss_split(m, gf.W_star, X2, mom, NY, n_gl=N_GL + 1)
    with pytest.raises(ValueError, match="orthonormal"):
        loss_split(m, gf.W_star, X2, mom, np.array([[0.0], [2.0]]), n_gl=N_GL)
    with pytest.raises(ValueError, match="shape"):
        loss_split(m, gf.W_star[:, :3], X2, mom, NY, n_gl=N_GL)
    with pytest.raises(ValueError, match="projectors"):
        loss_split(m, gf.W_star, X2, mom, lambda x, t: np.eye(2), n_gl=N_GL, rng=0)


def test_ridge_normal_refuses_undetermined_frame_without_fallback():
    """Far from the midpoint of two modes H = -I/h to the last bit: the frame is undetermined there."""
    fn = ridge_normal(EmpiricalDensity(X2), 1)
    with pytest.raises(ValueError, match="undetermined"):
        fn(np.array([[3.0, 0.1], [0.0, 0.0]]), 1e-3)
    P = ridge_normal(EmpiricalDensity(X2), 1, fallback=NY)(np.array([[3.0, 0.1], [0.1, 0.0]]), 1e-3)
    assert np.allclose(P, np.diag([0.0, 1.0]), atol=1e-12)


def test_loss_split_follows_a_simpson_rule(models):
    """Moments on [HQT]'s Simpson rule: loss_split takes the same rule, refuses the default one; the exact
    identity (normal + tangent = L(W) - L*, round-off as above) holds on it."""
    m, _ = models
    mom = m.moments(X2, t0=1e-3, weight="1", report=False, time_rule="simpson", n_intervals=64)
    W = gradient_flow(mom.U, mom.V, np.zeros((2, m.p))).W_star
    with pytest.raises(ValueError, match="time rule"):
        loss_split(m, W, X2, mom, NY, n_draws=50, rng=0)
    s = loss_split(m, W, X2, mom, NY, n_draws=50, rng=0, time_rule="simpson", n_intervals=64)
    assert abs(s.normal + s.tangent - s.excess) <= 1e-11 * (abs(mom.c0) + abs(s.loss))
