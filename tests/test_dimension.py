"""Ridge dimension from the Hessian spectrum (rftheory.geometry.dimension)."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory.geometry.dimension import ridge_dimension


def _grid(d, D, n_side, spacing):
    """n_side^d points on a d-dimensional square grid embedded in the first d of D coordinates."""
    axes = np.meshgrid(*[np.arange(n_side) * spacing for _ in range(d)], indexing="ij")
    pts = np.stack([a.ravel() for a in axes], axis=1)
    pts -= pts.mean(axis=0)
    return np.hstack([pts, np.zeros((pts.shape[0], D - d))])


@pytest.mark.parametrize("d,D", [(1, 3), (2, 4)])
def test_dense_flat_sets_give_their_dimension(d, D):
    # OU at t = 0.1: noise sd in data units sqrt(h)/a = 0.47. Grid spacing 0.1 << 0.47 and half-extent
    # 1.5 = 3.2 noise sd: in the middle the density is nearly flat along the grid (r -> 1 as spacing/sd -> 0
    # and extent/sd -> inf) and exactly Gaussian across it (the data have no spread there: r = 0).
    X = _grid(d, D, 31, 0.1)
    p = EmpiricalDensity(X)
    rng = np.random.default_rng(0)
    x = np.zeros((50, D))
    x[:, :d] = rng.uniform(-0.1, 0.1, (50, d))
    x[:, d:] = rng.normal(0, 0.2, (50, D - d))
    ch = ridge_dimension(p, x, 0.1)
    assert ch.d == d and ch.share == 1.0
    # tangent entries near 1 (measured 0.986..0.989; the edge at 3.2 sd and the grid's discreteness each
    # move r by well under 0.1), normal entries 0 up to the round-off of 1 + h lambda with h lambda ~ -1.
    assert np.all(np.abs(ch.spectrum[:, :d] - 1.0) < 0.1)
    assert np.all(np.abs(ch.spectrum[:, d:]) < 1e-12)


def test_spectrum_is_posterior_variance_in_noise_units():
    """r_k = 1 + h lambda_k equals a^2 mu_k / h with mu_k the posterior covariance's eigenvalues (P1), to
    round-off relative to the Hessian's scale 1/h."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    p = EmpiricalDensity(X)
    x = rng.normal(size=(20, 3))
    t = 0.3
    ch = ridge_dimension(p, x, t)
    a, h = float(p.schedule.a(t)), float(p.schedule.h(t))
    mu = np.linalg.eigvalsh(p.posterior_cov(x, t))[:, ::-1]
    assert np.max(np.abs(ch.spectrum - a * a * mu / h)) < 1e-12 * max(1.0, np.abs(ch.spectrum).max())


def test_isolated_points_at_small_t_give_d_zero():
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    p = EmpiricalDensity(X)
    rng = np.random.default_rng(2)
    t = 1e-3
    x = p.schedule.a(t) * X[rng.integers(0, 3, 40)] + np.sqrt(p.schedule.h(t)) * rng.normal(size=(40, 2))
    ch = ridge_dimension(p, x, t)
    assert ch.d == 0 and ch.share == 1.0 and ch.histogram.tolist() == [40, 0, 0]


def test_threshold_moves_the_choice_and_ties_go_to_the_smaller_d():
    # two points +-1 seen from their midpoint: the posterior is +-1 with equal weight, variance 1 along the
    # segment, 0 across it, so r_1 = a^2 / h exactly (OU at t = 0.5: 0.582).
    X = np.array([[-1.0, 0.0], [1.0, 0.0]])
    p = EmpiricalDensity(X)
    t = 0.5
    a, h = float(p.schedule.a(t)), float(p.schedule.h(t))
    r1 = a * a / h
    assert 0.5 < r1 < 0.9
    x = np.zeros((2, 2))
    ch = ridge_dimension(p, x, t, threshold=r1 * 0.9)
    assert ch.spectrum[0, 0] == pytest.approx(r1, rel=1e-12)
    assert ch.d == 1
    assert ridge_dimension(p, x, t, threshold=r1 * 1.1).d == 0
    # tie: one sample sees 0, one sees 1 -> the smaller
    far = np.array([[-1.0 * a, 0.0], [0.0, 0.0]])
    ch_tie = ridge_dimension(p, far, 0.05, threshold=0.5)
    assert ch_tie.histogram[0] == ch_tie.histogram[1] == 1 and ch_tie.d == 0


def test_bad_arguments_name_themselves():
    p = EmpiricalDensity(np.eye(3))
    with pytest.raises(ValueError, match="threshold"):
        ridge_dimension(p, np.zeros((1, 3)), 0.1, threshold=1.0)
    with pytest.raises(ValueError, match="t"):
        ridge_dimension(p, np.zeros((2, 3)), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="x"):
        ridge_dimension(p, np.zeros((1, 2)), 0.1)
    with pytest.raises(TypeError, match="hessian"):
        ridge_dimension(object.__new__(type("F", (), {"score": lambda s, x, t: x})), np.zeros((1, 3)), 0.1)
