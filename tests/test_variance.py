"""V1 (proxy covariance, relative variance) and V2 (naive estimator vs its effective SDE)."""
import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from rftheory import EmpiricalDensity
from rftheory.density.schedules import OU, GTVFig1, LinearVP
from rftheory.gtv.variance import (effective_sde_sampler, energy_two_sample, naive_sampler, proxy_covariance,
                               relative_variance, relative_variance_map, sample_posterior_index)

from .strategies import query_points, times, training_sets

EPS = np.finfo(float).eps


def _proxy_cov_by_definition(dens, x, t):
    """Cov[s~ | x] straight from the definition: weights times outer products of proxy deviations."""
    w = dens.weights(x, t)
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    prox = (a * dens.data[None, :, :] - x[:, None, :]) / h  # (m, n, D)
    mean = np.einsum("mn,mnd->md", w, prox)
    dev = prox - mean[:, None, :]
    return np.einsum("mn,mnd,mne->mde", w, dev, dev), mean


# ----------------------------------------------------------------------------- V1
@settings(max_examples=40, deadline=None)
@given(X=training_sets(min_n=1, max_n=6, max_D=3), t=times(1e-2, 5.0), seed=__import__("hypothesis").strategies.integers(0, 2**31))
def test_v1_identity_to_1e12(X, t, seed):
    """C = (a/h)^2 Sigma = H + I/h = Cov[s~|x] by definition, relative to the Hessian's scale |C| + 1/h."""
    dens = EmpiricalDensity(X)
    rng = np.random.default_rng(seed)
    x = X[rng.integers(0, len(X), 5)] * float(dens.schedule.a(t)) + rng.normal(size=(5, X.shape[1]))
    C = proxy_covariance(dens, x, t)
    h = float(dens.schedule.h(t))
    H = dens.hessian(x, t)
    C_def, s_mean = _proxy_cov_by_definition(dens, x, t)
    scale = np.abs(C).max() + 1.0 / h
    assert np.abs(C - (H + np.eye(X.shape[1]) / h)).max() <= 1e-12 * scale
    assert np.abs(C - C_def).max() <= 1e-12 * scale
    # the posterior mean of the proxy is the score
    s = dens.score(x, t)
    assert np.abs(s - s_mean).max() <= 1e-12 * (np.abs(s).max() + np.abs(x).max() / h + 1.0 / h)
    np.testing.assert_array_equal(C, np.swapaxes(C, 1, 2))


@settings(max_examples=40, deadline=None)
@given(X=training_sets(min_n=1, max_n=8, max_D=3), t=times(1e-4, 10.0), data=__import__("hypothesis").strategies.data())
def test_v1_relative_variance_in_unit_interval(X, t, data):
    dens = EmpiricalDensity(X)
    x = data.draw(query_points(X.shape[1], max_m=8, scale=8.0))
    r = relative_variance(dens, x, t)
    assert r.shape == (x.shape[0],)
    assert np.all((r >= 0) & (r <= 1))


@pytest.mark.parametrize("sched", [OU(), GTVFig1(), LinearVP()])
def test_v1_single_point_has_zero_covariance(sched):
    X = np.array([[0.3, -1.2]])
    dens = EmpiricalDensity(X, sched)
    x = np.random.default_rng(0).normal(size=(50, 2)) * 3
    for t in (1e-3, 0.1, 0.5):
        np.testing.assert_array_equal(proxy_covariance(dens, x, t), 0.0)
        np.testing.assert_array_equal(relative_variance(dens, x, t), 0.0)
    # 0/0 at x = a x_1 is defined as 0 (no variance)
    assert relative_variance(dens, sched.a(0.1) * X, 0.1)[0] == 0.0


def test_v1_map_is_one_at_symmetric_midpoint_and_small_near_a_point():
    """Two points at (+-1, 0): at x = 0 the score vanishes by symmetry, so the map is 1 up to round-off
    (|s*|^2 ~ (eps/h)^2 against tr C ~ 1/h^2); at a training point at small t it is ~ 0."""
    dens = EmpiricalDensity(np.array([[-1.0, 0.0], [1.0, 0.0]]), GTVFig1())
    r = relative_variance(dens, np.array([[0.0, 0.0], [np.sqrt(0.95), 0.0]]), 0.05)
    assert abs(r[0] - 1.0) <= 1e-12
    # at x = a x_2: w_1/w_2 = exp(-2 a^2/h) = exp(-38); tr C = (a/h)^2 4 w_1 w_2, |s*|^2 = (a/h)^2 4 w_1^2
    # so the ratio is w_2 / (w_2 + w_1) to leading order... tr C/(tr C + |s*|^2) = 1/(1 + w_1/w_2)
    w1_over_w2 = np.exp(-2 * 0.95 / 0.05)
    assert abs(r[1] - 1.0 / (1.0 + w1_over_w2)) <= 1e-12


def test_v1_map_shapes_and_errors():
    dens = EmpiricalDensity(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 1.0]]), GTVFig1())
    mp = relative_variance_map(dens, [0.05, 0.5], lim=2.0, n_grid=7)
    assert mp.values.shape == (2, 7, 7) and np.all((mp.values >= 0) & (mp.values <= 1))
    # image order: values[i, r, c] at (x1[c], x2[r])
    r = relative_variance(dens, np.array([[mp.x1[1], mp.x2[5]]]), 0.5)[0]
    assert abs(mp.values[1, 5, 1] - r) <= 16 * EPS  # batched vs single query: BLAS summation order
    with pytest.raises(ValueError, match="D = 1"):
        relative_variance_map(EmpiricalDensity(np.zeros((2, 1)), GTVFig1()), [0.1])
    with pytest.raises(ValueError, match="times"):
        relative_variance_map(dens, [1.0])
    with pytest.raises(TypeError, match="dens"):
        proxy_covariance(np.zeros((3, 2)), np.zeros((1, 2)), 0.1)


# ----------------------------------------------------------------------------- V2
def test_v2_posterior_index_draws_follow_the_weights():
    """Chi-square goodness of fit of 40000 Gumbel-max draws at one point; level 1e-3 (fixed seed)."""
    X = np.array([[-1.0], [0.0], [0.4], [1.0]])
    dens = EmpiricalDensity(X, LinearVP(), chunk_size=3)  # two chunks: exercises the running argmax
    x = np.full((40000, 1), 0.25)
    t = 0.3
    idx = sample_posterior_index(dens, x, t, np.random.default_rng(1))
    counts = np.bincount(idx, minlength=4)
    w = dens.weights(x[:1], t)[0]
    p = stats.chisquare(counts, w * counts.sum()).pvalue
    assert p > 1e-3, (counts, w)
    # power: the same counts against uniform weights are rejected
    assert stats.chisquare(counts, np.full(4, counts.sum() / 4)).pvalue < 1e-3


def test_v2_kappa_zero_samplers_coincide():
    dens = EmpiricalDensity(np.array([[-1.0], [0.0], [1.0]]), LinearVP())
    g = np.linspace(1.0, 0.05, 41)
    x0 = np.random.default_rng(0).normal(size=(200, 1))
    a = naive_sampler(dens, g, x0, 0.0, 1)
    b = effective_sde_sampler(dens, g, x0, 0.0, 2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_v2_naive_and_effective_sde_agree_in_distribution():
    """Naive estimator (categorical x_0 draws) vs Euler-Maruyama of dx = drift + sqrt(kappa) D C^{1/2} dW.

    Data {-1, 0, 1}, linear VP, PF-ODE base, kappa = 0.5, 200 uniform steps from t = 1 to t = 0.2,
    4000 particles each; stated level alpha = 0.01 for a KS and an energy-distance permutation test.
    Both schemes match the SDE's first two step moments (derivation V2); the diffusion limit also needs the
    naive step's jumps ``sqrt(kappa dt) D (a/h)|x_i - m|`` to be small on the scale sqrt(h), i.e.
    ``dt << h^3/(kappa D^2 a^2)``. That holds down to t = 0.2 (h = 0.34) but not near t -> 0: measured with
    20000 particles, kappa = 0.1, ending at t = 0.05, the KS distance was 0.048 / 0.019 / 0.012 at
    50 / 200 / 800 steps (noise level 0.016), while ending at t = 0.2 it was 0.007 at every step count
    (kappa = 0.1, 0.3, 0.5). Power check: the same tests reject kappa = 0.5 against kappa = 0
    (KS distance ~0.075 at 20000 particles; critical distance 0.036 here).
    """
    dens = EmpiricalDensity(np.array([[-1.0], [0.0], [1.0]]), LinearVP())
    g = np.linspace(1.0, 0.2, 201)
    rng = np.random.default_rng(7)
    M = 4000
    hT = float(dens.schedule.h(1.0))
    a = naive_sampler(dens, g, rng.normal(size=(M, 1)) * np.sqrt(hT), 0.5, rng)
    b = effective_sde_sampler(dens, g, rng.normal(size=(M, 1)) * np.sqrt(hT), 0.5, rng)
    c = naive_sampler(dens, g, rng.normal(size=(M, 1)) * np.sqrt(hT), 0.0, rng)
    alpha = 0.01
    ks_ab = stats.ks_2samp(a[:, 0], b[:, 0])
    e_ab = energy_two_sample(a[:2000], b[:2000], rng, n_perm=200)
    ks_ac = stats.ks_2samp(a[:, 0], c[:, 0])
    e_ac = energy_two_sample(a[:2000], c[:2000], rng, n_perm=200)
    print(f"V2: KS naive vs effective D={ks_ab.statistic:.4f} p={ks_ab.pvalue:.3f}; energy p={e_ab[1]:.3f}; "
          f"power: KS vs kappa=0 D={ks_ac.statistic:.4f} p={ks_ac.pvalue:.2e}, energy p={e_ac[1]:.3f} "
          f"(alpha={alpha})")
    assert ks_ab.pvalue > alpha and e_ab[1] > alpha
    assert ks_ac.pvalue < alpha and e_ac[1] < alpha


def test_v2_two_dimensional_agreement():
    """Same in 2-D (a triangle, OU, reverse-SDE base, kappa = 0.2, 300 steps from t = 3 to 0.2): the extra
    diffusion is a full 2x2 matrix. Steps dt = 0.0093 against dt << h^3/(kappa D^2 a^2) = 0.067 at t = 0.2
    (D = g^2 = 2); with kappa = 0.5 and 150 steps (0.019 vs 0.027) the test gave p = 0.03, too close to the
    limit of the diffusion approximation. Level 0.01; power: kappa = 0.2 against kappa = 0 is rejected."""
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    dens = EmpiricalDensity(X, OU())
    g = np.linspace(3.0, 0.2, 301)
    rng = np.random.default_rng(3)
    M = 2000
    start = lambda: rng.normal(size=(M, 2)) * np.sqrt(float(dens.schedule.h(3.0)))  # noqa: E731
    a = naive_sampler(dens, g, start(), 0.2, rng, base="sde")
    b = effective_sde_sampler(dens, g, start(), 0.2, rng, base="sde")
    c = naive_sampler(dens, g, start(), 0.0, rng, base="sde")
    stat, p = energy_two_sample(a, b, rng, n_perm=200)
    stat0, p0 = energy_two_sample(a, c, rng, n_perm=200)
    print(f"V2 2-D: energy statistic {stat:.4g}, p = {p:.3f}; vs kappa=0: {stat0:.4g}, p = {p0:.3f} "
          f"(alpha = 0.01)")
    assert p > 0.01
    assert p0 < 0.01


def test_v2_argument_errors():
    dens = EmpiricalDensity(np.array([[-1.0], [1.0]]), LinearVP())
    x0 = np.zeros((3, 1))
    with pytest.raises(ValueError, match="kappa"):
        naive_sampler(dens, [1.0, 0.5], x0, -1.0, 0)
    with pytest.raises(ValueError, match="grid"):
        naive_sampler(dens, [0.5, 1.0], x0, 0.1, 0)
    with pytest.raises(ValueError, match="base"):
        effective_sde_sampler(dens, [1.0, 0.5], x0, 0.1, 0, base="euler")
    with pytest.raises(TypeError, match="rng"):  # None is a fresh generator (numpy's reading); a float is not
        naive_sampler(dens, [1.0, 0.5], x0, 0.1, 0.5)
    with pytest.raises(ValueError, match="same D"):
        energy_two_sample(np.zeros((3, 1)), np.zeros((3, 2)), 0)
