"""rftheory.fields: a callable as a score field for the samplers, the ridge and analyze; saved RF models."""
import json
import sys
import textwrap

import numpy as np
import pytest

from rftheory import EmpiricalDensity, cli
from rftheory.density.schedules import geometric_grid
from rftheory.dynamics.sampling import sample
from rftheory.fields import ScoreField, as_score_field, load_rf, save_rf, torch_score_field
from rftheory.geometry import ridge
from rftheory.rf.model import RandomFeatureModel

X = np.column_stack([np.linspace(-3.0, 3.0, 31), np.zeros(31), np.zeros(31)])
T_EVAL = 0.01


def test_wrapped_exact_score_samples_like_the_density():
    dens = EmpiricalDensity(X)
    calls = []

    def score(x, t):
        calls.append(type(t))
        return dens.score(x, t)

    field = ScoreField(score, "ou")
    x0 = np.random.default_rng(0).standard_normal((20, 3))
    grid = geometric_grid(2.0, T_EVAL, 40)
    a = sample(field, x0, grid, method="em", rng=np.random.default_rng(1)).final
    b = sample(dens, x0, grid, method="em", rng=np.random.default_rng(1)).final
    np.testing.assert_array_equal(a, b)  # the same calls in the same order: bitwise equal
    assert set(calls) == {float}


def test_finite_difference_hessian_and_projection():
    dens = EmpiricalDensity(X)
    field = ScoreField(lambda x, t: dens.score(x, t), "ou")
    x = dens.sample(T_EVAL, 50, np.random.default_rng(2))
    H, Hx = field.hessian(x, T_EVAL), dens.hessian(x, T_EVAL)
    # stated error: relative eps^(2/3) ~ 4e-11 times the score's third-derivative scale; 1e-7 of the
    # largest entry (1/h) leaves a factor ~2000 for that scale factor (observed below 1e-9)
    assert np.abs(H - Hx).max() < 1e-7 * np.abs(Hx).max()
    # per-point times (the projection passes an array) are split into float calls
    tt = np.full(50, T_EVAL)
    tt[::2] = 0.02
    np.testing.assert_array_equal(field.score(x, tt)[1::2], dens.score(x[1::2], T_EVAL))
    pf = ridge.project(field, x, T_EVAL, 1, tol=1e-8, newton=False)
    pe = ridge.project(dens, x, T_EVAL, 1, tol=1e-8, newton=False)
    assert np.all(pf.status == 0) and np.all(pe.status == 0)
    # both stop at |P_perp s| <= 1e-8 with normal curvature 1/h: the points agree to ~h * 1e-8 per side
    np.testing.assert_allclose(pf.points, pe.points, rtol=0, atol=4 * dens.schedule.h(T_EVAL) * 1e-8)


def test_bad_callables():
    f = ScoreField(lambda x, t: x[:, :2], "ou")
    with pytest.raises(ValueError, match="returned shape"):
        f.score(np.zeros((4, 3)), 0.1)
    g = ScoreField(lambda x, t: np.full_like(x, np.nan), "ou")
    with pytest.raises(ValueError, match="NaN or inf"):
        g.score(np.zeros((4, 3)), 0.1)
    with pytest.raises(TypeError, match="callable"):
        ScoreField(3.0)
    # complex queries are refused by name, not silently cut to their real part (score and FD Hessian alike)
    h = ScoreField(lambda x, t: -x, "ou", D=3)
    for method in (h.score, h.hessian):
        with pytest.raises((TypeError, ValueError), match="^x"):
            method(np.zeros((2, 3)) + 1j, 0.1)


def _rf_field(D=3):
    model = RandomFeatureModel(D, 40, 2, 10.0, rng=np.random.default_rng(4))
    W = np.random.default_rng(5).standard_normal((D, 40)) / 40
    return model.score_field(W, schedule="ou")


def test_save_and_load_rf_roundtrip(tmp_path):
    field = _rf_field()
    save_rf(tmp_path / "m.npz", field)
    back = load_rf(tmp_path / "m.npz")
    x = np.random.default_rng(6).standard_normal((30, 3))
    np.testing.assert_array_equal(back.score(x, 0.3), field.score(x, 0.3))
    np.savez(tmp_path / "bad.npz", W=np.zeros(3))
    with pytest.raises(ValueError, match="missing key"):
        load_rf(tmp_path / "bad.npz")


def _run(tmp_path, *extra):
    tr = tmp_path / "train.npy"
    np.save(tr, X)
    S = EmpiricalDensity(X).sample(T_EVAL, 200, np.random.default_rng(7))
    np.save(tmp_path / "s.npy", S)
    out = tmp_path / "o"
    rc = cli.main(["analyze", "--train", str(tr), "--samples", str(tmp_path / "s.npy"), "--t", str(T_EVAL),
                   "--d", "1", "--out", str(out), "--no-progress", *extra])
    return rc, out, S


def test_cli_score_function_error_split(tmp_path, monkeypatch, capsys):
    # the model is the exact score of p_t plus 0.5 * e_y: on the x-axis ridge (P2) e_y is a normal direction,
    # so the split is exactly normal 0.5, tangent 0 (round-off)
    np.save(tmp_path / "data_for_model.npy", X)
    (tmp_path / "my_model.py").write_text(textwrap.dedent(f"""
        import numpy as np
        from rftheory import EmpiricalDensity
        _dens = EmpiricalDensity(np.load({str(tmp_path / "data_for_model.npy")!r}))

        def score(x, t):
            return _dens.score(x, t) + np.array([0.0, 0.5, 0.0])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, out, _ = _run(tmp_path, "--score", "my_model:score")
    assert rc == 0, capsys.readouterr().err
    me = json.loads((out / "report.json").read_text())["model_error"]
    assert me["normal"]["q00"] == pytest.approx(0.5, rel=1e-9) and me["normal"]["q100"] == pytest.approx(0.5, rel=1e-9)
    assert me["tangent"]["q100"] < 1e-9
    sys.modules.pop("my_model", None)
    for spec, msg in (("my_model", "must look like"), ("no_such_mod_xyz:f", "cannot import"),
                      ("my_model:nothing", "has no attribute")):
        rc, _, _ = _run(tmp_path, "--score", spec)
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and err.count("\n") == 1, err


def test_cli_saved_rf_model(tmp_path, capsys):
    field = _rf_field()
    save_rf(tmp_path / "rf.npz", field)
    rc, out, S = _run(tmp_path, "--model", str(tmp_path / "rf.npz"))
    assert rc == 0, capsys.readouterr().err
    me = json.loads((out / "report.json").read_text())["model_error"]
    e = field.score(S, T_EVAL) - EmpiricalDensity(X).score(S, T_EVAL)
    s0 = EmpiricalDensity(X).score(S, T_EVAL)
    # the split is orthogonal: |e|^2 = |e_perp|^2 + |e_par|^2, so the relative rms is that of e (round-off)
    assert me["relative_rms"] == pytest.approx(np.sqrt(np.sum(e ** 2) / np.sum(s0 ** 2)), rel=1e-9)
    rc, _, _ = _run(tmp_path, "--model", str(tmp_path / "missing.npz"))
    assert rc == 2 and "no such file" in capsys.readouterr().err


_TORCH_OU_NET = """
import numpy as np
import torch

class ExactOU(torch.nn.Module):
    \"\"\"The exact score of the OU-smoothed empirical density of X, written in torch (log-sum-exp softmax),
    plus a constant offset.\"\"\"

    def __init__(self, X, offset):
        super().__init__()
        self.register_buffer("X", torch.as_tensor(X))
        self.register_buffer("off", torch.as_tensor(offset))

    def forward(self, x, t):
        a = torch.exp(-t)[:, None]                         # OU: a_t = e^-t, h_t = 1 - e^-2t
        h = -torch.expm1(-2 * t)[:, None]
        X = self.X.to(x.dtype)
        d2 = ((x[:, None, :] - a[:, :, None] * X[None]) ** 2).sum(-1)
        w = torch.softmax(-d2 / (2 * h), dim=1)            # log-sum-exp inside softmax
        return (a * (w @ X) - x) / h + self.off.to(x.dtype)
"""


def _torch_net(torch, offset=(0.0, 0.0, 0.0)):
    ns = {}
    exec(_TORCH_OU_NET, ns)
    return ns["ExactOU"](X, np.array(offset))


def test_torch_adapter_real_module():
    # a real torch.nn.Module (PyTorch installed): the exact score written in torch equals the library's to
    # round-off -- |error| <= 64 eps max|x| / h_t (a few ulps of the largest term a x_i / h and x / h, summed
    # over 31 points); in float32 inside the module, to float32 round-off of the same terms; and its
    # finite-difference Hessian to the adapter's documented relative accuracy ~eps^(2/3) (1e-8 of max|H|,
    # as for a numpy callable above)
    torch = pytest.importorskip("torch")
    dens = EmpiricalDensity(X)
    h = -np.expm1(-2 * T_EVAL)
    x = dens.sample(T_EVAL, 50, np.random.default_rng(0))
    scale = np.abs(x).max() / h
    f = as_score_field(_torch_net(torch), "ou")
    assert f.name == "ExactOU" and f.schedule.name == "ou"
    s = f.score(x, T_EVAL)
    assert s.dtype == np.float64 and s.shape == x.shape
    np.testing.assert_allclose(s, dens.score(x, T_EVAL), rtol=0, atol=64 * 2.2e-16 * scale)
    s32 = torch_score_field(_torch_net(torch), "ou", dtype=torch.float32).score(x, T_EVAL)
    assert s32.dtype == np.float64
    err32 = np.abs(s32 - dens.score(x, T_EVAL)).max()
    assert err32 <= 64 * 2.0 ** -24 * scale and err32 > 64 * 2.2e-16 * scale   # float32 really was used
    Hd = dens.hessian(x, T_EVAL)
    np.testing.assert_allclose(f.hessian(x, T_EVAL), Hd, rtol=0, atol=1e-8 * np.abs(Hd).max())
    net = _torch_net(torch)
    seen = []
    net.register_forward_hook(lambda mod, inp, out: seen.append(torch.is_grad_enabled()))
    as_score_field(net, "ou").score(x, T_EVAL)
    assert seen == [False] and torch.is_grad_enabled()    # grad off inside the adapter only


def test_cli_torch_module_error_split(tmp_path, monkeypatch, capsys):
    # `--score module:net` with net a torch.nn.Module instance: the exact score plus 0.5 e_y, so, as for the
    # numpy function above, the split is normal 0.5 and tangent 0 on the x-axis ridge (round-off)
    pytest.importorskip("torch")
    np.save(tmp_path / "data_for_torch.npy", X)
    (tmp_path / "my_torch_model.py").write_text(_TORCH_OU_NET + textwrap.dedent(f"""
        net = ExactOU(np.load({str(tmp_path / "data_for_torch.npy")!r}), np.array([0.0, 0.5, 0.0]))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        rc, out, _ = _run(tmp_path, "--score", "my_torch_model:net")
    finally:
        sys.modules.pop("my_torch_model", None)
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    me = rep["model_error"]
    assert me["normal"]["q00"] == pytest.approx(0.5, rel=1e-9) and me["normal"]["q100"] == pytest.approx(0.5, rel=1e-9)
    assert me["tangent"]["q100"] < 1e-9


def test_as_score_field_passes_and_wraps():
    dens = EmpiricalDensity(X)
    f = ScoreField(dens.score, "ou")
    assert as_score_field(f) is f
    g = as_score_field(dens.score, "ve", name="mine")
    assert isinstance(g, ScoreField) and g.name == "mine" and g.schedule.name == "ve"
    with pytest.raises(TypeError, match="obj must be"):
        as_score_field(np.zeros(3))


class _FakeTensor:
    """The part of torch.Tensor that torch_score_field touches (detach, cpu, double, numpy), recording the dtype
    and device it was made with."""

    def __init__(self, arr, dtype, device):
        self.arr, self.dtype, self.device = np.asarray(arr), dtype, device

    def detach(self):
        return self

    def cpu(self):
        return _FakeTensor(self.arr, self.dtype, "cpu")

    def double(self):
        return _FakeTensor(self.arr.astype(np.float64), "float64", self.device)

    def numpy(self):
        assert self.device == "cpu", "numpy() of a tensor that is not on the cpu"
        return self.arr


def _fake_torch(log):
    """A duck-typed stand-in for the torch module, for machines without PyTorch (the real module is tested above
    where torch is installed). It implements exactly the calls torch_score_field makes, with torch's semantics,
    and logs whether grad was disabled around each call and on which device the tensors were made."""
    import types

    fake = types.ModuleType("torch")
    fake.float64, fake.float32 = "float64", "float32"
    state = {"grad": True}

    class _NoGrad:
        def __enter__(self):
            state["grad"] = False

        def __exit__(self, *exc):
            state["grad"] = True

    def as_tensor(x, dtype=None, device=None):
        np_dt = {"float64": np.float64, "float32": np.float32}[dtype]
        return _FakeTensor(np.array(x, dtype=np_dt), dtype, device)

    def full(shape, value, dtype=None, device=None):
        return as_tensor(np.full(shape, value), dtype, device)

    fake.no_grad, fake.as_tensor, fake.full, fake.state, fake.Tensor = _NoGrad, as_tensor, full, state, _FakeTensor
    return fake


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_torch_adapter_contract_with_a_stand_in(monkeypatch, dtype):
    # the adapter's contract: x as a (m, D) tensor and t as an (m,) tensor of one repeated time, both of the
    # asked dtype on the asked device, grad off, output float64 numpy of shape (m, D); one call per time in a
    # batch of several times; the result a ScoreField that the samplers, the ridge and analyze take
    log = []
    fake = _fake_torch(log)
    dens = EmpiricalDensity(X)

    class Net:  # a "module": callable on tensors
        def __call__(self, x, t):
            log.append((x.arr.shape, x.dtype, x.device, t.arr.shape, t.dtype, np.unique(t.arr).size,
                        fake.state["grad"]))
            out = dens.score(x.arr.astype(np.float64), float(t.arr[0]))
            return _FakeTensor(out.astype(x.arr.dtype), x.dtype, x.device)

    with monkeypatch.context() as mp:  # the stand-in is "torch" only while the adapter imports it
        mp.setitem(sys.modules, "torch", fake)
        f = torch_score_field(Net(), "ou", device="meta-gpu", dtype=None if dtype is None else fake.float32)
    assert f.name == "Net" and f.schedule.name == "ou"
    x = dens.sample(0.1, 10, np.random.default_rng(0))
    s = f.score(x, 0.1)
    assert s.dtype == np.float64 and s.shape == (10, 3)
    want_dt = "float64" if dtype is None else "float32"
    assert log[-1] == ((10, 3), want_dt, "meta-gpu", (10,), want_dt, 1, False)
    if dtype is None:
        np.testing.assert_array_equal(s, dens.score(x, 0.1))  # float64 end to end: bitwise
    else:  # float32 inside the model: float32 round-off of |s|
        np.testing.assert_allclose(s, dens.score(x, 0.1), rtol=0, atol=4 * 2.0 ** -24 * np.abs(s).max())
    # several times in one batch: one call per time, each with a constant t
    log.clear()
    tt = np.repeat([0.1, 0.2], 5)
    s2 = f.score(x, tt)
    assert len(log) == 2 and all(entry[5] == 1 for entry in log)
    ref = np.vstack([dens.score(x[:5], 0.1), dens.score(x[5:], 0.2)])
    np.testing.assert_allclose(s2, ref, rtol=0, atol=0 if dtype is None else 4 * 2.0 ** -24 * np.abs(ref).max())
    if dtype is None:
        # the finite-difference Hessian (module doc: relative error ~ eps^(2/3) on this scale) and a model
        # error of zero through analyze's normal/tangent split
        H = f.hessian(x, T_EVAL)
        Hd = dens.hessian(x, T_EVAL)
        np.testing.assert_allclose(H, Hd, rtol=0, atol=1e-8 * np.abs(Hd).max())
        from rftheory.apps.analyze import analyze_samples

        S = dens.sample(T_EVAL, 40, np.random.default_rng(3))
        res = analyze_samples(X, S, T_EVAL, 1, model=f)
        np.testing.assert_array_equal(res.model_error[:, :2], 0.0)  # the same score, bit for bit


def test_torch_adapter_without_torch_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ImportError, match="torch_score_field needs PyTorch"):
        torch_score_field(lambda x, t: x)


def test_cli_trajectories(tmp_path, capsys):
    # exact reverse SDE on the line, 12 recorded times: every path ends at an exact draw of p_t, so each path
    # that ends inside the calibrated tube has reached it (the last time is recorded): reached >= inside
    dens = EmpiricalDensity(X)
    rng = np.random.default_rng(9)
    x0 = np.sqrt(float(dens.schedule.h(3.0))) * rng.standard_normal((40, 3))
    tr = sample(dens, x0, geometric_grid(3.0, T_EVAL, 80), method="em", rng=rng, record=12)
    np.savez(tmp_path / "traj.npz", states=tr.states, times=tr.times)
    rc, out, _ = _run(tmp_path, "--trajectories", str(tmp_path / "traj.npz"))
    assert rc == 0, capsys.readouterr().err
    t = json.loads((out / "report.json").read_text())["trajectories"]
    h = float(dens.schedule.h(T_EVAL))
    inside = np.mean(np.linalg.norm(tr.final[:, 1:], axis=1) <= t["r_tube"])  # P2: distance = |normal part|
    assert t["k_times"] == len(tr.times) and t["m"] == 40
    assert t["r_tube"] == pytest.approx(np.sqrt(h) * np.sqrt(-2 * np.log(0.1)), rel=1e-12)  # chi_2 quantile
    assert t["reached"] >= inside and 0 <= t["aligned"] <= t["reached"]
    np.savez(tmp_path / "bad.npz", states=tr.states)
    rc, _, _ = _run(tmp_path, "--trajectories", str(tmp_path / "bad.npz"))
    assert rc == 2 and "needs 'states'" in capsys.readouterr().err
