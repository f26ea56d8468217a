"""The Mehler-series pair sum of U (rf/_mehler.py) against the precise ReLU pair moment (rf/_bvn.relu_pair_std,
relative ~1e-13, an independent expansion: Price's theorem about rho_0 = 0 or -1 with windowed quadrature).

Tolerance: the series' truncation bound (TOL = 1e-15 per unit s_j s_k) plus round-off of its largest term
``g(a) g(b)`` (the k = 0 term; every other term is <= 0.19 in absolute value): ``1e-14 (1 + g(a) g(b))``,
on a grid of a, b in [-38, 10] and rho up to +-1 (observed: <= 1.5e-15 (1 + g g) at the cutoff 0.8 (numba);
at 0.9 (numpy), <= 2.2e-14 at g g = 18).
Power: half the series' orders, or a 1e-9 relative error in the far-pair quadrature's weights, fail it.

Every test of a pair sum runs on both engines (``engine``): numpy, and the compiled kernels of
rf/_mehler_kernels.py (numba; ``RFTHEORY_NUMBA=0`` selects numpy).
"""
import numpy as np
import pytest

from rftheory.density import _fused_pass
from rftheory.rf import _bvn, _mehler, _mehler_far, _mehler_kernels

EPS = np.finfo(float).eps


@pytest.fixture(params=["numpy", "numba"])
def engine(request, monkeypatch):
    if request.param == "numba" and not _fused_pass.installed():
        pytest.skip("numba is not installed")
    monkeypatch.setenv("RFTHEORY_NUMBA", "1" if request.param == "numba" else "0")
    assert _mehler_kernels.engine() == request.param
    return request.param

A = np.array([-38, -10, -6, -3, -1, -0.3, 0, 0.5, 1, 3, 6, 10.0])
RHOS = [0.0, 0.3, 0.8, 0.9, 0.95, 0.999, 1 - 1e-6, 1.0]


def _worst(rhos):
    p = A.size
    jj, kk = np.triu_indices(p, 1)
    gg = _bvn.relu_g(A[jj]) * _bvn.relu_g(A[kk])
    worst = 0.0
    for r in rhos:
        for sg in (1, -1):
            rho = np.full(jj.size, sg * r)
            got = _mehler.MehlerPairs(rho, p).weighted_sum(A[None, :], np.ones((1, p)), np.ones((1, 1)))[:, 0]
            ref = _bvn.relu_pair_std(A[jj], A[kk], rho)
            worst = max(worst, float(np.max(np.abs(got - ref) / (1 + gg))))
    return worst


def test_series_matches_precise_pair_moment(engine):
    assert _worst(RHOS) <= 1e-14


def test_half_the_orders_fails(monkeypatch):
    orig = _mehler.n_orders
    monkeypatch.setattr(_mehler, "n_orders", lambda *a: orig(*a) // 2)
    assert _worst([0.9]) > 1e-12


def test_far_quadrature_error_fails(engine, monkeypatch):
    orig = _mehler_far._ShiftedQuadrature.__init__

    def init(self, *a):
        orig(self, *a)
        self.wn = self.wn * (1 + 1e-9)               # the weights both engines read (numpy: via blocks())
    monkeypatch.setattr(_mehler_far._ShiftedQuadrature, "__init__", init)
    assert _worst([0.999]) > 1e-12


def test_orders_follow_the_bound():
    """N grows as rho_c -> 1 and as tol shrinks; the bound at N is below tol and at N - 1 above it."""
    assert _mehler.n_orders(0.5) < _mehler.n_orders(0.9) < _mehler.n_orders(0.95)
    assert _mehler.n_orders(0.9, 1e-10) < _mehler.n_orders(0.9, 1e-15)
    with pytest.raises(ValueError, match="rho_c"):
        _mehler.n_orders(1.0)


def test_threads_and_batches_give_the_same_bits(engine):
    rng = np.random.default_rng(3)
    p, B = 300, 40
    W = rng.standard_normal((p, 2))
    u = W / np.linalg.norm(W, axis=1)[:, None]
    jj, kk = np.triu_indices(p, 1)
    rho = np.clip((u[jj] * u[kk]).sum(1), -1, 1)
    mp = _mehler.MehlerPairs(rho, p, perm=_mehler.unit_order(W))
    assert mp.far.size > 0 and mp.far.size < rho.size            # both parts are exercised
    orders = [t[4] for t in mp.tiles]
    assert min(orders) < max(orders)                              # the tiles skip orders
    alpha, S, w = rng.standard_normal((B, p)) * 3, rng.uniform(0.5, 2, (B, p)), rng.uniform(0.1, 1, (B, 2))
    ref = mp.weighted_sum(alpha, S, w, batch=32, threads=1)
    for threads in (2, 3):
        assert np.array_equal(mp.weighted_sum(alpha, S, w, batch=32, threads=threads), ref)
    # the unit order changes only round-off and truncation below the bound (~1e-16 of the scale here)
    plain = _mehler.MehlerPairs(rho, p).weighted_sum(alpha, S, w, batch=32)
    assert np.max(np.abs(plain - ref)) <= 1e-14 * np.max(np.abs(plain))


def test_mixed_node_counts_and_rho_one_stay_finite(engine):
    """Pairs of one block with different panel counts (padded nodes) and |rho| = 1 exactly: finite, and each
    pair equals the precise moment (the other tests give every pair of a call the same rho)."""
    p = A.size
    jj, kk = np.triu_indices(p, 1)
    rho = np.resize([0.95, -0.999999, 1.0, -1.0, 0.5, 0.9999], jj.size)
    got = _mehler.MehlerPairs(rho, p).weighted_sum(A[None, :], np.ones((1, p)), np.ones((1, 1)))[:, 0]
    ref = _bvn.relu_pair_std(A[jj], A[kk], rho)
    gg = _bvn.relu_g(A[jj]) * _bvn.relu_g(A[kk])
    assert np.all(np.isfinite(got)) and np.max(np.abs(got - ref) / (1 + gg)) <= 1e-14


_FAR_CASE: dict = {}


def _far_error(monkeypatch_panels=None):
    """Max |far-pair quadrature - reference| (s_j s_k = 1) per (a, b, rho): a, b on a grid of [-38, 10] (0.4
    apart in [-8, 8]); widths of the integral in atanh r from 0.005 to 17 (rho up to 1 - 1e-15), both signs,
    including widths just below each panel rule's limit (of every table), after rho_0 = the engine's cutoff.
    Reference: the same quadrature with 20 nodes on panels <= 0.5 wide (converged to round-off: 16 nodes hold
    5e-16 on panels 1.52 wide), computed once per engine."""
    g = np.concatenate([[-38.0, -20, -12], np.linspace(-8, 8, 41), [10.0]])
    a, b = (x.ravel() for x in np.meshgrid(g, g))
    rc = _mehler.cutoff()
    s0 = np.arctanh(rc)
    limits = [0.999 * h for t in _mehler_far._PANELS.values() for _, h in t]
    widths = np.concatenate([np.geomspace(0.005, 17.0, 23), limits])
    rho = np.tanh(s0 + widths)
    rho = np.concatenate([rho, -rho])
    R = rho.size
    alpha = np.empty((a.size, 2 * R))
    alpha[:, 0::2], alpha[:, 1::2] = a[:, None], b[:, None]
    jf, kf = np.arange(0, 2 * R, 2), np.arange(1, 2 * R, 2)
    r0 = np.clip(rho, -rc, rc)
    S, w = np.ones_like(alpha), np.eye(a.size)                    # one output column per (a, b)

    def run(panels):
        return _mehler_far._ShiftedQuadrature(rho, r0, panels).weighted_sum(alpha, S, w, jf, kf, 32, 1)
    eng = _mehler_kernels.engine()
    if eng not in _FAR_CASE:
        _FAR_CASE[eng] = run(((20, 0.5),))
    ref = _FAR_CASE[eng]
    got = run(_mehler_far.panel_rules(rc) if monkeypatch_panels is None else monkeypatch_panels)  # the engine's
    return float(np.max(np.abs(got - ref)))


def test_far_quadrature_holds_its_bound(engine):
    """The far-pair rule of the engine's cutoff (fewest nodes keeping 5e-16 at that rho_0, measured on a finer
    grid) holds 1e-15 = TOL, the series' truncation bound; 10 nodes on panels up to 1 wide (the rule of session
    16), limits 1.3x too wide, and (at 0.8) the table calibrated at rho_0 = 0.9 fail (1.5e-15)."""
    rc = _mehler.cutoff()
    table = _mehler_far.panel_rules(rc)
    assert table == _mehler_far._PANELS[rc]
    assert _far_error() <= 1e-15
    assert _far_error(((10, 1.0),)) > 1e-15
    assert _far_error(tuple((n, 1.3 * h) for n, h in table)) > 1e-15
    if rc < 0.9:
        assert _far_error(_mehler_far._PANELS[0.9]) > 1e-15


@pytest.mark.slow
def test_panel_table_is_the_calibration():
    """Each table of ``_PANELS`` is what bench/calibrate_far_panels.py measures at its rho_0 (~1 min each): each h
    at most the widest width holding 5e-16 there, and within 10 % of it (2-3 digits, rounded down; 0.9's table
    is 3-10 % narrower than the script for n = 6, 7, 8, 10, 11)."""
    from bench import calibrate_far_panels as cal

    for rc, table in _mehler_far._PANELS.items():
        raw, conv, _ = cal.calibrate(rc)
        assert conv <= 1e-17                                              # the reference is converged
        for n, h in table:
            assert raw[n] * 0.9 <= h <= raw[n], (rc, n, h, raw[n])


def test_rho_c_is_in_the_cache_key(tmp_path, monkeypatch):
    """U moves at round-off with the cutoff (series orders, far pairs), so an entry made at another cutoff is
    never read as this one's (at 0.9 the key has no ``rho_c``). Power:
    without the key's ``rho_c`` all runs share one file."""
    from rftheory.rf.model import RandomFeatureModel

    m = RandomFeatureModel(2, 40, 3, 2.0, rng=3)
    X = np.array([[0.0, 0.0], [2.0, 1.0]])
    kw = dict(t0=1e-2, weight="1", n_gl=4, report=False, cache_dir=tmp_path)
    now = 0.8
    U = {}
    for rc in (0.9, now, 0.9):                    # the third run reads the first's entry
        monkeypatch.setattr(_mehler, "cutoff", lambda: rc)
        U[rc] = m.moments(X, **kw).U
    assert len(list(tmp_path.glob("moments-*.npz"))) == 2
    assert not np.array_equal(U[0.9], U[now])
    assert np.max(np.abs(U[0.9] - U[now])) <= 1e-14 * np.max(np.abs(U[0.9]))


def test_far_panels_pick_the_fewest_nodes():
    for table in _mehler_far._PANELS.values():
        npan, ngl = _mehler_far.far_panels(np.array([0.01, 0.3, 1.0, 1.1, 5.0]), table)
        assert list(ngl[:2]) == [3, 7] and npan[0] == npan[1] == 1
        for wd, k, n in zip([0.01, 0.3, 1.0, 1.1, 5.0], npan, ngl):
            h = dict(table)[n]
            assert k == max(1, int(np.ceil(wd / h)))
            assert k * n == min(n2 * max(1, int(np.ceil(wd / h2))) for n2, h2 in table)


def test_cutoff_per_engine_and_its_table(engine):
    """0.8 with the compiled far kernel, 0.9 with numpy (rf/_mehler.py: numpy's far path costs ~5x per node);
    a cutoff without a table takes the largest calibrated one below it, else the smallest."""
    assert _mehler.cutoff() == {"numba": 0.8, "numpy": 0.9}[engine]
    assert _mehler.MehlerPairs(np.array([0.85]), 2).far.size == (engine == "numba")
    assert _mehler_far.panel_rules(0.85) is _mehler_far._PANELS[0.8]
    assert _mehler_far.panel_rules(0.95) is _mehler_far._PANELS[0.9]
    assert _mehler_far.panel_rules(0.5) is _mehler_far._PANELS[0.8]


def _random_case(p=200, B=48, seed=5):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, 2))
    u = W / np.linalg.norm(W, axis=1)[:, None]
    jj, kk = np.triu_indices(p, 1)
    rho = np.clip((u[jj] * u[kk]).sum(1), -1, 1)
    alpha, S, w = rng.standard_normal((B, p)) * 3, rng.uniform(0.5, 2, (B, p)), rng.uniform(0.1, 1, (B, 2))
    return W, rho, alpha, S, w


def _both_engines(monkeypatch, fn):
    out = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("RFTHEORY_NUMBA", flag)
        out[flag] = fn()
    return out["0"], out["1"]


def test_engines_agree_to_round_off(monkeypatch):
    """The series' masked updates are the same operations on both engines: the same bits where no pair is far.
    The far pairs' quadrature differs only in the exponential (<= 1 ulp) and the order of the node sum: every
    node's term has the sign of rho - r_node (one sign per pair) and the weights w, s are > 0, so each entry's
    relative difference is at most ~(L + 8) eps for L <= 48 nodes per pair: 64 eps. Power: 1e-13 relative in
    the compiled kernel's weights fails it."""
    if not _fused_pass.installed():
        pytest.skip("numba is not installed")
    W, rho, alpha, S, w = _random_case()
    p = W.shape[0]
    rc = 0.8                                      # one cutoff for both engines (each has its own by default)
    near = np.clip(rho, -rc, rc)                                              # no far pair
    a, b = _both_engines(monkeypatch, lambda: _mehler.MehlerPairs(near, p, rc, perm=_mehler.unit_order(W))
                         .weighted_sum(alpha, S, w))
    assert np.array_equal(a, b)
    mp = _mehler.MehlerPairs(rho, p, rc, perm=_mehler.unit_order(W))
    assert mp.quad.n_nodes <= 48 * mp.far.size
    a, b = _both_engines(monkeypatch, lambda: mp.weighted_sum(alpha, S, w))
    far = mp.far
    assert np.max(np.abs(a[far] - b[far]) / np.abs(a[far])) <= 64 * EPS
    jf, kf = mp.jj[far], mp.kk[far]
    qa, qb = _both_engines(monkeypatch, lambda: mp.quad.weighted_sum(alpha, S, w, jf, kf, 32, 1))
    assert np.max(np.abs(qa - qb) / np.abs(qa)) <= 64 * EPS
    mp.quad.wn = mp.quad.wn * (1 + 1e-13)
    qa, qb = _both_engines(monkeypatch, lambda: mp.quad.weighted_sum(alpha, S, w, jf, kf, 32, 1))
    assert np.max(np.abs(qa - qb) / np.abs(qa)) > 64 * EPS


@pytest.mark.parametrize("parametrization", ["posterior_mean", "score"])
def test_a_weights_bits_do_not_depend_on_its_companions(engine, parametrization):
    """U, V and c0 for a loss weight are bit for bit the same assembled alone or beside other weights (each
    weight's products are its own: the figures assemble a point for the weights they ask, in any order, and
    share it). Observed before this held: the diagonal of U (one (nw, B) x (B, p) product for all weights) and,
    on the numpy engine, the far pairs ((pairs, B) x (B, nw)) differed by ~1e-16 relative in 0.2-1.3 % of the
    entries. ReLU on the Mehler path (the default); p = 60 in D = 2 has pairs on both sides of the cutoff."""
    from rftheory import RandomFeatureModel
    from rftheory.density.schedules import OU

    model = RandomFeatureModel(2, 60, 8, 6, rng=np.random.default_rng(0))
    x = np.array([[0.7, -0.3], [-0.2, 0.4]])
    kw = dict(t0=1e-3, n_gl=6, parametrization=parametrization, report=False)
    alone = model.moments(x, OU(), weight=("1/h",), **kw)[0]
    for companions in (("1", "1/h", "1/h2"), ("1/h2", "1/h")):
        beside = model.moments(x, OU(), weight=companions, **kw)[companions.index("1/h")]
        for name in ("U", "V", "c0"):
            np.testing.assert_array_equal(np.asarray(getattr(beside, name)), np.asarray(getattr(alone, name)),
                                          err_msg=f"{name} beside {companions}")
