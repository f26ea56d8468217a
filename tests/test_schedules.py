import numpy as np
import pytest

from rftheory import schedules as S

ALL = [S.OU(), S.LinearVP(), S.VE(), S.GTVFig1()]


@pytest.mark.parametrize("sch", ALL, ids=lambda s: s.name)
def test_beta_and_g2_match_derivatives(sch):
    # beta = -d log a/dt, g2 = dh/dt + 2 beta h, against central differences (step 1e-5: error ~ 1e-10 * f''')
    t = np.array([0.01, 0.1, 0.3, 0.7])
    eps = 1e-5
    dloga = (np.log(sch.a(t + eps)) - np.log(sch.a(t - eps))) / (2 * eps)
    dh = (sch.h(t + eps) - sch.h(t - eps)) / (2 * eps)
    np.testing.assert_allclose(sch.beta(t), -dloga, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sch.g2(t), dh + 2 * sch.beta(t) * sch.h(t), rtol=1e-7)


def test_ou_values_and_small_t_accuracy():
    ou = S.OU()
    assert ou.a(0.0 + 1e-300) == pytest.approx(1.0)
    # h = 1 - e^{-2t} ~ 2t at tiny t: expm1 keeps full relative precision
    assert ou.h(1e-12) == pytest.approx(2e-12, rel=1e-11)
    np.testing.assert_allclose(ou.h(np.array([1.0, 40.0])), [1 - np.exp(-2.0), 1.0])


def test_vp_h_is_one_minus_a2():
    vp = S.LinearVP()
    t = np.linspace(1e-4, 1, 7)
    np.testing.assert_allclose(vp.h(t), 1 - vp.a(t) ** 2, rtol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_invalid_times_raise(bad):
    with pytest.raises(ValueError, match="t"):
        S.OU().h(bad)


def test_domain_edges():
    with pytest.raises(ValueError):
        S.GTVFig1().a(1.0)
    with pytest.raises(ValueError):
        S.VE().h(1.5)
    with pytest.raises(ValueError):
        S.LinearVP(beta_min=-1.0)
    with pytest.raises(ValueError):
        S.get_schedule("nope")
    assert isinstance(S.get_schedule("vp"), S.LinearVP)


@pytest.mark.parametrize("grid", [S.geometric_grid, S.uniform_grid, S.edm_grid])
def test_grids_decrease_from_tmax_to_tmin(grid):
    g = grid(10.0, 1e-3, 50)
    assert g.dtype == np.float64 and g.shape == (50,)
    assert g[0] == 10.0 and g[-1] == 1e-3
    assert np.all(np.diff(g) < 0)


def test_geometric_grid_is_log_uniform():
    g = S.geometric_grid(40.0, 1e-3, 101)
    r = g[1:] / g[:-1]
    np.testing.assert_allclose(r, r[0], rtol=1e-12)


@pytest.mark.parametrize("args", [(1.0, 0.0, 10), (1.0, 2.0, 10), (1.0, 0.1, 1), (np.nan, 0.1, 5)])
def test_grid_bad_args(args):
    with pytest.raises(ValueError):
        S.geometric_grid(*args)


def test_a_h_against_closed_forms_in_mpmath():
    """a(t), h(t) of linear VP, VE and GTV Fig. 1 against their closed forms evaluated independently at 30
    digits (docs/theory.md §1): log a = -(beta_min t + beta_d t^2/2), h = 1 - a^2 (VP); a = 1,
    h = sigma_min^2 (sigma_max/sigma_min)^{2t} (VE); a = sqrt(1 - t), h = t (GTV Fig. 1). Tolerance 4 eps
    relative times the condition number of the float64 evaluation from t (a = e^x: 1 + |x|; h = 1 - e^{2x}:
    1 + 2|x| a^2/h); a 1e-12 error in any of them fails."""
    import mpmath as mp

    from rftheory.density.schedules import VE, GTVFig1, LinearVP

    ts = [1e-6, 1e-3, 0.07, 0.3, 0.5, 0.9, 0.999]
    eps = np.finfo(float).eps
    with mp.workdps(30):
        forms = {
            LinearVP(): (lambda t: mp.exp(-(mp.mpf("0.1") * t + mp.mpf("19.9") * t * t / 2)),
                         lambda t: -mp.expm1(-2 * (mp.mpf("0.1") * t + mp.mpf("19.9") * t * t / 2))),
            VE(): (lambda t: mp.mpf(1), lambda t: mp.mpf("0.01") ** 2 * (mp.mpf(50) / mp.mpf("0.01")) ** (2 * t)),
            GTVFig1(): (lambda t: mp.sqrt(1 - t), lambda t: t),
        }
        for sch, (fa, fh) in forms.items():
            a, h = sch.a_h(np.array(ts))
            for k, t in enumerate(ts):
                tt = mp.mpf(t)
                x = abs(float(mp.log(fa(tt))))
                assert abs(a[k] / float(fa(tt)) - 1) <= 4 * eps * (1 + x), (sch.name, t)
                assert abs(h[k] / float(fh(tt)) - 1) <= 4 * eps * (1 + 2 * x * a[k] ** 2 / h[k]), (sch.name, t)
