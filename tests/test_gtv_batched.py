"""The batched [GTV] ensemble paths (issue 17): exact two-exp bump sums, the D = 1 PF-ODE, the batched ridge fit.

Each is compared with the plain per-fit computation it replaces, at a tolerance derived from round-off."""
import numpy as np
import pytest

from rftheory.density.schedules import LinearVP, uniform_grid
from rftheory.gtv._bump_sums import bump_sums, horner_applies
from rftheory.gtv.bases import FourierModes, GaussianBumps
from rftheory.gtv.ensembles import FeatureEnsemble, fit_ensemble, gaussian_features, pf_ode_ensemble, sample_triples

from .ref_gtv import per_fit_pf_ode

EPS = np.finfo(float).eps
DATA1 = np.array([[-1.0], [0.0], [1.0]])


def _horner_bound(basis, x, C):
    """Round-off bound of the Horner form: eps (4 n + n kappa |u| + u^2/2 + h kappa |u| + 8) times the sum of the
    absolute contributions (docs in rftheory/gtv/_bump_sums.py), per point."""
    n = basis.n
    kappa, h = 1.0 / basis.width_factor, 0.5 * (n - 1)
    u = np.abs(x - 0.5 * (basis.lo + basis.hi)) / basis.width
    scale = np.einsum("nmi,ni->nm", basis(x), np.abs(C))
    return EPS * (4 * n + n * kappa * u + 0.5 * u * u + h * kappa * u + 8) * scale


@pytest.mark.parametrize("n,lo,hi,wf", [(16, -1.5, 1.5, 0.5), (7, -2.0, 3.0, 0.8), (24, 0.0, 1.0, 0.5)])
def test_bump_sums_equal_the_direct_sum(n, lo, hi, wf):
    basis = GaussianBumps(n, lo, hi, wf)
    assert horner_applies(basis)
    rng = np.random.default_rng(0)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    # points inside, at the centres, near the Horner limit and far outside (the direct fallback)
    x = mid + half * np.concatenate([rng.uniform(-1.2, 1.2, (5, 300)), np.broadcast_to(
        (basis.centres - mid) / half, (5, n)), rng.uniform(-6, 6, (5, 200))], axis=1)
    C = rng.normal(size=(5, n)) * np.logspace(0, 3, n)  # unequal weights: cancellation and spread
    direct = np.einsum("nmi,ni->nm", basis(x), C)
    fast = bump_sums(basis, x, C)
    bound = _horner_bound(basis, x, C) + 4 * n * EPS * np.einsum("nmi,ni->nm", basis(x), np.abs(C))
    assert np.all(np.abs(fast - direct) <= bound)
    np.testing.assert_array_equal(bump_sums(basis, x, C, threads=3), fast)  # same bits whatever the threads


def test_horner_applies_only_where_its_exponents_stay_normal():
    assert not horner_applies(FourierModes(8, 0, 1))
    assert horner_applies(GaussianBumps(16, -1.5, 1.5))
    assert not horner_applies(GaussianBumps(60, -1.5, 1.5))  # coefficient factors exp(-h^2 kappa^2/2) underflow


def _propagated_roundoff(ens, grid, traj):
    """First-order bound on the difference of two evaluations of the Euler map that differ by round-off.

    Step k maps x to ``alpha x + gamma m(x)``; a difference e_k grows as ``e_{k+1} = J_k e_k + d_k`` with
    ``J_k = alpha + gamma m'(x_k)`` and a new local difference ``d_k`` bounded by the two evaluations' round-off:
    the Horner bound (``_horner_bound``) on ``gamma m`` plus the per-fit loop's own (4 n eps on its sum), and a
    few eps on ``alpha x``. Returns ``sum_k d_k prod_{j>k} |J_j|`` per particle, along the reference trajectory."""
    sched, feats = ens.schedule, ens.features
    basis = feats.x_bases[0]
    n_x, n_t = feats.shape
    W = ens.W.reshape(ens.N, n_x, n_t)
    bound = np.zeros(traj[0].shape[:-1])
    for k in range(grid.size - 1):
        t, dt = grid[k], grid[k] - grid[k + 1]
        a, h, beta, g2 = (float(f(t)) for f in (sched.a, sched.h, sched.beta, sched.g2))
        alpha, gamma = 1 + dt * (beta - 0.5 * g2 / h), 0.5 * dt * g2 * a / h
        C = gamma * (W @ feats.t_basis(np.float64(t)))  # (N, n_x)
        x = traj[k][..., 0]
        b = basis(x)
        db = -b * (x[..., None] - basis.centres) / basis.width ** 2
        J = np.abs(alpha + np.einsum("nmi,ni->nm", db, C))
        d = _horner_bound(basis, x, C) + 4 * n_x * EPS * np.einsum("nmi,ni->nm", b, np.abs(C)) \
            + 8 * EPS * (np.abs(x) + np.abs(alpha * x))
        bound = J * bound + d
    return bound[..., None]


def test_batched_pf_ode_equals_the_per_fit_loop_at_gtv2_settings():
    """gtv2's configuration (16 x 16 bumps, eps = 1e-3, 30 uniform steps): the batched D = 1 path against the
    per-fit loop, within twice the propagated round-off bound of the Euler map."""
    sched = LinearVP()
    ens = fit_ensemble(gaussian_features(1, 16, 16, (-1.5, 1.5), (1e-3, 1.0)), DATA1, sched, 256, 3, 1e-3, rng=7)
    grid = uniform_grid(1.0, 1e-3, 31)
    x0 = np.linspace(-3, 3, 41)[:, None]
    fast = pf_ode_ensemble(ens, grid, x0, threads=1)
    traj = [np.broadcast_to(x0, (3,) + x0.shape)]
    for k in range(grid.size - 1):  # the reference trajectory, step by step (for the bound)
        traj.append(_one_step(ens, grid, k, traj[-1]))
    ref = traj[-1]
    np.testing.assert_allclose(ref, per_fit_pf_ode(ens, grid, x0), rtol=0, atol=0)
    bound = _propagated_roundoff(ens, grid, traj)
    assert np.all(np.abs(fast - ref) <= 2 * bound), np.max(np.abs(fast - ref) / bound)
    np.testing.assert_array_equal(pf_ode_ensemble(ens, grid, x0, threads=2), fast)
    with pytest.raises(ValueError, match="threads"):
        pf_ode_ensemble(ens, grid, x0, threads=0)


def _one_step(ens, grid, k, x):
    sched = ens.schedule
    t, dt = grid[k], grid[k] - grid[k + 1]
    out = []
    for n in range(ens.N):
        m = ens.features(x[n], t) @ ens.W[n].T
        s = (float(sched.a(t)) * m - x[n]) / float(sched.h(t))
        out.append(x[n] + dt * (float(sched.beta(t)) * x[n] + 0.5 * float(sched.g2(t)) * s))
    return np.stack(out)


def test_batched_fit_equals_a_per_fit_solve():
    """fit_ensemble's batched (chunked, GEMM) ridge fits against one plain normal-equation solve per fit on the
    same triples (same generator stream: one chunk of (N, P) draws). Two backward-stable solves agree to
    cond(A) eps; tolerance 100 cond(A) eps |W|."""
    feats = gaussian_features(1, 6, 5, (-1.5, 1.5), (1e-2, 1.0))
    sched = LinearVP()
    for P in (20, 80):  # dual (F = 30 > P) and primal branches
        ens = fit_ensemble(feats, DATA1, sched, P, 9, 1e-2, rng=11, ridge=0.1)  # 9: three thread tasks
        x0, t, xt = sample_triples(DATA1, sched, (9, P), 1e-2, 1.0, np.random.default_rng(11))
        for n in range(9):
            phi = feats(xt[n], t[n])
            lam = sched.a(t[n]) ** 2 / sched.h(t[n])
            A = (phi * lam[:, None]).T @ phi / P + 0.1 * np.eye(feats.F)
            B = (phi * lam[:, None]).T @ x0[n] / P
            W = np.linalg.solve(A, B).T
            tol = 100 * np.linalg.cond(A) * EPS * np.abs(W).max()
            np.testing.assert_allclose(ens.W[n], W, rtol=0, atol=tol)


def test_fit_is_bit_identical_for_any_thread_count():
    """The fits run in fixed blocks of fits on the query-thread pool: 1 and 3 threads give the same bits."""
    from rftheory._blas import set_query_threads

    feats = gaussian_features(1, 6, 5, (-1.5, 1.5), (1e-2, 1.0))
    Ws = []
    for n in (1, 3):
        old = set_query_threads(n)
        try:
            Ws.append(fit_ensemble(feats, DATA1, LinearVP(), 90, 11, 1e-2, rng=5, ridge=0.1).W)
        finally:
            set_query_threads(old)
    np.testing.assert_array_equal(Ws[0], Ws[1])


def test_integer_arguments_are_checked_by_name():
    feats = gaussian_features(1, 4, 4)
    with pytest.raises(TypeError, match="P"):
        fit_ensemble(feats, DATA1, LinearVP(), 10.5, 2, 1e-2, rng=0)
    with pytest.raises(ValueError, match="N"):
        fit_ensemble(feats, DATA1, LinearVP(), 10, 0, 1e-2, rng=0)
    assert isinstance(fit_ensemble(feats, DATA1, LinearVP(), 10, 2, 1e-2, rng=0), FeatureEnsemble)
