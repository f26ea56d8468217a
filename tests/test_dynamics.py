"""Samplers, reach/align/slide measurements and T1-T4."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from rftheory import EmpiricalDensity, bounds, datasets, dynamics, ridge
from rftheory.dynamics.sampling import (PerturbedField, constant_error, normal_error, random_smooth_error, sample,
                               tangent_error)
from rftheory.density.schedules import LinearVP, geometric_grid

T, TMIN = 10.0, 1e-3


def _two_modes(D):
    X = np.zeros((2, D))
    X[:, 0] = [-3.0, 3.0]
    return X


# ----------------------------------------------------------------------------- T1 (exact)
@pytest.mark.parametrize("D", [2, 5])
@pytest.mark.parametrize("varying", [False, True])
def test_t1_ode_final_offset_matches_formula(D, varying):
    dens = EmpiricalDensity(_two_modes(D))
    rng = np.random.default_rng(D)
    x0 = dens.sample(T, 40, rng)
    c = np.linspace(0.3, -0.2, D - 1)  # normal error components (the hull is the x-axis: normal = rest)
    if varying:
        en = lambda u: c * (1.0 + np.sin(3.0 * u))  # noqa: E731
        err = lambda x, t: np.broadcast_to(np.concatenate([[0.0], en(float(t))]), x.shape).copy()  # noqa: E731
    else:
        en = c
        err = constant_error(np.concatenate([[0.0], c]))
    f = PerturbedField(dens, err)
    rec = [1.0, 0.1, TMIN]
    tr = sample(f, x0, geometric_grid(T, TMIN, 2000), "heun", record=rec)
    fine = sample(f, x0, geometric_grid(T, TMIN, 4000), "heun", record=rec)
    for k in range(len(rec)):
        # each run recorded at its own grid's nearest times: compare each with the formula at those times
        e_n, e_2n = (tr_.states[k][:, 1:] - np.array([bounds.t1_ode(y, T, tr_.times[k], e_normal=en)
                                                      for y in x0[:, 1:]]) for tr_ in (tr, fine))
        err_k = np.abs(e_n)
        # Heun is second order: halving the step cuts the error 4x, so |e_N - e_2N| ~ (3/4)|e_N|;
        # allow 2x that estimate (Richardson) plus round-off
        assert np.all(err_k <= 2 * (4 / 3) * np.abs(e_n - e_2n) + 1e-12)
    # the bar at t_min: 2000 geometric steps agree to 1e-5 (measured ~3e-6)
    assert err_k.max() <= 1e-5


def test_t1_sde_mean_and_variance_from_p_T():
    dens = EmpiricalDensity(_two_modes(2))
    rng = np.random.default_rng(11)
    N = 4000
    x0 = dens.sample(T, N, rng)
    g = geometric_grid(T, TMIN, 1000)
    rec = [1.0, 0.1, 0.01, TMIN]
    exact = sample(dens, x0, g, "em", rng=rng, record=rec)
    pert = sample(PerturbedField(dens, constant_error([0.0, 0.3])), x0, g, "em", rng=rng, record=rec)
    hT = float(dens.schedule.h(T))
    # z = 4.4: Bonferroni over 2 x 4 x 2 = 16 comparisons at family level 1e-4
    z = stats.norm.ppf(1 - 1e-4 / 32)
    for k, t in enumerate(exact.times):
        var_pred = bounds.t1_sde_var(T, t, var_T=hT)
        assert var_pred == pytest.approx(dens.schedule.h(t), rel=1e-10)  # exact score: variance h_t
        for tr, e in ((exact, 0.0), (pert, 0.3)):
            y = tr.states[k][:, 1]
            mean_pred = bounds.t1_sde_mean(np.zeros(1), T, t, e_normal=np.array([e]))[0]
            se_mean = np.sqrt(var_pred / N)
            se_var = var_pred * np.sqrt(2.0 / (N - 1))  # Gaussian y: Var(s^2) = 2 sigma^4/(N-1)
            # + Euler-Maruyama bias: O(step) relative; the geometric grid's largest relative step is 1.9%
            em_bias = 0.02 * var_pred
            assert abs(y.mean() - mean_pred) <= z * se_mean, (t, y.mean(), mean_pred)
            assert abs(y.var(ddof=1) - var_pred) <= z * se_var + em_bias, (t, y.var(), var_pred)


def test_t1_formulas_agree_with_quadrature():
    en = lambda u: np.array([0.3])  # noqa: E731  callable path (quadrature) vs closed form
    for t in (1e-3, 0.1, 2.0):
        a = bounds.t1_ode(np.array([0.7]), T, t, e_normal=np.array([0.3]))
        b = bounds.t1_ode(np.array([0.7]), T, t, e_normal=en)
        assert a == pytest.approx(b, rel=1e-10)
        a = bounds.t1_sde_mean(np.array([0.7]), T, t, e_normal=np.array([0.3]))
        b = bounds.t1_sde_mean(np.array([0.7]), T, t, e_normal=en)
        assert a == pytest.approx(b, rel=1e-10)
    with pytest.raises(ValueError, match="OU"):
        bounds.t1_ode(np.zeros(1), 1.0, 0.5, schedule=LinearVP())


# ----------------------------------------------------------------------------- normal vs tangent errors
def test_normal_error_moves_off_not_along_and_tangent_the_reverse():
    # collinear data (P2): weights depend on the tangential coordinate only, so a normal-only error cannot
    # move samples along the ridge and a tangent-only error cannot move them off it (exact, round-off)
    dens = EmpiricalDensity(datasets.modes("two_sym"))
    rng = np.random.default_rng(3)
    x0 = dens.sample(T, 200, rng)
    g = geometric_grid(T, TMIN, 300)
    base = sample(dens, x0, g, "heun").final
    nrm = sample(PerturbedField(dens, normal_error(dens, 1, [0.0, 0.5])), x0, g, "heun").final
    tng = sample(PerturbedField(dens, tangent_error(dens, 1, [0.5, 0.0])), x0, g, "heun").final
    scale = np.abs(base).max()
    assert np.abs(nrm[:, 0] - base[:, 0]).max() <= 1e-12 * scale       # not along
    assert np.abs(nrm[:, 1] - base[:, 1]).min() >= 1e-3                  # off
    assert np.abs(tng[:, 1] - base[:, 1]).max() <= 1e-12 * scale       # not off
    assert np.abs(tng[:, 0] - base[:, 0]).max() >= 1e-2                  # along


@pytest.mark.parametrize("name", ["thirteen", "three"])
def test_t2_t3_coverage_reported_on_curved_sets(name):
    X = datasets.thirteen_points() if name == "thirteen" else datasets.modes("three")
    dens = EmpiricalDensity(X)
    rng = np.random.default_rng(0)
    Tn = 2.0 if name == "thirteen" else 4.0
    x0 = dens.sample(Tn, 40, rng)
    g = geometric_grid(Tn, 1e-2, 400)
    M0 = dynamics.measure(dens, sample(dens, x0, g, "heun", record=40), 1)
    u = np.array([0.3, 0.4])
    out = {}
    for kind, err in (("normal", normal_error(dens, 1, u)), ("tangent", tangent_error(dens, 1, u))):
        f = PerturbedField(dens, err)
        M = dynamics.measure(dens, sample(f, x0, g, "heun", record=40), 1, field=f)
        out[kind] = (bounds.evaluate_t2(M), bounds.evaluate_t2(M, use_kappa=False), bounds.evaluate_t3(M, M0), M)
    # the first-order bounds hold for most trajectories inside the tube and are not vacuous (ratios < 1);
    # violations are a finding (see the issue notes): T2 with kappa covered 75-95 % in the runs recorded there
    for kind in out:
        t2k, t2, t3, M = out[kind]
        assert t2k.n_tube >= 5  # not vacuous: some trajectories stay in the tube
        assert t2k.coverage >= 0.5 and t2k.median_ratio < 1.0
        assert t2k.coverage >= t2.coverage  # the frame-turning rate only loosens the bound
    assert out["tangent"][2].coverage >= 0.8  # T3 with a tangent-only error
    # a normal-only error has |P_par e| = 0: the first-order T3 bound is 0 and any tangential drift (second
    # order, through curvature) breaks it -- report, do not hide
    assert out["normal"][2].coverage < 0.5


# ----------------------------------------------------------------------------- T4 and memorization
def _pull_to_origin(dens, width=1.0):
    """Posterior-mean error that replaces the denoiser by 0 in a window around x_1 = 0: a tangential
    error (the data are on the x-axis) with a stable zero of the restricted drift at the origin."""
    def err(x, t):
        a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
        chi = np.exp(-x[:, 0] ** 2 / (2 * width**2))
        return -(a / h) * dens.posterior_mean(x, t) * chi[:, None]
    return err


def test_t4_predicted_attractor_matches_samples_and_zero_error_memorizes():
    dens = EmpiricalDensity(datasets.modes("two_sym"))
    rng = np.random.default_rng(5)
    x0 = dens.sample(T, 400, rng)
    g = geometric_grid(T, TMIN, 600)
    pcs = ridge.trace(dens, TMIN, 1)
    f = PerturbedField(dens, _pull_to_origin(dens))
    att, _ = bounds.ridge_attractors(f, pcs, TMIN)
    inter = [a for a in att if a.inter_mode]
    assert len(inter) == 1
    final = sample(f, x0, g, "heun").final
    # KDE of the samples' ridge coordinate (x_1) between the modes; its peak within one bandwidth
    mid = final[np.abs(final[:, 0]) < 1.5, 0]
    kde = stats.gaussian_kde(mid)
    grid = np.linspace(-1.5, 1.5, 3001)
    peak = grid[np.argmax(kde(grid))]
    bw = kde.factor * mid.std(ddof=1)
    assert abs(peak - inter[0].point[0]) <= bw
    # zero error: no inter-mode attractor, samples memorize
    att0, _ = bounds.ridge_attractors(dens, pcs, TMIN)
    assert not any(a.inter_mode for a in att0)
    mem = dynamics.memorization(sample(dens, x0, g, "heun").final, dens.data, rng, scale=dens.schedule.a(TMIN))
    assert mem.fraction >= 0.99 and mem.ci_low <= mem.fraction <= mem.ci_high


def test_phases_reach_align_slide():
    dens = EmpiricalDensity(datasets.thirteen_points())
    rng = np.random.default_rng(2)
    x0 = dens.sample(2.0, 30, rng)
    f = PerturbedField(dens, normal_error(dens, 1, [0.1, 0.1]))
    M = dynamics.measure(dens, sample(f, x0, geometric_grid(2.0, 1e-2, 300), "heun", record=30), 1, field=f,
                         velocity=False, kappa=False)
    ph = dynamics.phases(M, r_tube=0.3)
    ok = ~np.isnan(ph.align_time)
    assert ph.reached > 0.5 and np.all(ph.align_time[ok] <= ph.reach_time[ok])  # align comes after reach
    assert np.all(ph.slide[ok] >= 0)


# ----------------------------------------------------------------------------- samplers and errors
def test_samplers_are_reproducible_and_record():
    dens = EmpiricalDensity(datasets.modes("three"))
    x0 = dens.sample(3.0, 10, np.random.default_rng(0))
    g = geometric_grid(3.0, 1e-2, 50)
    a = sample(dens, x0, g, "em", rng=np.random.default_rng(9), record=5)
    b = sample(dens, x0, g, "em", rng=np.random.default_rng(9), record=5)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.states.shape == (5, 10, 2) and a.times[0] == 3.0 and a.times[-1] == 1e-2
    np.testing.assert_array_equal(a.states[-1], a.final)



def test_euler_and_heun_converge_at_their_orders_to_the_exact_flow():
    """One data point x1: p_t = N(a_t x1, h_t I) and the PF-ODE flow is exact,
    x_t = a_t x1 + sqrt(h_t / h_T)(x_T - a_T x1). Errors at t = 0.05 from T = 2 on uniform grids of N and 2N
    steps: Euler's ratio is 2 (first order) and Heun's 4 (second order), each within 15 % (the next term
    of the error expansion at N = 200 is O(1/N) of the leading one: measured <= 3 %). A missing half in
    Heun's average (first order again) or a wrong drift (no convergence) fails."""
    from rftheory.density.schedules import uniform_grid

    x1 = np.array([[1.5, -0.5]])
    dens = EmpiricalDensity(x1)
    T, t = 2.0, 0.05
    aT, hT = float(dens.schedule.a(T)), float(dens.schedule.h(T))
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    xT = np.array([[0.3, 0.8], [-1.0, 0.2]])
    exact = a * x1 + np.sqrt(h / hT) * (xT - aT * x1)
    for method, order in (("euler", 1), ("heun", 2)):
        err = [np.abs(sample(dens, xT, uniform_grid(T, t, N + 1), method).final - exact).max() for N in (200, 400)]
        assert abs(err[0] / err[1] / 2**order - 1) < 0.15, (method, err)


def test_random_smooth_error_is_reproducible_and_smooth():
    e1 = random_smooth_error(2, np.random.default_rng(1))
    e2 = random_smooth_error(2, np.random.default_rng(1))
    x = np.random.default_rng(2).normal(size=(5, 2))
    np.testing.assert_array_equal(e1(x, 0.5), e2(x, 0.5))
    d = 1e-6
    assert np.abs(e1(x + d, 0.5) - e1(x, 0.5)).max() < 1e-4


@pytest.mark.parametrize("grid,match", [([1.0, 2.0], "decreasing"), ([1.0, 0.0], "t_min"),
                                        ([1.0, np.nan], "NaN"), ([1.0], "two")])
def test_bad_grids(grid, match):
    dens = EmpiricalDensity(datasets.modes("two"))
    with pytest.raises(ValueError, match=match):
        sample(dens, np.zeros((1, 2)), grid)


def test_bad_fields_and_methods():
    dens = EmpiricalDensity(datasets.modes("two"))
    with pytest.raises(TypeError, match="score"):
        sample(object(), np.zeros((1, 2)), [1.0, 0.5], schedule=dens.schedule)
    with pytest.raises(ValueError, match="method"):
        sample(dens, np.zeros((1, 2)), [1.0, 0.5], method="rk4")
    with pytest.raises(TypeError, match="rng"):  # None is a fresh generator (numpy's reading); a float is not
        sample(dens, np.zeros((1, 2)), [1.0, 0.5], method="em", rng=0.5)
    with pytest.raises(ValueError, match="data"):
        dynamics.memorization(np.zeros((3, 2)), np.zeros((1, 2)), np.random.default_rng(0))


# ----------------------------------------------------------------------------- T2 as a property
def _t2_report(X, amp, seed, n=8, record=30):
    dens = EmpiricalDensity(X)
    x0 = dens.sample(2.0, n, np.random.default_rng(seed))
    f = PerturbedField(dens, normal_error(dens, 1, [0.6 * amp, 0.8 * amp]))
    M = dynamics.measure(dens, sample(f, x0, geometric_grid(2.0, 1e-2, 200), "heun", record=record), 1, field=f)
    return bounds.evaluate_t2(M)


def test_t2_regression_minimal_case_from_hypothesis():
    """Hypothesis shrank a T2 'violation' to this case: three collinear points, normal error 0.1, seed 0.
    There T2 is an equality (linear normal dynamics, constant-sign error), and the violation (ratio 1.013
    with 30 records, 1.00002 with 200) was the bound's own quadrature error; the evaluation now adds its
    Richardson estimate. Kept to show the bound is tight here: the worst ratio is 1 to within it."""
    rep = _t2_report(np.array([[0.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), 0.1, 0)
    assert rep.n_tube >= 4 and rep.coverage == 1.0
    assert rep.worst_ratio >= 0.99  # tight: measured equals the bound up to the integrators' error


def test_t2_regression_curved_violation_from_hypothesis():
    """The property test below shrank a genuine violation of first-order T2 to three points in an L,
    (0,0), (0,1), (1,1), normal error 0.1, seed 0: half the tube trajectories break the bound, the worst by
    30 % (with the quadrature error already added). A finding, reported in the issue notes; this test fails
    if the bound or its evaluation changes so that the case no longer violates it."""
    rep = _t2_report(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 0.1, 0)
    assert rep.n_tube >= 2 and rep.coverage < 1.0 and rep.worst_ratio > 1.1


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="first-order T2 is violated on curved ridges (see the regression tests "
                                       "above); strict: if it starts to hold everywhere, update the notes")
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(pts=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=3, max_size=5, unique=True),
       amp=st.sampled_from([0.1, 0.3, 0.5]), seed=st.integers(0, 3))
@example(pts=[(0, 0), (0, 1), (1, 1)], amp=0.1, seed=0)
def test_t2_property_on_random_small_sets(pts, amp, seed):
    """T2 (with kappa) on every trajectory that stays in the beta-regular tube. A failure here is a finding:
    shrink it, keep it above as a regression example, and report it in the issue notes."""
    rep = _t2_report(np.array(pts, dtype=float), amp, seed)
    assert rep.n_tube == 0 or rep.coverage == 1.0, (pts, amp, seed, rep.coverage, rep.worst_ratio)


def test_gronwall_integrator_exact_for_constants_and_second_order():
    times = np.linspace(2.0, 0.1, 40)
    s = times[0] - times
    r, f, x0 = 3.0, 0.7, 0.4
    X = bounds._gronwall(times, np.full(40, r), np.full(40, f), x0)
    exact = x0 * np.exp(-r * s) + f * (-np.expm1(-r * s)) / r
    np.testing.assert_allclose(X, exact, rtol=1e-13, atol=1e-15)
    # time-varying rate: the error falls ~4x when the records are doubled (second order)
    def err(k):
        tt = np.linspace(2.0, 0.1, k)
        ss = tt[0] - tt
        rate = 1.0 + ss  # dX/ds = -(1 + s) X + 1, X(0) = 0
        Xk = bounds._gronwall(tt, rate, np.ones(k), 0.0)
        from scipy.integrate import solve_ivp
        ref = solve_ivp(lambda u, y: -(1 + u) * y + 1, (0, ss[-1]), [0.0], rtol=1e-12, atol=1e-14).y[0, -1]
        return abs(Xk[-1] - ref)
    e1, e2 = err(21), err(41)
    assert 3.0 < e1 / e2 < 5.0
