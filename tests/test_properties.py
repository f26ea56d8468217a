"""Property-based tests (hypothesis) of the exact results on random small problems: P2 and T1 must hold
to round-off / integrator error on every draw."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rftheory import EmpiricalDensity, bounds, ridge
from rftheory.dynamics.sampling import PerturbedField, constant_error, sample
from rftheory.density.schedules import geometric_grid


@st.composite
def collinear_sets(draw, max_D=4):
    """n points on a random line in D dimensions (so the affine hull has dimension 1), spread >= 1."""
    D = draw(st.integers(2, max_D))
    n = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=D)
    direction /= np.linalg.norm(direction)
    offset = rng.normal(size=D) * 2
    s = np.sort(rng.uniform(-3, 3, n))
    s[-1] = max(s[-1], s[0] + 1.0)
    return offset + s[:, None] * direction[None, :], seed


@settings(max_examples=15, deadline=None)
@given(data=collinear_sets(), t=st.sampled_from([0.2, 0.5, 1.5]))
def test_p2_projection_lands_on_the_line(data, t):
    X, seed = data
    dens = EmpiricalDensity(X)
    origin, basis, normal, c = ridge.affine_hull(X)
    a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
    rng = np.random.default_rng(seed + 1)
    lam = rng.uniform(0, 1, size=(10, 1))
    x = a * (lam * X[0] + (1 - lam) * X[-1]) + np.sqrt(h / X.shape[1]) * rng.normal(size=(10, X.shape[1]))
    pr = ridge.project(dens, x, t, 1, tol=1e-12)
    assert np.all((pr.status == 0) | (pr.status == 2))
    conv = pr.converged
    off = np.abs((pr.points[conv] - a * origin) @ normal).max(axis=1) if conv.any() else np.zeros(0)
    # 1e-10, or the frame's conditioning (rounding tilts the frame by ~eps mu_1/mu_2; see test_ridge.py)
    if conv.any():
        mu = np.linalg.eigvalsh(dens.posterior_cov(pr.points[conv], t))[:, ::-1]
        s = np.linalg.norm(dens.score(pr.points[conv], t), axis=1)
        bound = np.maximum(1e-10, h * 16 * np.finfo(float).eps * mu[:, 0] / np.maximum(mu[:, 1], 1e-300) * s)
        assert np.all(off <= bound)


@settings(max_examples=10, deadline=None)
@given(data=collinear_sets(max_D=3), amp=st.floats(-0.5, 0.5), T=st.sampled_from([2.0, 5.0]))
def test_t1_pf_ode_normal_offset_on_random_problems(data, amp, T):
    X, seed = data
    dens = EmpiricalDensity(X)
    origin, basis, normal, c = ridge.affine_hull(X)
    e_N = amp * np.ones(normal.shape[1])
    field = PerturbedField(dens, constant_error(normal @ e_N))
    x0 = dens.sample(T, 5, np.random.default_rng(seed + 2))
    tmin = 1e-2
    runs = [sample(field, x0, geometric_grid(T, tmin, n), "heun").final for n in (400, 800)]
    y_T = x0 @ normal - float(dens.schedule.a(T)) * c
    pred = np.array([bounds.t1_ode(y, T, tmin, e_normal=e_N) for y in y_T])
    a_min = float(dens.schedule.a(tmin))
    e_n, e_2n = (r @ normal - a_min * c - pred for r in runs)
    # Richardson (Heun, order 2): |e_N| <= 2 (4/3) |e_N - e_2N| plus round-off
    assert np.all(np.abs(e_n) <= 2 * (4 / 3) * np.abs(e_n - e_2n) + 1e-11)
