"""The one-point path of ridge.project (issue 17): the same iteration as the batch core, bit for bit; its
certificate; its fallbacks to the batch path."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity, ridge
from rftheory.density.schedules import VE
from rftheory.geometry import _ridge_one
from rftheory.geometry._ridge_newton import _project_batch

EPS = np.finfo(float).eps
FIELDS = ("points", "converged", "status", "iterations", "residual", "beta", "eigengap", "newton_steps", "tol")


def _noisy_circle(D, n, rng):
    th = rng.uniform(0, 2 * np.pi, n)
    X = np.zeros((n, D))
    X[:, 0], X[:, 1] = np.cos(th), np.sin(th)
    return X + 0.05 * rng.normal(size=(n, D))


def _batch_core(dens, x, t, d, **kw):
    """The batch core on the one point alone (what project ran for m = 1 before the one-point path)."""
    res, orders = _project_batch(dens, x[None], np.full(1, t), d, kw.get("tol", 1e-10), kw.get("max_iter", 200),
                                 kw.get("newton", True), 0.0, kw.get("step"))
    return res, (float(np.median(orders)) if orders else float("nan"))


def _count_one_path(monkeypatch):
    """Counts the one-point path's completed runs (a fallback does not count)."""
    calls = []
    real = _ridge_one.project_one

    def spy(*a, **k):
        out = real(*a, **k)
        calls.append(1)
        return out

    monkeypatch.setattr("rftheory.geometry.ridge._project_one", spy)
    return calls


@pytest.mark.parametrize("D, d, kw", [(2, 1, {}), (3, 1, {}), (3, 2, {}), (2, 0, {}), (4, 1, {}),
                                      (2, 1, {"newton": False, "tol": 1e-8, "max_iter": 60}),
                                      (3, 1, {"step": 0.01, "tol": 1e-9}), (2, 1, {"spread": 0.6})])
def test_one_point_path_is_the_batch_iteration_bit_for_bit(D, d, kw, monkeypatch):
    # many random starts around a noisy circle: every output of the one-point path equals the batch core's
    # on the same single point to the last bit (the same steps, trust radius, stopping rule, certificate);
    # against the same points projected together (other GEMM kernels) the points agree to round-off
    rng = np.random.default_rng(100 * D + d)
    dens = EmpiricalDensity(_noisy_circle(D, 300, rng), VE(sigma_min=0.01, sigma_max=0.2))
    t = 0.7
    kw = dict(kw)
    q = dens.data[rng.integers(0, 300, 25)] + kw.pop("spread", 0.15) * rng.normal(size=(25, D))   # far starts too
    calls = _count_one_path(monkeypatch)
    together = ridge.project(dens, q, t, d, **kw)
    for i in range(q.shape[0]):
        one = ridge.project(dens, q[i], t, d, **kw)
        ref, order = _batch_core(dens, q[i], t, d, **kw)
        for k in FIELDS:
            np.testing.assert_array_equal(getattr(one, k), ref[k], err_msg=k)
        assert one.order == order or (np.isnan(one.order) and np.isnan(order))
        assert one.iterations[0] == together.iterations[i] and one.status[0] == together.status[i]
        # the batch's products sum in another order: agreement to round-off amplified by the frame's
        # conditioning (measured <= 3.2e3 eps relative at D = 3, d = 2)
        np.testing.assert_allclose(one.points[0], together.points[i], rtol=0,
                                   atol=1e4 * EPS * (1 + np.abs(together.points[i]).max()))
    assert len(calls) == q.shape[0]      # every single point took the one-point path (no fallback)
    if not kw and D < 4:   # the default tolerance: every point converged and certified
        assert together.converged.all()


def test_one_point_certificate_is_an_independent_residual():
    # the reported residual is below the tolerance and the point is on the ridge by the definition
    # (residual below tol, curvature < 0)
    rng = np.random.default_rng(3)
    dens = EmpiricalDensity(_noisy_circle(2, 2000, rng), VE(sigma_min=0.01, sigma_max=0.2))
    t = 0.7
    for x in dens.data[:20] + 0.2 * rng.normal(size=(20, 2)):
        pr = ridge.project(dens, x, t, 1)
        assert pr.converged[0] and pr.residual[0] <= 1e-10
        # an independent evaluation (the frame without the third moment: other products, other bits)
        # confirms the certificate
        chk = ridge.residual(dens, pr.points, t, 1)
        assert chk.residual[0] <= pr.tol[0] and chk.curvature_ok[0]


def test_one_point_path_falls_back_to_the_batch_core(monkeypatch):
    rng = np.random.default_rng(5)
    X = _noisy_circle(2, 50, rng)
    # (1) precise sums (a one-hot posterior at small t: the pass's centred scatter), (2) data in several
    # chunks, (3) D > 4 (two-pass third moment): the one-point path uses the general pass there, same bits
    cases = [(EmpiricalDensity(X, VE(sigma_min=0.01, sigma_max=0.2)), X[7] + 1e-3, 0.01, 1),
             (EmpiricalDensity(X, VE(sigma_min=0.01, sigma_max=0.2), chunk_size=16), X[3] + 0.1, 0.7, 1),
             (EmpiricalDensity(rng.normal(size=(40, 5)), VE(sigma_min=0.01, sigma_max=1.0)), np.full(5, 0.1),
              0.8, 1)]
    calls = _count_one_path(monkeypatch)
    for dens, x, t, d in cases:
        one = ridge.project(dens, x, t, d)
        ref, _ = _batch_core(dens, x, t, d)
        for k in FIELDS:
            np.testing.assert_array_equal(getattr(one, k), ref[k], err_msg=k)
    assert len(calls) == len(cases)
    # a field that is not an EmpiricalDensity takes the batch path (the one-point path declines it)

    class Field:
        D = 2

        def score(self, x, t):
            return -np.asarray(x) * np.array([1.0, 4.0])

        def hessian(self, x, t):
            return np.broadcast_to(-np.diag([1.0, 4.0]), (np.shape(x)[0], 2, 2)).copy()

    with pytest.raises(_ridge_one._Fallback):
        _ridge_one.project_one(Field(), np.ones((1, 2)), np.ones(1), 1, 1e-10, 10, True, 0.0, 0.1)
    pr = ridge.project(Field(), np.array([0.3, 0.5]), 1.0, 1, step=0.1)
    assert pr.converged[0] and abs(pr.points[0, 1]) <= 1e-10


def test_one_point_refusals_are_the_batch_paths():
    # where float64 cannot represent the frame the one-point path hands over and the batch path refuses by
    # name: midway between two modes at tiny t (H beyond float64), and a subnormal h_t
    dens = EmpiricalDensity(np.array([[0.0, 0.0], [3.0, 0.0]]))
    for x, t in ((np.array([1.5, 0.0]), 1e-200), (np.array([1.0, 0.5]), 1e-310)):
        with pytest.raises(ValueError, match="not representable in float64"):
            ridge.project(dens, x, t, 1)
        with pytest.raises(_ridge_one._Fallback):
            _ridge_one.project_one(dens, x[None], np.full(1, t), 1, 1e-10, 200, True, 0.0, None)


@pytest.mark.parametrize("D, d, engine, kw", [(2, 1, "numpy", {}), (2, 1, "numba", {}), (1, 0, "numpy", {}),
                                              (1, 0, "numba", {}), (2, 1, "numpy", {"newton": False, "tol": 1e-8}),
                                              (2, 1, "numpy", {"step": 0.01, "tol": 1e-9})])
def test_float_path_at_small_D_is_the_batch_iteration_bit_for_bit(D, d, engine, kw, monkeypatch):
    # D <= 2 with one normal direction runs on Python floats (_project_small) against the batch's written-out
    # products and closed-form eigh: the same bits, on both engines (the numpy pass and the compiled one), and
    # that path is the one taken
    if engine == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(7 + 10 * D + d)
    if D == 2:
        X = _noisy_circle(2, 300, rng)
    else:   # three clusters on the line: modes
        X = np.concatenate([rng.normal(-1.0, 0.1, 100), rng.normal(0.2, 0.1, 100), rng.normal(1.5, 0.2, 100)])[:, None]
    dens = EmpiricalDensity(X, VE(sigma_min=0.01, sigma_max=0.2), engine=engine)
    t = 0.7
    q = dens.data[rng.integers(0, 300, 20)] + 0.15 * rng.normal(size=(20, D))
    small = []
    real = _ridge_one._project_small
    monkeypatch.setattr(_ridge_one, "_project_small", lambda *a, **k: (small.append(1), real(*a, **k))[1])
    for i in range(q.shape[0]):
        one = ridge.project(dens, q[i], t, d, **kw)
        ref, order = _batch_core(dens, q[i], t, d, **kw)
        for k in FIELDS:
            np.testing.assert_array_equal(getattr(one, k), ref[k], err_msg=k)
        assert one.order == order or (np.isnan(one.order) and np.isnan(order))
        if not kw:
            assert one.converged[0]
    assert len(small) == q.shape[0]
