"""verification.sweep: keys and seeds, serial == dask bit for bit, resume after interruption or a kill."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verification.checks import _proxy_mc
from verification.protocol import Context
from verification.sweep import canonical, open_client, run_sweep, task_key, task_seed

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- task functions (importable)
def noise_task(params, rng):
    """Cheap task: a few normal draws scaled by a parameter."""
    if params.get("fail"):
        raise ValueError("asked to fail")
    return {"x": params["scale"] * rng.standard_normal(3), "i": np.int64(params["i"])}


def slow_task(params, rng):
    time.sleep(params["sleep"])
    return {"x": rng.standard_normal(2)}


@pytest.fixture(scope="module")
def client():
    """One 2-worker process LocalCluster for the module (startup is the slow part)."""
    with open_client(None, n_workers=2, processes=True) as c:
        yield c


@pytest.fixture(scope="module")
def proxy_params():
    """The tweedie/V1 quick sweep: 2 times x (32 judged + 48 pilot) replicates = 160 tasks."""
    s = _proxy_mc.SIZES["quick"]
    X, dens, centres = _proxy_mc.setup(Context("quick", 0, scheduler="serial"), s)
    return [{"data": X, "schedule": "ou", "t": t, "centres": centres[t], "N": s["draws"], "role": role, "rep": r}
            for t in s["times"] for role, R in (("judged", s["reps"]), ("pilot", s["pilot"])) for r in range(R)]


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert ra[k].dtype == rb[k].dtype
            np.testing.assert_array_equal(ra[k], rb[k])  # bit for bit (no tolerance)


# ----------------------------------------------------------------------------- keys and seeds
@settings(max_examples=50, deadline=None)
@given(d=st.dictionaries(st.text(min_size=1, max_size=5),
                         st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.text(max_size=5)),
                         min_size=1, max_size=6), seed=st.integers(0, 2**32))
def test_key_ignores_dict_order_and_sees_every_change(d, seed):
    rev = dict(reversed(list(d.items())))
    assert task_key(noise_task, d, seed) == task_key(noise_task, rev, seed)
    assert task_key(noise_task, d, seed) != task_key(noise_task, d, seed + 1)
    assert task_key(noise_task, d, seed) != task_key(noise_task, d, seed, version="2")
    assert task_key(noise_task, d, seed) != task_key(slow_task, d, seed)
    k = next(iter(d))
    changed = dict(d, **{k: [d[k], 0]})
    assert task_key(noise_task, d, seed) != task_key(noise_task, changed, seed)
    assert task_seed(noise_task, d, seed).entropy == seed


def test_arrays_are_keyed_by_content_dtype_and_shape():
    a = np.arange(6.0)
    assert task_key(noise_task, {"a": a}, 0) == task_key(noise_task, {"a": a.copy()}, 0)
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)
    assert task_key(noise_task, {"a": a}, 0) != task_key(noise_task, {"a": b}, 0)
    assert task_key(noise_task, {"a": a}, 0) != task_key(noise_task, {"a": a.reshape(2, 3)}, 0)
    assert task_key(noise_task, {"a": a}, 0) != task_key(noise_task, {"a": a.astype(np.float32)}, 0)
    assert canonical({"x": float("nan")}) == {"x": {"__float__": "nan"}}
    with pytest.raises(TypeError, match=r"params\['f'\]"):
        canonical({"f": object()})
    with pytest.raises(TypeError, match="module-level"):
        task_key(lambda p, r: {"x": 1}, {}, 0)
    with pytest.raises(TypeError, match="root_seed"):
        task_key(noise_task, {}, -1)


def test_task_results_do_not_depend_on_position(tmp_path):
    params = [{"scale": 1.0, "i": i} for i in range(10)]
    a = run_sweep(noise_task, params, root_seed=5).results
    b = run_sweep(noise_task, params[::-1], root_seed=5).results[::-1]
    _same(a, b)
    c = run_sweep(noise_task, params, root_seed=6).results
    assert not np.array_equal(a[0]["x"], c[0]["x"])
    # distinct tasks get distinct streams
    assert len({r["x"].tobytes() for r in a}) == len(a)


# ----------------------------------------------------------------------------- dask == serial, resume
def test_dask_sweep_is_bit_identical_to_serial_and_resumes(client, proxy_params, tmp_path):
    n = len(proxy_params)
    assert n >= 64
    serial = run_sweep(_proxy_mc.proxy_task, proxy_params, root_seed=0)
    assert serial.n_computed == n and serial.n_cached == 0
    # interrupted run: only the first half gets computed (and cached) ...
    half = run_sweep(_proxy_mc.proxy_task, proxy_params[: n // 2], root_seed=0, cache_dir=tmp_path, client=client)
    assert half.n_computed == n // 2
    _same(half.results, serial.results[: n // 2])
    # ... the rerun computes exactly the missing half, on the cluster
    full = run_sweep(_proxy_mc.proxy_task, proxy_params, root_seed=0, cache_dir=tmp_path, client=client)
    assert (full.n_cached, full.n_computed) == (n // 2, n - n // 2)
    assert set(full.computed_keys) == set(full.keys[n // 2:])
    _same(full.results, serial.results)
    # a third run computes nothing; a damaged cache file is recomputed, not trusted
    victim = Path(full.cache_dir) / f"{full.keys[7]}.npz"
    victim.write_bytes(b"garbage")
    again = run_sweep(_proxy_mc.proxy_task, proxy_params, root_seed=0, cache_dir=tmp_path, client=client)
    assert (again.n_cached, again.n_computed) == (n - 1, 1)
    _same(again.results, serial.results)
    assert not list(Path(full.cache_dir).glob("*.tmp"))


def test_task_errors_name_the_params(client):
    params = [{"scale": 1.0, "i": 0}, {"scale": 1.0, "i": 1, "fail": True}]
    with pytest.raises(RuntimeError, match="asked to fail"):
        run_sweep(noise_task, params, root_seed=0, client=client)
    with pytest.raises(RuntimeError, match="'fail': True"):
        run_sweep(noise_task, params, root_seed=0)


def test_existing_scheduler_by_address(client):
    params = [{"scale": 2.0, "i": i} for i in range(8)]
    with open_client(client.scheduler.address) as c2:
        remote = run_sweep(noise_task, params, root_seed=1, client=c2)
    _same(remote.results, run_sweep(noise_task, params, root_seed=1).results)


# ----------------------------------------------------------------------------- killed half-way
def test_killed_sweep_resumes_computing_only_the_missing(tmp_path):
    n, sleep = 64, 0.02
    params = [{"sleep": sleep, "i": i} for i in range(n)]
    code = ("import sys; from tests.test_verification_sweep import slow_task; "
            "from verification.sweep import run_sweep; "
            f"run_sweep(slow_task, [{{'sleep': {sleep}, 'i': i}} for i in range({n})], root_seed=3, "
            "cache_dir=sys.argv[1])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    cdir = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("*/*.npz"))
            if len(found) >= n // 3:
                cdir = found[0].parent
                break
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert cdir is not None, "the sweep subprocess wrote no cache files"
    done = len(list(cdir.glob("*.npz")))
    assert n // 3 <= done < n, done
    resumed = run_sweep(slow_task, params, root_seed=3, cache_dir=tmp_path)
    assert (resumed.n_cached, resumed.n_computed) == (done, n - done)
    # the killed-and-resumed results are those of one clean, uncached run
    _same(resumed.results, run_sweep(slow_task, params, root_seed=3).results)
    again = run_sweep(slow_task, params, root_seed=3, cache_dir=tmp_path)
    assert again.n_computed == 0
