"""Issue 17 (session 18): the streaming pass's packed scatter and merge in compiled sweeps (``_fused_merge``) give
the numpy expressions' bits: the same operations in the same order, no contraction. Compared bit for bit with
the kernels switched off, on data with several chunks (so the merge runs) and with nearly one-hot queries (so the
precise centred sums patch the scatter between the two sweeps), in one query block and in many."""
import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory.density import _fused_exp, _fused_merge, _streaming

pytestmark = pytest.mark.skipif(not _fused_exp.available(6), reason="needs numba (the compiled sweeps)")


def _both(dens, x, t):
    on = dens.moments(x, t, cov=True)
    kept = _fused_merge.kernels()
    _fused_merge._STATE["kernels"] = (None, None)     # the numpy expressions
    try:
        off = dens.moments(x, t, cov=True)
    finally:
        _fused_merge._STATE["kernels"] = kept
    return on, off


@pytest.mark.parametrize("D,block_bytes", [(6, None), (6, 2**16), (24, 2**18)])
def test_compiled_scatter_and_merge_have_numpy_bits(monkeypatch, D, block_bytes):
    if block_bytes:
        monkeypatch.setattr(_streaming, "_BLOCK_BYTES", block_bytes)   # many query blocks
    rng = np.random.default_rng(D)
    X = rng.normal(size=(1500, D))
    dens = EmpiricalDensity(X, chunk_size=400)                   # 4 chunks: three merges
    x = np.concatenate([dens.sample(0.4, 150, rng), X[:20] + 1e-3 * rng.normal(size=(20, D))])
    t = np.concatenate([np.full(150, 0.4), np.full(20, 1e-3)])   # the last 20: nearly one-hot (precise rows)
    on, off = _both(dens, x, t)
    assert _fused_merge._STATE["kernels"][0] is not None
    for f in ("cov", "mean", "score", "log_density", "max_weight"):
        assert np.array_equal(getattr(on, f), getattr(off, f)), f
    assert np.all(on.max_weight[150:] > 1 - 1e-2)            # nearly one-hot: the precise rows ran
