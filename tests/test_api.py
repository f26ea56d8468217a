"""The numpy-grade API: rng=None as numpy reads it, single (D,) queries as scipy returns them, short reprs
of result objects, ``to_frame()`` with pandas optional, and numpydoc sections that ``help()`` shows."""
import doctest
import importlib
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import rftheory
from rftheory import EmpiricalDensity, RandomFeatureModel, datasets, ridge
from rftheory._checks import as_generator
from rftheory.density.neighbours import TruncatedDensity
from rftheory.dynamics import sampling

X13 = datasets.thirteen_points()


# ----------------------------------------------------------------------------- randomness
def test_rng_none_is_a_fresh_generator_and_ints_are_seeds():
    g = np.random.default_rng(3)
    assert as_generator(g) is g
    a, b = as_generator(None), as_generator(None)
    assert isinstance(a, np.random.Generator)
    # two fresh OS-entropy streams: 8 standard normals agreeing to the bit would be a 2^-400 event
    assert not np.array_equal(a.standard_normal(8), b.standard_normal(8))
    assert np.array_equal(as_generator(5).standard_normal(8), np.random.default_rng(5).standard_normal(8))
    ss = np.random.SeedSequence(9)
    assert np.array_equal(as_generator(ss).integers(0, 2**62, 4), np.random.default_rng(ss).integers(0, 2**62, 4))
    for bad in (True, 0.5, "0", np.random.RandomState(0)):
        with pytest.raises(TypeError, match="rng"):
            as_generator(bad)


def test_rng_none_through_the_public_api():
    p = EmpiricalDensity(X13)
    assert p.sample(0.3, 5, rng=None).shape == (5, 2)
    assert p.sample(0.3, 5).shape == (5, 2)
    m1, m2 = RandomFeatureModel(2, 16, 2, 10.0), RandomFeatureModel(2, 16, 2, 10.0)
    assert not np.array_equal(m1.W_x, m2.W_x)  # fresh weights each time
    assert np.array_equal(RandomFeatureModel(2, 16, 2, 10.0, rng=4).W_x, RandomFeatureModel(2, 16, 2, 10.0, rng=4).W_x)
    grid = rftheory.schedules.geometric_grid(2.0, 0.1, 10)
    tr = sampling.sample(p, p.sample(2.0, 3, rng=0), grid, "em")  # the SDE without an rng: fresh noise
    assert tr.final.shape == (3, 2) and np.all(np.isfinite(tr.final))


# ----------------------------------------------------------------------------- single queries
def _fields():
    model = RandomFeatureModel(2, 24, 3, 10.0, rng=1)
    W = np.random.default_rng(2).standard_normal((2, 24)) / np.sqrt(24)
    return {"empirical": EmpiricalDensity(X13), "truncated": TruncatedDensity(X13, rtol=1e-8),
            "rf": model.score_field(W)}


SINGLE = {"empirical": ["log_density", "score", "hessian", "posterior_mean", "posterior_cov", "denoiser",
                        "third_cumulant", "hessian_derivative", "weights"],
          "truncated": ["log_density", "score", "hessian", "posterior_mean", "posterior_cov", "third_cumulant",
                        "hessian_derivative", "kept"],
          "rf": ["score", "output"]}


@pytest.mark.parametrize("kind,method", [(k, m) for k, ms in SINGLE.items() for m in ms])
def test_single_query_drops_the_query_axis_and_equals_the_batch(kind, method):
    f = getattr(_fields()[kind], method)
    x = np.array([0.7, -0.4])
    one, batch = f(x, 0.3), f(x[None, :], 0.3)
    assert np.shape(one) == np.shape(batch)[1:]
    # the same computation on the same (1, D) input: bit-identical, not merely close
    assert np.array_equal(np.asarray(one), batch[0])
    if np.ndim(one) == 0:
        assert isinstance(one, (float, int)) and not isinstance(one, np.ndarray)
    # a batch of several points keeps its axis, and a (1, D) query keeps it too
    assert np.shape(f(np.tile(x, (3, 1)), 0.3))[0] == 3 and np.shape(batch)[0] == 1


def test_score_and_hessian_single_and_decomposition_of_one_point():
    p = EmpiricalDensity(X13)
    s, H = p.score_and_hessian(np.array([0.7, -0.4]), 0.3)
    assert s.shape == (2,) and H.shape == (2, 2)
    from rftheory.rf.decomposition import architectural_bias
    f = _fields()["rf"]
    one = architectural_bias(f, p, np.array([0.7, -0.4]), 0.3, 1)
    ref = architectural_bias(f, p, np.array([[0.7, -0.4]]), 0.3, 1)
    assert np.array_equal(one.normal, ref.normal) and one.normal.shape == (1, 2)


# ----------------------------------------------------------------------------- reprs and frames
def _results():
    p = EmpiricalDensity(X13)
    rng = np.random.default_rng(0)
    x = p.sample(0.3, 6, rng)
    grid = rftheory.schedules.geometric_grid(10.0, 0.05, 60)
    traj = sampling.sample(p, p.sample(10.0, 4, rng), grid, "heun", record=3)
    meas = rftheory.dynamics.measure(p, traj, 1)
    model = RandomFeatureModel(2, 40, 2, 10.0, activation="cos", rng=0)  # cos: cheap closed-form moments
    mom = model.moments(X13, t0=1e-2, weight="1/h", report_units=8)
    flow = rftheory.gradient_flow(mom.U, mom.V, np.zeros((2, 40)))
    from rftheory.gtv.variance import relative_variance_map
    from rftheory.rf.decomposition import architectural_bias
    return {"moments": p.moments(x, 0.3, cov=True), "projection": ridge.project(p, x, 0.3, 1),
            "residual": ridge.residual(p, x, 0.3, 1), "frame": ridge.frame(p, x, 0.3, 1),
            "pieces": ridge.trace(p, 0.3, 1, grid_size=12)[0], "trajectory": traj, "measurements": meas,
            "phases": rftheory.dynamics.phases(meas, 0.5), "rf_moments": mom, "flow": flow,
            "split": architectural_bias(model.score_field(flow.predict(np.inf)), p, x, 0.3, 1),
            "memorization": rftheory.dynamics.memorization(traj.final, X13, 0, n_boot=50),
            "relvar": relative_variance_map(p, [0.1, 0.5], n_grid=5)}


@pytest.fixture(scope="module")
def results():
    return _results()


def test_reprs_are_short_and_never_print_arrays(results):
    for name, r in results.items():
        text = repr(r)
        assert len(text) < 700, (name, len(text))
        assert "array(" not in text and "\n" not in text, name
        assert text.startswith(type(r).__name__ + "("), name
    mom = results["rf_moments"]
    assert "U=<40x40" in repr(mom) and "V=<2x40" in repr(mom)
    # the numbers of U are not in it: its largest entry would print with 4 significant digits at most
    assert f"{mom.U[0, 0]:.8g}" not in repr(mom)


@pytest.mark.parametrize("name,rows", [("moments", 6), ("projection", 6), ("residual", 6), ("trajectory", 12),
                                       ("measurements", 12), ("phases", 4), ("relvar", 50), ("split", 6)])
def test_to_frame_has_one_row_per_item_and_the_values(results, name, rows):
    r = results[name]
    df = r.to_frame()
    assert len(df) == rows
    if name == "projection":
        assert list(df["status"]) == list(r.status_names)
        assert np.array_equal(df[["points_0", "points_1"]].to_numpy(), r.points)
        assert np.array_equal(df["residual"].to_numpy(), r.residual)
    if name == "measurements":  # long format: row (time i, sample j) holds distance[i, j]
        k, m = r.distance.shape
        assert np.array_equal(df["distance"].to_numpy().reshape(k, m), r.distance)
        assert np.array_equal(df["time"].to_numpy().reshape(k, m)[:, 0], r.times)
    if name == "split":  # columns per coordinate, rows in the points' order
        assert np.array_equal(df[["normal_0", "normal_1"]].to_numpy(), r.normal)
        assert np.array_equal(df["tangent_norm"].to_numpy(), r.tangent_norm)
        assert np.array_equal(df["determined"].to_numpy(), r.determined)
    if name == "relvar":  # image order: values[i, row, col] sits at (x1[col], x2[row])
        v = df[(df.time == r.times[1]) & (df.x1 == r.x1[3]) & (df.x2 == r.x2[1])]["value"]
        assert float(v.iloc[0]) == r.values[1, 1, 3]


def test_vkernel_comparison_to_frame_keeps_each_test_point_in_its_row():
    from rftheory.gtv.ensembles import VKernelComparison
    x = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    vk = VKernelComparison(x=x, t=np.array([0.1, 0.2, 0.3]), measured=np.array([1.0, 2.0, 3.0]),
                           vkernel=np.array([4.0, 5.0, 6.0]), sandwich=np.array([7.0, 8.0, 9.0]), ratio=0.5,
                           ratio_sandwich=0.25, ratio_se=0.1, F_over_P=0.25)
    df = vk.to_frame()
    assert df.index.name == "test_point"
    assert np.array_equal(df[["x_0", "x_1"]].to_numpy(), x)
    assert list(df["sandwich"]) == [7.0, 8.0, 9.0] and list(df["t"]) == [0.1, 0.2, 0.3]


def test_to_frame_without_pandas_says_how_to_get_it(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"rftheory\[frames\]"):
        results["projection"].to_frame()


# ----------------------------------------------------------------------------- docstrings
FACE = ["rftheory.EmpiricalDensity", "rftheory.EmpiricalDensity.score", "rftheory.EmpiricalDensity.hessian",
        "rftheory.EmpiricalDensity.log_density", "rftheory.EmpiricalDensity.moments",
        "rftheory.EmpiricalDensity.sample", "rftheory.ridge.project", "rftheory.ridge.residual",
        "rftheory.ridge.frame", "rftheory.ridge.distance", "rftheory.ridge.trace", "rftheory.ridge.decompose",
        "rftheory.sampling.sample", "rftheory.dynamics.measure", "rftheory.dynamics.phases",
        "rftheory.dynamics.memorization", "rftheory.RandomFeatureModel", "rftheory.RandomFeatureModel.moments",
        "rftheory.RandomFeatureModel.score_field", "rftheory.rf.model.RFScoreField.score",
        "rftheory.gradient_flow", "rftheory.rf.model.GradientFlow.predict", "rftheory.rf.model.gd",
        "rftheory.rf.model.sgd", "rftheory.rf.decomposition.split_error",
        "rftheory.rf.decomposition.average_split", "rftheory.gtv.variance.proxy_covariance",
        "rftheory.gtv.variance.relative_variance", "rftheory.gtv.variance.naive_sampler",
        "rftheory.density.neighbours.TruncatedDensity"]


def _resolve(dotted):
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for p in parts[k:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("name", FACE)
def test_face_has_numpydoc_sections(name):
    doc = pydoc.getdoc(_resolve(name))
    assert "Parameters\n----------" in doc, name
    assert "Returns\n-------" in doc or name.split(".")[-1][0].isupper(), name  # classes document no return


def test_help_shows_parameters_returns_and_raises():
    """The issue's "done when": python -c "import rftheory; help(rftheory.ridge.project)"."""
    code = "import pydoc, rftheory; print(pydoc.render_doc(rftheory.ridge.project, renderer=pydoc.plaintext))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for section in ("Parameters", "Returns", "Raises"):
        assert f"{section}\n    " in out and out.count(section) >= 1, section
    assert "Projection" in out and "(m, D)" in out


@pytest.mark.parametrize("module", ["rftheory.density.empirical", "rftheory.geometry.ridge",
                                    "rftheory.dynamics.sampling", "rftheory.rf._flow"])
def test_docstring_examples_run(module):
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


# private modules split out of a public one, whose public names that module re-exports (and is checked for)
SPLIT_OUT = {"rftheory.rf._flow": "rftheory.rf.model", "rftheory.rf._moment_cache": "rftheory.rf.moments",
             "rftheory.rf._moment_types": "rftheory.rf.moments", "rftheory.rf._rf_field": "rftheory.rf.model",
             "rftheory.rf._sgd": "rftheory.rf.model", "rftheory.rf._loss_split": "rftheory.rf.decomposition",
             "rftheory.dynamics._nearest": "rftheory.dynamics.motion",
             "rftheory.dynamics._attractors": "rftheory.dynamics.bounds",
             "rftheory.dynamics._t1": "rftheory.dynamics.bounds",
             "rftheory.dynamics._error_fields": "rftheory.dynamics.sampling",
             "rftheory.geometry._ridge_refs": "rftheory.geometry.ridge",
             "rftheory.geometry._ridge_result": "rftheory.geometry.ridge",
             "rftheory.density._grids": "rftheory.density.schedules",
             "rftheory.apps._analysis": "rftheory.apps.analyze",
             "rftheory.apps._latent_config": "rftheory.apps.latent",
             "rftheory.apps._analyze_inputs": "rftheory.apps.analyze_report",
             "rftheory.gtv._fits": "rftheory.gtv.ensembles",
             "rftheory.gtv._proxy": "rftheory.gtv.variance", "rftheory.gtv._samplers": "rftheory.gtv.variance"}


def _defined_by(obj, name: str) -> bool:
    """``obj`` is defined in module ``name`` or in a private module split out of it (:data:`SPLIT_OUT`)."""
    return obj.__module__ == name or SPLIT_OUT.get(obj.__module__) == name


def _public_objects():
    """Every public function, class and method of the library's modules (``__all__``, else public names
    defined in the module), the CLI excepted."""
    import inspect
    import pkgutil
    for info in pkgutil.walk_packages(rftheory.__path__, "rftheory."):
        if info.name.split(".")[-1].startswith("_") or info.name.endswith(".cli"):
            continue
        mod = importlib.import_module(info.name)
        names = getattr(mod, "__all__", None) or [
            n for n, o in vars(mod).items() if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o))]
        for n in names:
            obj = getattr(mod, n, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or not _defined_by(obj, info.name):
                continue
            yield f"{info.name}.{n}", obj
            if inspect.isclass(obj):
                for an, ao in vars(obj).items():
                    if not an.startswith("_") and inspect.isfunction(ao):
                        yield f"{info.name}.{n}.{an}", ao


def test_every_public_function_and_class_has_numpydoc_sections():
    import inspect
    bad = []
    for name, obj in _public_objects():
        doc = inspect.getdoc(obj) or ""
        try:
            params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        except (TypeError, ValueError):
            params = []
        if inspect.isclass(obj):
            ok = not params or "Parameters\n----------" in doc or "Attributes\n----------" in doc
        else:
            ok = (not params or "Parameters\n----------" in doc) and "Returns\n-------" in doc
        if not ok:
            bad.append(name)
    assert bad == [], f"{len(bad)} public objects without numpydoc Parameters/Returns: {bad}"


def test_type_hints_resolve_and_the_face_is_annotated():
    import inspect
    import typing
    for name, obj in _public_objects():
        if inspect.isfunction(obj):
            typing.get_type_hints(obj)  # every annotation names something importable (NameError otherwise)
    from rftheory.dynamics.sampling import sample
    for f in (ridge.project, ridge.frame, ridge.residual, ridge.distance, sample, EmpiricalDensity.score,
              EmpiricalDensity.hessian, EmpiricalDensity.moments):
        hints = typing.get_type_hints(f)
        assert "x" in hints and "t" in hints or "grid" in hints, f.__qualname__
        assert "return" in hints, f.__qualname__
    assert typing.get_type_hints(sample)["rng"] == rftheory._checks.RngLike
    # the random-feature and [GTV] layers too: arrays in, rng as everywhere
    from rftheory.gtv import ensembles
    from rftheory.rf import decomposition, model
    for f, names in [(model.gradient_flow, ("U", "V", "W0", "cutoff")), (model.gd, ("U", "V", "W0", "eta")),
                     (model.sgd, ("data", "W0", "rng")), (model.RandomFeatureModel.__init__, ("D", "p", "rng")),
                     (model.RFScoreField.score, ("x", "t", "return")), (decomposition.split_error, ("x", "t", "d")),
                     (decomposition.loss_split, ("W", "data", "rng")), (ensembles.fit_ensemble, ("data", "rng")),
                     (ensembles.vkernel_comparison, ("x", "t", "rng")), (ensembles.FeatureEnsemble.score, ("x", "t"))]:
        hints = typing.get_type_hints(f)
        assert all(n in hints for n in names), (f.__qualname__, sorted(hints))
    assert typing.get_type_hints(model.sgd)["rng"] == rftheory._checks.RngLike


@pytest.mark.parametrize("private,public", sorted(SPLIT_OUT.items()))
def test_split_out_names_stay_at_their_public_paths(private, public):
    """Code split out of a public module into a private one beside it is still imported from the public path
    (the very same objects), and its public functions and classes are checked as that module's."""
    priv, pub = importlib.import_module(private), importlib.import_module(public)
    checked = {name for name, _ in _public_objects()}
    for n in priv.__all__:
        assert getattr(pub, n, None) is getattr(priv, n), f"{public}.{n} is not {private}.{n}"
        obj = getattr(priv, n)
        if callable(obj) and n in getattr(pub, "__all__", ()):
            assert f"{public}.{n}" in checked, f"{public}.{n} escapes the numpydoc check"
