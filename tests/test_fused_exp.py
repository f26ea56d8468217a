"""The numpy pass's compiled max-and-exp sweep (``density._fused_exp``, issue 17): each weight within one ulp of
numpy's exp (the exponential's own bound, tests/test_fused_pass.py), the same maxima and first indices as
``np.argmax``, numpy's own operations on rows with non-finite logits, moments within round-off of
``engine="numpy"``, and bits independent of the query blocks and the thread count."""
import numpy as np
import pytest

pytest.importorskip("numba")

from rftheory import EmpiricalDensity  # noqa: E402
from rftheory._blas import set_query_threads  # noqa: E402
from rftheory.density import _fused_exp, _streaming  # noqa: E402

EPS = np.finfo(np.float64).eps


def _numpy_way(e):
    e = e.copy()
    jb = np.argmax(e, axis=1)
    M = e[np.arange(e.shape[0]), jb]
    e -= M[:, None]
    np.exp(e, out=e)
    return e, jb, M


def test_sweep_within_one_ulp_of_numpy_with_the_same_argmax():
    rng = np.random.default_rng(0)
    e0 = np.concatenate([rng.normal(size=(40, 700)) * s for s in (1.0, 30.0, 400.0)])   # down to exp(-2000)
    e0[5, [3, 300]] = e0[5].max() + 1.0         # a tied maximum: the first index, as np.argmax
    ref, jr, Mr = _numpy_way(e0)
    e = e0.copy()
    jb, M = _fused_exp.max_exp(e)
    assert np.array_equal(jb, jr) and np.array_equal(M, Mr) and jb[5] == 3
    # one ulp of the result (of the subnormal grid below 2^-1022), as the exponential's bound
    ulp = np.spacing(np.maximum(ref, np.finfo(np.float64).tiny))
    assert np.all(np.abs(e - ref) <= ulp)
    assert np.any(e != ref)                     # a different exponential: not numpy's bits


def test_rows_with_non_finite_logits_get_numpys_operations():
    rng = np.random.default_rng(1)
    e0 = rng.normal(size=(6, 50))
    e0[1, 7] = np.nan
    e0[2, 9] = np.inf
    e0[3, :] = -np.inf
    with np.errstate(invalid="ignore"):
        ref, jr, Mr = _numpy_way(e0)
        e = e0.copy()
        jb, M = _fused_exp.max_exp(e)
    assert np.array_equal(jb, jr) and np.array_equal(M, Mr, equal_nan=True)
    for i in (1, 2, 3):   # the numpy pass's result there, bit for bit (NaN where it gives NaN)
        assert np.array_equal(e[i], ref[i], equal_nan=True)


def _data(D=8, n=900, m=300, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) * np.linspace(1.5, 0.5, D)
    return X, rng.normal(size=(m, D))


def test_moments_agree_with_the_numpy_engine_to_roundoff_and_numpy_engine_keeps_numpys_exp(monkeypatch):
    X, x = _data()
    auto, ref = EmpiricalDensity(X), EmpiricalDensity(X, engine="numpy")
    a, b = auto.moments(x, 0.3, cov=True), ref.moments(x, 0.3, cov=True)
    assert np.array_equal(a.nearest, b.nearest)
    # weights within an ulp each: the normalised sums within a few eps of their scale
    np.testing.assert_allclose(a.log_density, b.log_density, rtol=0, atol=16 * EPS * np.abs(b.log_density).max())
    np.testing.assert_allclose(a.mean, b.mean, rtol=0, atol=16 * EPS * np.abs(b.mean).max())
    np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=64 * EPS * np.abs(b.cov).max())
    assert not np.array_equal(a.cov, b.cov)     # the compiled sweep did run
    # engine="numpy": numpy's exp whatever is installed (the pass without the sweep gives the same bits)
    monkeypatch.setattr(_fused_exp, "available", lambda D: False)
    c = auto.moments(x, 0.3, cov=True)
    assert np.array_equal(c.cov, b.cov) and np.array_equal(c.mean, b.mean)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sweep_bits_do_not_depend_on_blocks_or_threads(threads, monkeypatch):
    X, x = _data(m=400)
    dens = EmpiricalDensity(X, chunk_size=256)
    monkeypatch.setattr(_streaming, "_BLOCK_BYTES", 2**16)   # many query blocks (fixed by the budget alone)
    old = set_query_threads(1)
    try:
        ref = dens.moments(x, 0.3, cov=True)
        set_query_threads(threads)
        got = dens.moments(x, 0.3, cov=True)
    finally:
        set_query_threads(old)
    assert np.array_equal(got.cov, ref.cov) and np.array_equal(got.log_density, ref.log_density)
