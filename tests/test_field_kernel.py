"""The compiled ReLU field of rf/_field_kernel.py (numba; D <= 2, one time) against the numpy path.

Tolerance: both paths compute ``sum_j max(c_j + sum_k x_k w_jk, 0) W_dj`` in float64, in different orders (the
numpy path by BLAS, the kernel unit by unit). With ``A_j = |c_j| + sum_k |x_k w_jk|`` each pre-activation errs by
at most 2 eps A_j (D <= 2 additions) and the p-term sum by (p - 1) eps sum_j |r_j W_dj|, so the two differ by at most
``2 (p + 2) eps sum_j A_j |W_dj|`` per output (a worst case; observed differences are ~100x smaller).
"""
import numpy as np
import pytest

from rftheory.density import _fused_pass
from rftheory.rf import _field_kernel
from rftheory.rf.model import RandomFeatureModel

EPS = np.finfo(float).eps
pytestmark = pytest.mark.skipif(not _fused_pass.installed(), reason="numba is not installed")


def _case(D, p=300, m=1001, seed=3):
    model = RandomFeatureModel(D, p, 8, 4.0, rng=seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.normal(size=(D, p))
    x = rng.normal(size=(m, D)) * 3
    return model, W, x


def _bound(model, W, x, t):
    C, _ = model._time_rows(np.array([t]))
    A = np.abs(C[0])[None, :] + np.abs(x) @ np.abs(model.W_x).T          # (m, p)
    return 2 * (model.p + 2) * EPS * (A @ np.abs(W).T)                    # (m, D)


@pytest.mark.parametrize("D", [1, 2])
def test_compiled_field_agrees_with_the_numpy_path(D, monkeypatch):
    """Within the round-off bound of the module docstring, on 1001 points (a block of 512, a remainder that is
    not a multiple of the vector width). Power: c_j x (1 + 1e-6) in the kernel, or the unit sum stopping one unit
    short, fails it (both tried)."""
    model, W, x = _case(D)
    t = 0.37
    field = model.score_field(W)
    assert _field_kernel.applies(model, 1)
    got = field.output(x, t)
    monkeypatch.setenv("RFTHEORY_NUMBA", "0")
    assert not _field_kernel.applies(model, 1)
    ref = field.output(x, t)
    assert got.shape == ref.shape == (x.shape[0], D)
    assert np.all(np.abs(got - ref) <= _bound(model, W, x, t))
    assert not np.array_equal(got, ref)                             # the kernel really ran (other order)


def test_compiled_field_bits_do_not_depend_on_the_batch():
    """Every point's unit sum runs in the same order, so a point alone, in a batch, in the vector loop or in its
    remainder gets the same bits; the score is (f - x) / h from those bits."""
    model, W, x = _case(2, m=517)
    field = model.score_field(W)
    t = 1.3
    full = field.output(x, t)
    for idx in ([0], [516], [3, 200, 513], list(range(100, 107))):
        assert np.array_equal(field.output(x[idx], t), full[idx])
    assert np.array_equal(field.output(x[5], t), full[5])
    parts = np.concatenate([field.output(x[:300], t), field.output(x[300:], t)])
    assert np.array_equal(parts, full)


def test_other_cases_keep_the_numpy_path():
    """Per-point times, D = 3 and smooth activations are not the kernel's: the numpy path's bits."""
    model, W, x = _case(2, m=40)
    tt = np.linspace(0.1, 2.0, 40)
    assert np.array_equal(model.score_field(W).output(x, tt), model.features(x, tt) @ W.T)
    m3 = RandomFeatureModel(3, 60, 4, 4.0, rng=1)
    W3 = np.random.default_rng(2).normal(size=(3, 60))
    x3 = np.random.default_rng(4).normal(size=(30, 3))
    assert not _field_kernel.applies(m3, 1)
    assert np.array_equal(m3.score_field(W3).output(x3, 0.5), m3.features(x3, 0.5) @ W3.T)
    mc = RandomFeatureModel(2, 60, 4, 4.0, activation="cos", rng=1)
    assert not _field_kernel.applies(mc, 1)
    assert np.array_equal(mc.score_field(W3[:2]).output(x3[:, :2], 0.5), mc.features(x3[:, :2], 0.5) @ W3[:2].T)


@pytest.mark.parametrize("activation", ["relu", "cos"])
def test_the_last_time_row_is_reused_only_for_its_time(activation):
    """A field keeps the embedded row of its last one-time call (a sampler asks each step's end time again): calls
    at t1, t2, t2, t1 and per-point times give the bits of a fresh field's calls. Power: reusing the row whatever
    the time (tried: the t2 after t1 then differs)."""
    model = RandomFeatureModel(2, 80, 4, 4.0, activation=activation, rng=5)
    W = np.random.default_rng(6).normal(size=(2, 80))
    x = np.random.default_rng(7).normal(size=(33, 2))
    field = model.score_field(W)
    for t in (0.2, 0.9, 0.9, 0.2, np.linspace(0.1, 1.0, 33), 0.9):
        assert np.array_equal(field.score(x, t), model.score_field(W).score(x, t))
