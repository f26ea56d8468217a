"""The calibrated tube fraction (rftheory.geometry.tube)."""
import numpy as np
import pytest
from scipy.stats import chi

from rftheory import EmpiricalDensity, ridge
from rftheory.geometry.tube import tube_fraction, tube_radius

Z = 4.0  # z-score of every Monte Carlo tolerance below; the SE is the analytic binomial sqrt(q(1-q)/n)


def test_radius_is_the_chi_quantile():
    assert tube_radius(3, 1, 0.9) == pytest.approx(chi.ppf(0.9, 2), rel=1e-15)
    assert tube_radius(5, 0, 0.5) == pytest.approx(chi.ppf(0.5, 5), rel=1e-15)


@pytest.mark.parametrize("level", [0.5, 0.9])
def test_exact_samples_of_a_flat_line_score_the_nominal_level(level):
    """Calibration by simulation: samples drawn from the exact p_t of dense data on a segment, projected onto
    its d = 1 ridge, fall in the level-q tube a fraction q of the time (within Z binomial SE). Only samples whose
    projection lies in the middle half of the segment are counted (the ends are 11 noise sd away there); the
    grid spacing 0.05 against the noise sd 0.44 leaves a density ripple of order exp(-2 pi^2 h / s^2) ~ 1e-600."""
    X = np.zeros((401, 3))
    X[:, 0] = np.linspace(-10, 10, 401)
    p = EmpiricalDensity(X)
    t = 0.1
    h = float(p.schedule.h(t))
    rng = np.random.default_rng(11)
    x = p.sample(t, 8000, rng)
    pr = ridge.project(p, x, t, d=1)
    dist = np.linalg.norm(x - pr.points, axis=1)
    counted = pr.converged & (np.abs(pr.points[:, 0]) < 5 * float(p.schedule.a(t)))
    tf = tube_fraction(dist, h, 3, 1, level=level, counted=counted)
    assert tf.n_counted > 3000
    assert abs(tf.fraction - level) < Z * tf.se, tf


def test_chi_distances_hit_the_level_and_wrong_dof_does_not():
    rng = np.random.default_rng(3)
    h, D, d, q, m = 0.04, 6, 2, 0.9, 20000
    dist = np.sqrt(h) * np.linalg.norm(rng.normal(size=(m, D - d)), axis=1)
    tf = tube_fraction(dist, h, D, d, level=q)
    assert abs(tf.fraction - q) < Z * tf.se
    # the same distances judged with the ambient dof (a wrong d) or in units of h (not sqrt h) miss the level
    assert abs(tube_fraction(dist, h, D, 0, level=q).fraction - q) > 10 * tf.se
    assert abs(tube_fraction(dist, np.sqrt(h), D, d, level=q).fraction - q) > 10 * tf.se


def test_one_far_sample_moves_the_fraction_by_at_most_one_over_m():
    rng = np.random.default_rng(4)
    dist = 0.2 * np.linalg.norm(rng.normal(size=(2000, 2)), axis=1)
    base = tube_fraction(dist, 0.04, 3, 1)
    for far in (10.0, 1e6, 1e300):
        moved = tube_fraction(np.append(dist, far), 0.04, 3, 1)
        assert abs(moved.fraction - base.fraction) <= 1.0 / 2001 + 1e-15


def test_uncounted_samples_stay_out_and_bad_input_names_itself():
    dist = np.array([0.1, np.nan, 0.3])
    tf = tube_fraction(dist, 0.01, 2, 1, counted=np.array([True, False, True]))
    assert tf.n_counted == 2 and np.isnan(tf.z[1]) and not tf.inside[1]
    with pytest.raises(ValueError, match="distance"):
        tube_fraction(dist, 0.01, 2, 1)
    with pytest.raises(ValueError, match="h must"):
        tube_fraction([0.1], 0.0, 2, 1)
    with pytest.raises(ValueError, match="level"):
        tube_fraction([0.1], 0.1, 2, 1, level=1.0)
    with pytest.raises(ValueError, match="d \\(ridge"):
        tube_fraction([0.1], 0.1, 2, 2)
    with pytest.raises(ValueError, match="no sample"):
        tube_fraction([0.1], 0.1, 2, 1, counted=[False])
