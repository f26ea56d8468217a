"""R1: Gaussian moments of the activations against mpmath (30 digits), Monte Carlo and quadrature."""
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rftheory.rf.features import (Cos, Erf, ReLU, bvn_cdf, erf_pair_gh, fourier_embedding, get_activation,
                               relu_g, relu_pair_kernel, relu_pair_std, relu_second_std)

from .mp_reference import bvn_cdf_ref, erf_pair_ref, relu_pair_ref

TINY = 1e-290   # below this the float64 result may be subnormal/underflowed: compared absolutely
REL = 1e-10     # the bound (measured worst is ~3e-13)


def _rel_ok(v, ref):
    return abs(v - ref) <= REL * abs(ref) + TINY


# ----------------------------------------------------------------------------- ReLU vs mpmath
# edge grid: |mu|/s = 30 with both signs, rho = +-0.999, tiny and moderate alphas
_EDGE = [(a, b, r) for a in (-30.0, -3.0, 0.0, 2.5, 30.0) for b in (-30.0, 0.7, 30.0) for r in (-0.999, 0.999)]
_EDGE += [(-30.0, -29.0, 0.3), (1.0, -1.0, -0.999), (0.0, 0.0, -0.999), (0.0, 0.0, 0.0), (-5.0, 5.0, -0.5)]


@pytest.mark.parametrize("a,b,rho", _EDGE)
def test_relu_pair_edge_grid_vs_mpmath(a, b, rho):
    ref = float(relu_pair_ref(a, b, rho, dps=30))
    v = float(relu_pair_std(a, b, rho))
    assert _rel_ok(v, ref), (v, ref, abs(v - ref) / abs(ref))


@settings(max_examples=15, deadline=None)
@given(mu_u=st.floats(-30, 30), mu_v=st.floats(-30, 30), s_u=st.floats(0.1, 5), s_v=st.floats(0.1, 5),
       rho=st.one_of(st.sampled_from([-0.999, 0.999, 0.0]), st.floats(-0.999, 0.999)))
def test_relu_pair_hypothesis_vs_mpmath(mu_u, mu_v, s_u, s_v, rho):
    v = float(ReLU().pair(mu_u, s_u, mu_v, s_v, rho))
    ref = s_u * s_v * float(relu_pair_ref(mu_u / s_u, mu_v / s_v, rho))
    assert _rel_ok(v, ref), (v, ref)


@pytest.mark.slow
@pytest.mark.parametrize("a,b,rho", [(0.3, -0.4, 0.6), (-2.0, 1.0, -0.999)])  # ~70 s each
def test_relu_pair_nested_2d_mpmath(a, b, rho):
    from .mp_reference import relu_pair_ref_2d

    ref = float(relu_pair_ref_2d(a, b, rho))
    assert _rel_ok(float(relu_pair_std(a, b, rho)), ref)


@pytest.mark.parametrize("a", [-30.0, -8.0, -1.5, -1.0, 0.0, 0.5, 4.0, 30.0])
def test_relu_1d_moments_vs_mpmath(a):
    with mp.workdps(40):
        x = mp.mpf(a)
        g = x * mp.ncdf(x) + mp.npdf(x)
        q = (x * x + 1) * mp.ncdf(x) + x * mp.npdf(x)
    assert abs(relu_g(a) - float(g)) <= 1e-13 * float(g)
    assert abs(relu_second_std(a) - float(q)) <= 1e-13 * float(q)


@pytest.mark.parametrize("a,b,rho", [(-30.0, 2.0, 0.999), (1.0, -1.0, -0.999), (0.2, 0.3, 0.5),
                                     (-5.0, -6.0, -0.3), (8.0, -8.0, 0.0)])
def test_bvn_cdf_vs_mpmath(a, b, rho):
    ref = float(bvn_cdf_ref(a, b, rho))
    assert _rel_ok(float(bvn_cdf(a, b, rho)), ref)


def test_relu_pair_symmetries_and_limits():
    rng = np.random.default_rng(0)
    a, b, r = rng.normal(size=50) * 3, rng.normal(size=50) * 3, rng.uniform(-1, 1, 50)
    G = relu_pair_std(a, b, r)
    np.testing.assert_allclose(relu_pair_std(b, a, r), G, rtol=1e-13)
    np.testing.assert_allclose(relu_pair_std(a, b, 0.0), relu_g(a) * relu_g(b), rtol=1e-13)
    # reflection (alpha+x)+ = (alpha+x) + (-alpha-x)+ : G(a,b,r) = a g(b) + r Phi(b) + G(-a,b,-r)
    from rftheory.rf.features import norm_cdf
    rhs = a * relu_g(b) + r * norm_cdf(b) + relu_pair_std(-a, b, -r)
    scale = np.sqrt(relu_second_std(a) * relu_second_std(b)) + np.abs(a) * relu_g(b) + norm_cdf(b)
    assert np.all(np.abs(G - rhs) <= 64 * np.finfo(float).eps * scale)
    # rho -> 1: E[(a+x)+ (b+x)+]
    np.testing.assert_allclose(relu_pair_std(a, a, 1.0), relu_second_std(a), rtol=1e-12)


# ----------------------------------------------------------------------------- fast kernel
def test_relu_pair_kernel_matches_precise():
    """Absolute accuracy of the hoisted kernel against the Cauchy-Schwarz scale sqrt(E[u+^2] E[v+^2])."""
    rng = np.random.default_rng(1)
    rho = np.concatenate([rng.uniform(-1, 1, 300), [0.999, -0.999, 1 - 1e-9, -1 + 1e-9, 0.0]])
    k = relu_pair_kernel(rho)
    for sc in (0.3, 1.0, 3.0, 10.0, 30.0):
        a, b = rng.normal(size=rho.size) * sc, rng.normal(size=rho.size) * sc
        scale = np.sqrt(relu_second_std(a)) * np.sqrt(relu_second_std(b))  # no underflow of the product
        err = np.abs(k.std(a, b) - relu_pair_std(a, b, rho))
        assert np.all(err <= 1e-13 * scale + TINY), (sc, np.max(err / np.maximum(scale, TINY)))


# ----------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("act", ["relu", "cos", "erf", "tanh"])
def test_pair_moments_vs_monte_carlo(act):
    """N = 400000 draws per case; |MC - exact| <= 4 standard errors (SE from the sample variance)."""
    rng = np.random.default_rng(2)
    f = get_activation(act)
    N = 400_000
    for mu_u, s_u, mu_v, s_v, rho in [(0.3, 1.0, -0.5, 2.0, 0.6), (2.0, 0.5, 1.0, 1.5, -0.999),
                                      (-1.0, 1.2, 0.4, 0.3, 0.999)]:
        x = rng.standard_normal(N)
        y = rho * x + np.sqrt(1 - rho * rho) * rng.standard_normal(N)
        prod = f(mu_u + s_u * x) * f(mu_v + s_v * y)
        se = prod.std() / np.sqrt(N)
        assert abs(prod.mean() - float(f.pair(mu_u, s_u, mu_v, s_v, rho))) <= 4 * se
        single = f(mu_u + s_u * x)
        assert abs(single.mean() - float(f.mean(mu_u, s_u))) <= 4 * single.std() / np.sqrt(N)


# ----------------------------------------------------------------------------- cos, erf, tanh
def test_cos_pair_vs_gauss_hermite():
    """cos is entire: a 60 x 60 Gauss-Hermite rule is exact to round-off for s <= 2."""
    from rftheory.rf.features import GaussHermiteActivation

    gh = GaussHermiteActivation(np.cos, n_quad=60)
    rng = np.random.default_rng(3)
    for _ in range(20):
        mu_u, mu_v = rng.normal(size=2) * 3
        s_u, s_v = rng.uniform(0.1, 2, 2)
        rho = rng.uniform(-1, 1)
        assert abs(Cos().pair(mu_u, s_u, mu_v, s_v, rho) - gh.pair(mu_u, s_u, mu_v, s_v, rho)) <= 1e-13


@pytest.mark.parametrize("args", [(0.3, 1.0, -0.5, 2.0, 0.6), (2.0, 0.5, 1.0, 1.5, -0.999), (0.0, 3.0, 0.0, 3.0, 0.999)])
def test_erf_pair_vs_mpmath_and_gh(args):
    ref = float(erf_pair_ref(*args))
    v = float(Erf().pair(*args))
    scale = np.sqrt(float(Erf().second(args[0], args[1])) * float(Erf().second(args[2], args[3])))
    assert abs(v - ref) <= REL * scale
    assert abs(float(erf_pair_gh(*args, n=200)) - ref) <= 1e-6 * scale  # the GH reduction converges slowly


@pytest.mark.slow
def test_tanh_quadrature_within_its_error_estimate():
    from .mp_reference import gh_pair_ref

    f = get_activation("tanh")
    for args in [(0.3, 0.8, -0.5, 1.0, 0.6), (1.0, 0.3, 0.2, 0.5, -0.9)]:
        ref = float(gh_pair_ref(mp.tanh, *args, dps=20))
        est = float(f.error_estimate(*args))
        assert abs(float(f.pair(*args)) - ref) <= 2 * est + 1e-15


def test_fourier_embedding():
    e = fourier_embedding(np.array([0.0, 0.25]), 3, 1.0)
    assert e.shape == (2, 7)
    np.testing.assert_allclose(e[0], [1, 0, 0, 0, 1, 1, 1], atol=1e-15)
    np.testing.assert_allclose(e[1, 1:4], np.sin(2 * np.pi * np.arange(1, 4) * 0.25), atol=1e-15)


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        get_activation("sigmoid")
    with pytest.raises(ValueError, match="rho"):
        relu_pair_std(0.0, 0.0, 1.5)
    with pytest.raises(ValueError, match="s"):
        ReLU().mean(0.0, 0.0)
    with pytest.raises(ValueError, match="K"):
        fourier_embedding(0.1, -1, 1.0)
    with pytest.raises(ValueError, match="T"):
        fourier_embedding(0.1, 2, 0.0)
