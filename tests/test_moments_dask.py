"""The exact moment assembly on a dask cluster (issue 17): a real LocalCluster of 2 worker processes gives
U, V, c0 bit-identical to the serial assembly (fixed blocks of steps, partials added in block order); an
unreachable scheduler fails at once naming its address."""
import socket
import time

import numpy as np
import pytest

from rftheory.density.schedules import OU
from rftheory.rf import _exact
from rftheory.rf.model import RandomFeatureModel
from rftheory.rf.moments import assemble, time_rule

X3 = np.array([[-1.5, 0.3], [1.0, -0.5], [0.2, 1.1]])


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _problem(act="relu"):
    m = RandomFeatureModel(2, 24, 3, 2.0, activation=act, rng=3)
    nodes, wts = time_rule(0.01, 2.0, 3, 2.0, 4, 2.0)
    return m, nodes, wts


@pytest.mark.parametrize("act,param", [("relu", "posterior_mean"), ("relu", "score"), ("erf", "posterior_mean")])
def test_cluster_is_bit_identical_to_serial(client, act, param):
    m, nodes, wts = _problem(act)
    kw = dict(batch=5, block_steps=20)            # many blocks, batches that do not divide them
    ser = assemble(m, X3, OU(), 0.01, 2.0, ("1", "1/h"), "exact", param, nodes, wts, threads=2, **kw)
    spec_blocks = len(_exact.ExactSpec(m.act, m.W_x, m.W_t, m.b, m.K, m.T, "concat", X3, nodes, nodes, nodes,
                                       np.ones((nodes.size, 1)), param, **kw).blocks())
    assert spec_blocks >= 4
    dis = assemble(m, X3, OU(), 0.01, 2.0, ("1", "1/h"), "exact", param, nodes, wts, scheduler=client, **kw)
    for a, b in zip(ser, dis):
        assert a.dtype == np.float64 and np.array_equal(a, b)
    assert len(client.scheduler_info()["workers"]) == 2


def test_moments_with_a_client_and_its_report(client):
    """model.moments(scheduler=client): the assembly and the quadrature report both on the cluster, same bits."""
    m = RandomFeatureModel(2, 16, 2, 2.0, rng=4)
    a = m.moments(X3, t0=0.02, n_gl=3, report_units=6)
    b = m.moments(X3, t0=0.02, n_gl=3, report_units=6, scheduler=client)
    assert np.array_equal(a.U, b.U) and np.array_equal(a.V, b.V) and a.c0 == b.c0
    assert a.report.rel_diff_U == b.report.rel_diff_U


def test_blocks_do_not_depend_on_workers_but_on_the_problem():
    m, nodes, wts = _problem()
    spec = _exact.ExactSpec(m.act, m.W_x, m.W_t, m.b, m.K, m.T, "concat", X3, nodes, nodes, nodes,
                            np.ones((nodes.size, 1)), "posterior_mean", batch=7, block_steps=20)
    bl = spec.blocks()
    assert bl[0] == (0, 21) and bl[-1][1] == nodes.size * 3
    assert all(b[0] == a[1] for a, b in zip(bl, bl[1:]))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast_naming_it():
    m = RandomFeatureModel(2, 8, 2, 2.0, rng=0)
    addr = f"tcp://127.0.0.1:{_free_port()}"
    t = time.perf_counter()
    with pytest.raises(ConnectionError, match=addr):
        m.moments(X3, t0=0.02, n_gl=2, report=False, scheduler=addr)
    assert time.perf_counter() - t < 10             # not dask's 30 s connect retry
    with pytest.raises(TypeError, match="scheduler"):
        m.moments(X3, t0=0.02, n_gl=2, report=False, scheduler=3)


def test_cli_figures_scheduler_unreachable(capsys):
    from rftheory import cli

    addr = f"tcp://127.0.0.1:{_free_port()}"
    rc = cli.main(["figures", "--only", "two_mode", "--quick", "--scheduler", addr, "--out", "/nonexistent/x"])
    assert rc == 2
    assert addr in capsys.readouterr().err


def test_cli_figures_scheduler_serial_is_the_in_process_default(monkeypatch):
    """The unreachable-address message says "or use --scheduler serial": figures accepts it (in-process, as
    without the flag) and never opens a cluster for it."""
    from paper_figures import _hqt, registry

    from rftheory import cli

    seen = []
    monkeypatch.setattr(_hqt, "set_scheduler", lambda s: seen.append(s))
    monkeypatch.setattr(registry, "main", lambda args: 0)
    assert cli.main(["figures", "--only", "two_mode", "--quick", "--scheduler", "serial"]) == 0
    assert seen == []
    assert cli.main(["figures", "--only", "two_mode", "--quick", "--scheduler", "local"]) == 0
    assert seen == ["local"]
