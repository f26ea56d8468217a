"""Issue 17: the data chunks' moment columns are built once per density and counted once against the keep budget,
whatever the number of query threads (``rftheory.density._columns``).

Before, on two query threads, the first two query blocks built the same chunk at once and both counted its bytes:
at n = 10^4, D = 32 the last chunk was then never kept and was built again in every later call, twice at once.
"""
import threading
import time

import numpy as np
import pytest

from rftheory import EmpiricalDensity
from rftheory import _blas
from rftheory.density import _columns, _streaming


@pytest.fixture
def two_threads():
    old = _blas.set_query_threads(2)
    yield
    _blas.set_query_threads(old)


def _slow_counting_build(monkeypatch):
    """``_columns.build`` counted per key and slowed down, so that two blocks asking for the same missing
    chunk at about the same time both miss it (the race this module removes)."""
    calls = {}
    lock = threading.Lock()
    real = _columns.build

    def build(dens, n0, nc, want_cov, want_k3):
        with lock:
            calls[(n0, nc, want_cov, want_k3)] = calls.get((n0, nc, want_cov, want_k3), 0) + 1
        time.sleep(0.05)
        return real(dens, n0, nc, want_cov, want_k3)

    monkeypatch.setattr(_columns, "build", build)
    return calls


@pytest.mark.parametrize("keep_bytes", [64 * 2**20, 0])   # kept on the object; or only in the call's dict
def test_each_chunk_is_built_once_on_two_threads(two_threads, monkeypatch, keep_bytes):
    monkeypatch.setattr(_streaming, "_BLOCK_BYTES", 64 * 1024)    # many query blocks
    monkeypatch.setattr(_columns, "FEATURE_KEEP_BYTES", keep_bytes)
    calls = _slow_counting_build(monkeypatch)
    rng = np.random.default_rng(0)
    dens = EmpiricalDensity(rng.normal(size=(1500, 6)), chunk_size=512)
    x = dens.sample(0.5, 200, rng)
    ref = EmpiricalDensity(dens.data, chunk_size=512).moments(x, 0.5, cov=True)   # another density, same bits
    calls.clear()
    mom = dens.moments(x, 0.5, cov=True)
    chunks = [(n0, min(512, 1500 - n0), True, False) for n0 in range(0, 1500, 512)]
    assert calls == {k: 1 for k in chunks}
    if keep_bytes:    # kept: counted once each, and a second call builds nothing
        assert dens._feat_bytes == sum(dens._feat_cache[k][1].nbytes for k in chunks)
        calls.clear()
        dens.moments(x, 0.5, cov=True)
        assert calls == {}
    else:
        assert dens._feat_cache == {} and dens._feat_bytes == 0
    assert np.array_equal(mom.cov, ref.cov) and np.array_equal(mom.score, ref.score)


def test_keep_counts_a_key_once():
    rng = np.random.default_rng(1)
    dens = EmpiricalDensity(rng.normal(size=(100, 3)), chunk_size=64)
    key = (0, 64, True, False)
    a = _columns.build(dens, *key)
    b = _columns.build(dens, *key)
    assert _columns.keep(dens, key, a, None) is a
    assert _columns.keep(dens, key, b, None) is a      # the first stored entry, not counted again
    assert dens._feat_bytes == a[1].nbytes
