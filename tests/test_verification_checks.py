"""Every registered check passes as is and FAILS when its prediction is perturbed by its declared PERTURB.

Parametrised over the registry: a new module in verification/checks/ is tested here as soon as it exists.
Sweeps run serially in-process (tests/test_verification_sweep.py shows serial == dask bit for bit).
"""
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


@pytest.mark.parametrize("name", list(REG))
def test_check_passes_unperturbed(name, cache):
    res = _once(name, cache)
    assert res.verdict == "pass", _explain(res)
    assert all(r.source for r in res.rows)
    assert {"dataset", "schedule", "sizes", "seeds"} <= set(res.inputs)


@pytest.mark.parametrize("name", list(REG))
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


def test_tweedie_rate_rows_detect_a_wrong_rate(cache):
    """The 1/sqrt(N) rows alone: N^-0.5 passes, N^-0.75 (prediction x 1.5) or N^-0.25 (x 0.5) fails."""
    rate = lambda res: [r for r in res.rows if r.quantity.startswith("Monte Carlo rate")]  # noqa: E731
    ok = rate(_once("tweedie", cache))
    assert ok and all(r.verdict == "pass" for r in ok)
    for f in (1.5, 0.5):
        assert all(r.verdict == "fail" for r in rate(_once("tweedie", cache).reevaluate(f)))
    assert all(abs(r.measured + 0.5) < 0.1 for r in ok)



def test_v2_mean_rows_catch_a_30_percent_error(cache):
    """The V2 mean rows are noisier than the covariance rows but not powerless."""
    res = _once("V2", cache).reevaluate(1.5)
    assert all(r.verdict == "fail" for r in res.rows if r.quantity.startswith("increment mean"))


def test_p2_p3_every_setting_has_power(cache):
    for name in ("P2", "P3"):
        res = _once(name, cache).reevaluate(REG[name].PERTURB)
        judged = [r for r in res.rows if "THEORY.md" not in r.quantity]
        assert judged and all(r.verdict == "fail" for r in judged), name
