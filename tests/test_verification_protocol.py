"""verification protocol: comparisons and verdicts, executing checks, discovery, reports, stats, atomic IO."""
import json
import math
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import verification
from verification import _io
from verification.protocol import Comparison, Context, execute
from verification.registry import discover, sort_key
from verification.report import to_markdown, write_reports
from verification.runner import parse_perturb
from verification.stats import critical_value, loglog_slope, seed_mean

FIN = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
POS = st.floats(0, 1e3, allow_nan=False, allow_infinity=False, width=64)


# ----------------------------------------------------------------------------- Comparison
@settings(max_examples=60, deadline=None)
@given(data=st.data(), shape=hnp.array_shapes(max_dims=2, max_side=5))
def test_equal_verdict_is_elementwise_and_margin_sign_agrees(data, shape):
    p = data.draw(hnp.arrays(np.float64, shape, elements=FIN))
    m = data.draw(hnp.arrays(np.float64, shape, elements=FIN))
    tol = data.draw(hnp.arrays(np.float64, shape, elements=POS))
    row = Comparison("s", p, m, tol, source="test").evaluate("X")
    ok = np.abs(p - m) <= tol
    assert row.verdict == ("pass" if ok.all() else "fail")
    assert row.n == p.size and row.n_failed == int((~ok).sum())
    assert (row.margin >= 0) == ok.all()
    # the reported element is the one with the smallest margin relative to its tolerance
    with np.errstate(over="ignore"):  # zero tolerances: +-inf, as in the protocol
        rel = (tol - np.abs(p - m)) / np.where(tol > 0, tol, 1e-300)
    w = np.unravel_index(int(np.argmin(rel)), rel.shape)
    assert row.deviation == abs(p[w] - m[w]) and row.tolerance == tol[w]


@settings(max_examples=60, deadline=None)
@given(p=FIN, m=FIN, tol=POS, f=st.floats(0.5, 2.0))
def test_perturbation_multiplies_the_prediction(p, m, tol, f):
    c = Comparison("s", p, m, tol, source="test")
    assert c.evaluate("X", perturb=f).verdict == Comparison("s", p * f, m, tol, source="t").evaluate().verdict
    assert c.evaluate("X", perturb=1.0) == c.evaluate("X")


@settings(max_examples=60, deadline=None)
@given(p=FIN, m=FIN, tol=POS)
def test_bound_kinds(p, m, tol):
    up = Comparison("s", p, m, tol, source="t", kind="upper").evaluate()
    lo = Comparison("s", p, m, tol, source="t", kind="lower").evaluate()
    # deviation = measured - predicted (upper) or predicted - measured (lower), in float64
    assert (up.verdict == "pass") == (m - p <= tol)
    assert (lo.verdict == "pass") == (p - m <= tol)


def test_norm_axis_and_nan():
    p = np.array([[3.0, 4.0], [0.0, 0.0]])
    m = np.zeros((2, 2))
    row = Comparison("s", p, m, [5.0, 0.0], source="t", norm_axis=1).evaluate()
    assert row.verdict == "pass" and row.n == 2 and row.deviation == 5.0
    assert Comparison("s", p, m, [4.9, 0.0], source="t", norm_axis=1).evaluate().verdict == "fail"
    nan = Comparison("s", 1.0, np.nan, 1e9, source="t").evaluate()
    assert nan.verdict == "fail" and nan.measured == "nan"
    info = Comparison("s", 1.0, 2.0, 0.0, source="t", kind="info").evaluate(perturb=3.0)
    assert info.verdict == "info" and info.predicted == 1.0


@pytest.mark.parametrize("kw,err,match", [
    (dict(source=""), ValueError, "source"),
    (dict(source="  "), ValueError, "source"),
    (dict(kind="roughly"), ValueError, "kind"),
    (dict(tolerance=-1.0), ValueError, "tolerance"),
    (dict(tolerance=np.nan), ValueError, "tolerance"),
    (dict(kind="upper", norm_axis=0), ValueError, "norm_axis"),
    (dict(setting=""), TypeError, "setting"),
])
def test_comparison_rejects_bad_input(kw, err, match):
    base = dict(setting="s", predicted=1.0, measured=1.0, tolerance=0.1, source="t")
    base.update(kw)
    with pytest.raises(err, match=match):
        Comparison(**base)


# ----------------------------------------------------------------------------- execute
def _fake(run, inputs=None, name="FAKE"):
    mod = types.ModuleType(f"fake_{name}")
    mod.NAME, mod.TITLE = name, "fake"
    mod.inputs = inputs or (lambda profile: {"dataset": "d", "schedule": "ou", "sizes": {}, "seeds": 1})
    mod.run = run
    return mod


def test_execute_verdicts_errors_and_perturb():
    ctx = Context("quick", 0, scheduler="serial")
    good = _fake(lambda ctx, inp: [Comparison("s", 1.0, 1.0 + 1e-9, 1e-6, source="t"), "a note"])
    r = execute(good, ctx)
    assert r.verdict == "pass" and r.notes == ["a note"] and r.inputs["schedule"] == "ou"
    assert execute(good, ctx, perturb=1.01).verdict == "fail"

    def boom(ctx, inp):
        raise ValueError("no ridge")
    r = execute(_fake(boom), ctx)
    assert r.verdict == "error" and "no ridge" in r.error and not r.passed
    # inputs must declare dataset, schedule, sizes, seeds
    r = execute(_fake(good.run, inputs=lambda p: {"dataset": "d"}), ctx)
    assert r.verdict == "error" and "schedule" in r.error
    # a check with only info rows (or none) cannot fail, so it is an error
    info_only = _fake(lambda c, i: [Comparison("s", 1.0, 1.0, 0.0, source="t", kind="info")])
    assert execute(info_only, ctx).verdict == "error"
    assert execute(_fake(lambda c, i: []), ctx).verdict == "error"
    assert execute(_fake(lambda c, i: [3.0]), ctx).verdict == "error"


def test_reported_only_check_has_verdict_info_and_no_judged_rows():
    ctx = Context("quick", 0, scheduler="serial")
    info = Comparison("s", 1.0, 2.0, 0.0, source="t", kind="info")
    mod = _fake(lambda c, i: [info])
    mod.REPORTED_ONLY = True
    r = execute(mod, ctx)
    assert r.verdict == "info" and r.passed and r.reevaluate(1.5).verdict == "info"
    # a reported-only check that judges something (or returns nothing) is broken
    mod.run = lambda c, i: [info, Comparison("s", 1.0, 1.0, 0.0, source="t")]
    assert execute(mod, ctx).verdict == "error"
    mod.run = lambda c, i: []
    assert execute(mod, ctx).verdict == "error"
    md = to_markdown([r], {"profile": "quick", "seed": 0})
    assert "reported only, not judged" in md and "**pass**" not in md


def test_row_declared_power_is_used_by_the_power_audit_only():
    """A row's own declared perturbation (power) applies in reevaluate_declared; --perturb stays uniform."""
    ctx = Context("quick", 0, scheduler="serial")
    exact = Comparison("exact", 1.0, 1.0, 1e-9, source="round-off")
    mc = Comparison("mc", 1.0, 1.0, 0.05, source="z SE", power=1.1)
    r = execute(_fake(lambda c, i: [exact, mc]), ctx)
    assert r.verdict == "pass"
    uniform = r.reevaluate(1 + 1e-6)
    assert [w.verdict for w in uniform.rows] == ["fail", "pass"]
    declared = r.reevaluate_declared(1 + 1e-6)
    assert [w.verdict for w in declared.rows] == ["fail", "fail"]
    assert [w.perturb for w in declared.rows] == [1 + 1e-6, 1.1]
    for bad in (1.0, 0.0, float("nan"), "1.1"):
        with pytest.raises(ValueError, match="power"):
            Comparison("s", 1.0, 1.0, 0.1, source="t", power=bad)
    with pytest.raises(ValueError, match="power"):
        Comparison("s", 1.0, 1.0, 0.1, source="t", kind="info", power=1.1)


def test_context_rng_is_reproducible_and_keyed():
    a, b = Context(seed=3), Context(seed=3)
    np.testing.assert_array_equal(a.rng("P1", 0.1).random(4), b.rng("P1", 0.1).random(4))
    assert not np.array_equal(a.rng("P1", 0.1).random(4), a.rng("P1", 0.2).random(4))
    assert not np.array_equal(a.rng("x").random(4), Context(seed=4).rng("x").random(4))
    with pytest.raises(ValueError, match="profile"):
        Context("medium")
    with pytest.raises(TypeError, match="seed"):
        Context(seed=-1)


# ----------------------------------------------------------------------------- discovery
def test_registry_finds_checks_in_report_order():
    reg = verification.registry()
    assert {"P1", "V1", "tweedie"} <= set(reg)
    for mod in reg.values():
        if not getattr(mod, "REPORTED_ONLY", False):
            assert hasattr(mod, "PERTURB"), f"{mod.__name__} must declare PERTURB (see verification docstring)"
    names = ["tweedie", "V2", "P10", "T1", "P2", "R3"]
    assert sorted(names, key=sort_key) == ["P2", "P10", "T1", "R3", "V2", "tweedie"]


def test_broken_check_module_is_reported_not_dropped(tmp_path, monkeypatch):
    import verification.checks as pkg

    (tmp_path / "zz_broken.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.setattr(pkg, "__path__", list(pkg.__path__) + [str(tmp_path)])
    checks, broken = discover()
    sys.modules.pop("verification.checks.zz_broken", None)
    assert "zz_broken" in broken and "not_a_module_anywhere" in broken["zz_broken"]
    assert "P1" in checks


# ----------------------------------------------------------------------------- reports and IO
def test_reports_written_atomically_and_complete(tmp_path):
    ctx = Context("quick", 0, scheduler="serial")
    ok = execute(_fake(lambda c, i: [Comparison("t=0.1 | n=3", 1.0, np.inf, 0.5, source="round-off")],
                       name="A"), ctx)
    bad = execute(_fake(lambda c, i: (_ for _ in ()).throw(RuntimeError("x")), name="B"), ctx)
    pj, pm = write_reports(tmp_path / "out", [ok, bad], {"profile": "quick", "seed": 0})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "report.md"]
    rep = json.loads(pj.read_text())
    assert rep["passed"] is False and rep["checks"][0]["rows"][0]["measured"] == "inf"
    md = pm.read_text()
    assert "| result | setting | predicted | measured | tolerance | margin | verdict |" in md
    assert "t=0.1 \\| n=3" in md and "**error**" in md and "round-off" in md


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    f = tmp_path / "r.json"
    _io.atomic_write_text(f, "old")

    def fail(*a, **k):
        raise OSError("disk full")
    import rftheory._io as shared_io  # the atomic rename every writer goes through

    monkeypatch.setattr(shared_io.os, "replace", fail)
    with pytest.raises(OSError):
        _io.atomic_write_text(f, "new")
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    with pytest.raises(TypeError, match="data"):
        _io.atomic_write_bytes(f, "not bytes")


def test_markdown_marks_perturbed_checks():
    ctx = Context("quick", 0, scheduler="serial")
    r = execute(_fake(lambda c, i: [Comparison("s", 1.0, 1.0, 0.1, source="t")]), ctx, perturb=2.0)
    assert "(prediction × 2)" in to_markdown([r], {"profile": "quick", "seed": 0})


def test_parse_perturb():
    assert parse_perturb("P1=1.01, V1=0.9") == {"P1": 1.01, "V1": 0.9}
    assert parse_perturb(None) == {} and parse_perturb({"*": 2}) == {"*": 2.0}
    with pytest.raises(ValueError, match="NAME=FACTOR"):
        parse_perturb("P1")
    with pytest.raises(ValueError, match="number"):
        parse_perturb("P1=big")


# ----------------------------------------------------------------------------- stats
def test_critical_value():
    assert math.isclose(critical_value(0.05, 1), 1.959963984540054, rel_tol=1e-12)
    assert critical_value(1e-3, 10) > critical_value(1e-3, 1)
    assert critical_value(1e-3, 1, dof=5) > critical_value(1e-3, 1)
    with pytest.raises(ValueError, match="alpha"):
        critical_value(0.0)
    with pytest.raises(ValueError, match="comparisons"):
        critical_value(0.1, 0)


@settings(max_examples=40, deadline=None)
@given(slope=st.floats(-3, 3), c=st.floats(0.1, 10), k=st.integers(2, 6))
def test_loglog_slope_recovers_power_laws(slope, c, k):
    x = np.geomspace(10, 1e4, k)
    est, se = loglog_slope(x, c * x**slope, np.full(k, 0.1))
    assert math.isclose(est, slope, rel_tol=1e-9, abs_tol=1e-9) and se > 0


def test_seed_mean_and_slope_errors():
    sm = seed_mean(np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_array_equal(sm.mean, [2.0, 2.0])
    np.testing.assert_allclose(sm.se, [1.0, 0.0])
    with pytest.raises(ValueError, match="2 repetitions"):
        seed_mean(np.ones((1, 3)))
    with pytest.raises(ValueError, match="positive"):
        loglog_slope([1, 2], [1, -1], [1, 1])
    with pytest.raises(ValueError, match="distinct"):
        loglog_slope([2, 2], [1, 1], [1, 1])


def test_median_of_means_and_pilot_se_resist_one_corrupted_replicate():
    """robust_variance is median-unbiased for Gaussian samples (median over 2000 sets of 48 within 3 % of the
    truth: its relative SD is 0.25, so the median's SE is ~0.25 * 1.25 / sqrt(2000) = 0.7 %, 3 % is 4 SEs);
    one sample corrupted by 1e6 moves median_of_means by at most a block's spread and robust_variance by
    less than a factor 2 (one of 8 blocks), while the plain mean and sample variance explode."""
    from verification.stats import median_of_means, pilot_se, robust_variance

    rng = np.random.default_rng(0)
    v = [float(robust_variance(2.0 * rng.standard_normal(48), 8)) for _ in range(2000)]
    assert abs(np.median(v) / 4.0 - 1) < 0.03
    x = rng.standard_normal(48)
    clean = float(robust_variance(x, 8))
    x[5] += 1e6
    assert abs(float(median_of_means(x, 8))) < 1.0
    assert float(robust_variance(x, 8)) < 2 * clean
    assert x.var(ddof=1) > 1e9
    se = pilot_se(rng.standard_normal((48, 3)), 32)
    assert se.shape == (3,) and np.all(np.abs(se * np.sqrt(32) - 1) < 0.6)
    with pytest.raises(ValueError, match="blocks"):
        median_of_means(x, 0)
