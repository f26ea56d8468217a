"""Latent digits: the stratified U/V assembly against the exact moments, the pipeline's internal consistency,
memorisation of the exact score against the RF model, and the registered figure in --quick form."""
from dataclasses import replace

import numpy as np
import pytest

from rftheory import EmpiricalDensity, ridge
from rftheory.apps.latent import QUICK, assemble_stratified, run_latent
from rftheory.rf.model import RandomFeatureModel
from rftheory.density.schedules import OU

TINY = replace(QUICK, p=96, K=4, n_steps=60, n_samples=120, m_z=2, n_record=5, t_extra=(0.1,))


def test_stratified_assembly_matches_exact_moments():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, 3))
    model = RandomFeatureModel(3, 8, 2, 5.0, "relu", True, np.random.default_rng(1))
    exact = model.moments(Z, OU(), t0=1e-2, weight="1/h", n_gl=6, report=False)
    U, V, info = assemble_stratified(model, Z, OU(), 1e-2, 5.0, "1/h", 6, 400, np.random.default_rng(2))
    # V uses the same closed-form means on the same time rule: equal up to summation round-off
    assert np.allclose(V, exact.V, rtol=1e-10, atol=1e-12 * np.abs(exact.V).max())
    # U is Monte Carlo: its error against the exact U is of the size of the split-half standard error
    # (ratio ~ 1; 36 distinct entries, so a ratio above 3 would be a > 4-sigma event for the estimate)
    err = np.linalg.norm(U - exact.U) / np.linalg.norm(exact.U)
    assert err < 3 * info["U_mc_rel_se"]
    assert info["U_mc_rel_se"] < 0.05
    assert np.all(np.linalg.eigvalsh(U) > -1e-12 * np.abs(U).max())  # PSD
    with pytest.raises(ValueError, match="m_z"):
        assemble_stratified(model, Z, OU(), 1e-2, 5.0, "1/h", 6, 3, 0)


@pytest.fixture(scope="module")
def runs():
    return run_latent(TINY, rng=0), run_latent(replace(TINY, model="exact"), rng=0)


def test_pipeline_consistency(runs):
    rf, _ = runs
    m, K = rf.samples.shape
    assert (m, K) == (TINY.n_samples, 16)
    assert 1 <= rf.d_star < K and rf.d_star == int(np.argmax(rf.gap_median)) + 1
    assert rf.residual_norm.max() == 1.0
    assert rf.on_ridge_fraction == np.mean(rf.residual_norm < 0.2)
    # the d sweep (one eigendecomposition, tail sums of score coordinates) agrees with ridge.residual at d*
    i = rf.d_star - 1
    dens = EmpiricalDensity(rf.latent)
    r = ridge.residual(dens, rf.samples, TINY.t_min, rf.d_star).residual
    assert np.allclose(r, rf.residual, rtol=1e-12)
    assert rf.sweep["on_ridge"][i] == pytest.approx(rf.on_ridge_fraction, abs=1e-12)
    assert rf.sweep["residual_norm_mean"][i] == pytest.approx(rf.residual_norm.mean(), rel=1e-8)
    assert len(rf.evolution["norm_median"]) == len(rf.times) == TINY.n_record
    assert rf.times[0] == TINY.T and rf.times[-1] == TINY.t_min
    assert np.allclose(rf.states[-1], rf.samples)
    for thr, (cnt, mean_n, _) in rf.gap_means.items():
        assert cnt == np.sum(rf.eigengap > thr)
    assert rf.memo.ci_low <= rf.memo.fraction <= rf.memo.ci_high
    assert 0.1 in rf.extra and rf.extra[0.1]["gap_median"].shape == (K - 1,)
    dec = rf.pca.decode(rf.samples)
    assert dec.shape == (m, 64) and np.all(np.isfinite(dec))
    s = rf.summary()
    assert s["d_star"] == rf.d_star and s["model"]["p"] == TINY.p


def test_exact_score_memorises_more_than_rf(runs):
    rf, ex = runs
    # the exact empirical score reproduces p_{t_min}: samples sit within ~sqrt(h K) = 0.18 of a training point,
    # far below the typical spacing, so d_1/d_2 < 1/3 for most; the bootstrap intervals must separate
    assert ex.memo.fraction > 0.5
    assert ex.memo.ci_low > rf.memo.ci_high


def test_latent_figure_quick(tmp_path):
    from paper_figures import registry

    figs = registry.figures()
    assert "latent" in figs
    mod = figs["latent"]
    assert mod.TITLE and len(mod.CAPTION) > 200
    res = mod.render(tmp_path, quick=True, seed=0, progress=False)
    assert sorted(p.suffix for p in res.files) == [".pdf", ".png"]
    for p in res.files:
        assert p.exists() and p.stat().st_size > 20000
    s = res.data["summary"]
    assert 0 <= s["on_ridge_fraction"] <= 1 and s["timings"]["total"] < 180


def test_exact_u_method_uses_the_closed_form_moments():
    """u_method="exact": the trained field is the gradient flow of RandomFeatureModel.moments on the same
    time rule (bit for bit: same model draw, same assembly), and a bad u_method is refused."""
    from rftheory.apps.latent import load_latent_data, train_rf
    from rftheory.rf.model import gradient_flow

    cfg = replace(TINY, u_method="exact", p=24, K=2)
    _, _, Z = load_latent_data(cfg)
    Z = Z[:20]
    field, info = train_rf(Z, cfg, np.random.default_rng(7))
    model = RandomFeatureModel(Z.shape[1], cfg.p, cfg.K, cfg.T, cfg.activation, True, np.random.default_rng(7))
    mom = model.moments(Z, OU(), t0=cfg.t0, weight=cfg.weight, n_gl=cfg.n_gl, report=False)
    W = gradient_flow(mom.U, mom.V, np.zeros((Z.shape[1], cfg.p))).predict(cfg.tau)
    assert info["u_method"] == "exact" and info["time_nodes"] == mom.n_time_nodes
    x = Z[:3] * 0.9
    np.testing.assert_array_equal(field.score(x, 0.1), model.score_field(W).score(x, 0.1))
    with pytest.raises(ValueError, match="u_method"):
        train_rf(Z, replace(cfg, u_method="magic"), np.random.default_rng(7))
