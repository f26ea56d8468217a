"""Every registered check passes as is and FAILS when its prediction is perturbed by its declared PERTURB.

Parametrised over the registry: a new module in verification/checks/ is tested here as soon as it exists.
Sweeps run serially in-process (tests/test_verification_sweep.py shows serial == dask bit for bit).
"""
import numpy as np
import pytest

import verification
from verification.protocol import Context, execute

REG = verification.registry()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("verify_cache")


def _run(mod, cache, perturb=1.0, seed=0):
    with Context("quick", seed, cache_dir=cache, scheduler="serial") as ctx:
        return execute(mod, ctx, perturb=perturb)


def _explain(res):
    bad = [r for r in res.rows if r.verdict == "fail"]
    return res.error or "; ".join(f"{r.setting}: pred {r.predicted} meas {r.measured} tol {r.tolerance}"
                                  for r in bad)


_RESULTS = {}


def _once(name, cache):
    """Each check runs once per session here; perturbations are re-judged on the same comparisons
    (CheckResult.reevaluate -- identical to rerunning with execute(..., perturb), see the P1 test below)."""
    if name not in _RESULTS:
        _RESULTS[name] = _run(REG[name], cache)
    return _RESULTS[name]


_REPORTED = [n for n in REG if getattr(REG[n], "REPORTED_ONLY", False)]
_JUDGED = [n for n in REG if n not in _REPORTED]


@pytest.mark.parametrize("name", list(REG))
def test_check_passes_unperturbed(name, cache):
    res = _once(name, cache)
    assert res.verdict == ("info" if name in _REPORTED else "pass"), _explain(res)
    assert all(r.source for r in res.rows)
    assert {"dataset", "schedule", "sizes", "seeds"} <= set(res.inputs)


@pytest.mark.parametrize("name", _REPORTED)
def test_reported_only_checks_judge_nothing(name, cache):
    """T2/T3 (first-order bounds with no stated target) are reports: every row info, verdict info, no PERTURB."""
    res = _once(name, cache)
    assert res.rows and all(r.kind == "info" and r.verdict == "info" for r in res.rows)
    assert not hasattr(REG[name], "PERTURB")


@pytest.mark.parametrize("name", _JUDGED)
def test_check_fails_when_its_prediction_is_perturbed(name, cache):
    mod = REG[name]
    f = getattr(mod, "PERTURB", None)
    assert f is not None and f != 1.0, f"{name} must declare PERTURB != 1 (the factor that must make it fail)"
    res = _once(name, cache).reevaluate(f)
    assert res.verdict == "fail", f"{name} still passes with its prediction x {f}"
    assert res.perturb == f


def test_reevaluate_equals_rerunning_with_the_hook(cache):
    f = REG["P1"].PERTURB
    direct = _run(REG["P1"], cache, perturb=f)
    again = _once("P1", cache).reevaluate(f)
    assert [r.__dict__ for r in direct.rows] == [r.__dict__ for r in again.rows]
    assert direct.verdict == again.verdict == "fail"


@pytest.mark.parametrize("name", [n for n in ("P1", "P2", "P3", "tweedie", "V1", "V2") if n in REG])
@pytest.mark.parametrize("seed", [1])
def test_check_passes_for_other_seeds(name, seed, tmp_path):
    res = _run(REG[name], tmp_path, seed=seed)
    assert res.verdict == "pass", _explain(res)


def test_p1_every_setting_has_power(cache):
    res = _once("P1", cache).reevaluate(REG["P1"].PERTURB)
    assert all(r.verdict == "fail" for r in res.rows), [(r.setting, r.verdict) for r in res.rows]


@pytest.mark.parametrize("name", ["tweedie", "V1"])
def test_proxy_checks_every_row_has_power(name, cache):
    """Every row fails under the declared 1.1, and under a 5 % error of either sign."""
    for f in (REG[name].PERTURB, 1.05, 0.95):
        res = _once(name, cache).reevaluate(f)
        assert all(r.verdict == "fail" for r in res.rows), (f, [(r.setting, r.verdict) for r in res.rows])


@pytest.mark.parametrize("name", ["tweedie", "V1"])
def test_proxy_checks_fail_on_one_poisoned_judged_replicate(name):
    """One judged replicate corrupted in memory (its draws' side offset by 100 pilot standard deviations of a replicate, i.e. 100/sqrt(32) = 18 SEs of the mean):
    the tolerance comes from the pilot, so the corrupted mean fails (the former scheme, SE from the judged
    replicates themselves, passes any single outlier: deviation/SE -> 1). A corrupted *pilot* replicate
    (offset by 1e6 pilot SDs) leaves the tolerance within one block's share, and the check still passes."""
    import numpy as np

    from verification.checks import _proxy_mc
    from verification.stats import pilot_se

    mod = REG[name]
    s = _proxy_mc.SIZES["quick"]
    with Context("quick", 0, scheduler="serial") as ctx:
        X, dens, centres, stacked = _proxy_mc.run_sweep(ctx, s)
    left, right = ("proxy_g", "score_g") if name == "tweedie" else ("proxy2_g", "cov_g")
    rows = lambda st: (mod.rows_from(st, s) if name == "tweedie"  # noqa: E731
                       else mod.rows_from(dens, centres, st, s))
    judged_ok = lambda rs: [r.evaluate(name).verdict for r in rs if "replicates" in r.setting]  # noqa: E731
    assert set(judged_ok(rows(stacked))) == {"pass"}
    for role, offset, want in (("judged", 100.0, "fail"), ("pilot", 1e6, "pass")):
        for t in s["times"]:
            bad = {k: {kk: vv.copy() for kk, vv in v.items()} for k, v in stacked.items()}
            P = stacked[(t, "pilot")]
            sd = pilot_se(P[left] - P[right], 1, _proxy_mc.PILOT_BLOCKS)
            bad[(t, role)][left][3] += offset * sd
            verdicts = [r.evaluate(name).verdict for r in rows(bad) if f"t={t:g}," in r.setting
                        and "replicates" in r.setting]
            assert verdicts == [want], (role, t, verdicts)


def test_v2_mean_rows_catch_a_50_percent_error(cache):
    """The V2 mean rows are reported only (no power at a factor <= 1.1), but their z SE band is not empty:
    judged as equalities with the same tolerances they pass as measured and fail under a 50 % error."""
    from verification.protocol import Comparison

    means = [c for c in _once("V2", cache).comparisons if c.quantity.startswith("increment mean")]
    assert means and all(c.kind == "info" for c in means)
    judged = [Comparison(c.setting, c.predicted, c.measured, c.tolerance, source=c.source) for c in means]
    assert all(c.evaluate("V2").verdict == "pass" for c in judged)
    assert all(c.evaluate("V2", 1.5).verdict == "fail" for c in judged)


def test_p2_p3_every_setting_has_power(cache):
    for name in ("P2", "P3"):
        res = _once(name, cache).reevaluate(REG[name].PERTURB)
        judged = [r for r in res.rows if "THEORY.md" not in r.quantity]
        assert judged and all(r.verdict == "fail" for r in judged), name


def test_v3_rejects_its_alternatives(cache):
    """V3's judged row (the Richardson extrapolation of P x the mean squared gap against the first-order c_1,
    analytic SE) passes on its own measurements and fails under the stated alternatives: a gap decaying like
    P^-0.5 (y(P) = P d^2 growing like P^0.5), a gap tripled at the largest P (d^2 x 9 there), and c_1 off by
    10 % either way. Run at a quarter of the quick N (the analytic SE grows to match)."""
    from verification.checks import v3

    s = dict(v3._SIZES["quick"], N=[250, 500])
    with Context("quick", 3, cache_dir=cache, scheduler="serial") as ctx:
        F, c1, q_err, y, var, _, _ = v3.measure(ctx, s)

    def verdicts(yy, f=1.0):
        return [c.evaluate("V3", f).verdict for c in v3.rows_from(s, F, c1, q_err, yy, var)]

    assert verdicts(y) == ["pass"]
    P = np.array(s["P"], dtype=float)
    assert verdicts(y[0] * (P / P[0]) ** 0.5) == ["fail"]          # d^2 ~ P^-0.5
    assert verdicts(y * np.array([1.0, 9.0])) == ["fail"]         # gap tripled at P_max
    assert verdicts(y, 1.1) == verdicts(y, 0.9) == ["fail"]


def test_v3_analytic_variance_matches_the_fits(cache):
    """The analytic variance of one fit's P d^2 (linear term, exact in P) that sets V3's tolerance agrees with
    the spread of the fits: SD ratio within 3 SE of the sample SD (SE of an SD ~ SD sqrt((kurtosis - 1)/(4N)),
    kurtosis <= 6 for these chi^2-like draws -- measured 4.2-5.5 over 5 seeds: relative SE <= 0.028 at
    N = 1600), at P = 1024. An SD off by more than ~8-9 % (a variance off by ~20 %) fails; at N = 400 it took 17 %
    (issue 19); measured ratios 0.96-1.01 over 4 other seeds."""
    from rftheory.density.schedules import LinearVP
    from rftheory.gtv.ensembles import fit_ensemble, gaussian_features
    from verification.checks import v3

    feats = gaussian_features(1, 16, 8, (-2.5, 2.5), (v3.T_MIN, v3.T_MAX))
    A0, W, c1, var_q, tr2 = v3.population(feats, LinearVP(), 16, 32)
    P, N = 1024, 1600
    ens = fit_ensemble(feats, v3.DATA, LinearVP(), P, N, v3.T_MIN, v3.T_MAX, ridge=v3.RIDGE, rng=7)
    dW = ens.W - W[None]
    pd2 = P * np.einsum("ndf,fg,ndg->n", dW, A0, dW)
    ratio = pd2.std(ddof=1) / np.sqrt(v3.var_pd2(P, var_q, tr2))
    assert abs(ratio - 1) < 3 * np.sqrt(5 / (4 * N)), ratio


def test_v4_rejects_its_alternatives(cache):
    """V4's judged row (Richardson of measured / first-order score variance between F/P = 1/256 and 1/64,
    analytic SE inflated from an independent pilot, remainder bounded by an independent pilot pair) passes as
    measured and fails with the complete form off by 10 % or 25 % either way."""
    (row,) = [c for c in _once("V4", cache).comparisons if c.kind != "info"]
    assert [row.evaluate("V4", f).verdict for f in (1.0, 1.1, 0.9, 1.25, 0.75)] == ["pass"] + ["fail"] * 4


def test_v4_tolerance_is_not_computed_from_the_judged_fits():
    """The judged u enter R only: moving them (one corrupted fit's worth or a factor 1.1) leaves the tolerance
    unchanged, so a corrupted judged fit shifts R and cannot widen its own tolerance; the pilot sets the
    inflation and the remainder bound."""
    from verification.checks import v4

    s = v4._SIZES["quick"]
    args = dict(F=36, s=s, q_err=1e-10, var_an=[0.22, 0.23], u_pilot=[1.04, 1.2], sd_pilot=[0.5, 0.7])
    (base,) = v4.rows_from(u=[1.0, 1.04], **args)
    for u in ([1.1, 1.04], [1.0, 1.2], [1.0 + 50.0 / s["N"][0], 1.04]):
        (row,) = v4.rows_from(u=u, **args)
        assert row.tolerance == base.tolerance and row.measured == (4 * u[0] - u[1]) / 3
    (wider,) = v4.rows_from(u=[1.0, 1.04], **dict(args, sd_pilot=[0.6, 0.7]))
    assert wider.tolerance > base.tolerance


@pytest.mark.slow
def test_v4_full_profile_rejects_a_10_percent_error(tmp_path):
    """At full size (Richardson between F/P = 1/1024 and 1/256, 8000 fits each; pilots of 4000 and 8000 fits at
    1/256 and 1/64) V4's judged row passes as measured and fails with the complete form off by 10 % or 25 %
    either way."""
    with Context("full", 0, cache_dir=tmp_path, scheduler="serial") as ctx:
        res = execute(REG["V4"], ctx)
    (row,) = [c for c in res.comparisons if c.kind != "info"]
    assert [row.evaluate("V4", f).verdict for f in (1.0, 1.1, 0.9, 1.25, 0.75)] == ["pass"] + ["fail"] * 4


_EXACT = {"P1", "P2", "P3", "R1", "R2", "R3", "R4"}

@pytest.mark.parametrize("name", _JUDGED)
def test_declared_perturbation_is_small_and_fails_every_judged_row(name, cache):
    """Every check declares |PERTURB - 1| <= 0.1 (<= 1e-6 for the exact checks); a row may declare its own
    factor (Comparison.power: the Monte Carlo rows of an exact check), at most 0.1 from 1. Every judged
    (non-info) row of `verify --quick` fails under its declared factor."""
    f = REG[name].PERTURB
    assert abs(f - 1) <= (1e-6 if name in _EXACT else 0.1) * (1 + 1e-9), f   # (1 + 1e-9): 1.1 - 1 in floats
    res = _once(name, cache)
    powers = [c.power for c in res.comparisons if c.power is not None]
    assert all(abs(p - 1) <= 0.1 * (1 + 1e-9) for p in powers), powers
    res = res.reevaluate_declared(f)
    passing = [r.setting for r in res.rows if r.kind != "info" and r.verdict != "fail"]
    assert not passing, passing
