"""The latent MNIST experiment: exact-moment training, the stated ridge dimension, the measurements at d* and
at the paper's d against independent recomputation, the calibrated tube of the exact score, memorisation of
the exact score against the RF model, and the registered figure in --quick form (slow)."""
import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import norm

from rftheory import EmpiricalDensity, ridge
from rftheory.apps._latent_measure import bimodality
from rftheory.apps.latent import PAPER, QUICK, load_latent_data, run_latent, train_rf
from rftheory.density.schedules import OU
from rftheory.geometry.dimension import ridge_dimension
from rftheory.rf.model import RandomFeatureModel, gradient_flow

TINY = replace(QUICK, n_train=60, p=16, K=2, n_gl=2, n_steps=60, n_samples=150, n_record=4, n_tube=150,
               proj_max_iter=40, ae_hidden=16, ae_max_iter=20, dim_times=(1.0,))


@pytest.fixture(scope="module")
def tiny_data():
    return load_latent_data(TINY, 0)


@pytest.fixture(scope="module")
def runs(tiny_data):
    data = tiny_data
    # the exact-score run takes 1000 EM steps: the calibration below needs a small discretisation bias (with
    # 60 steps, a step ratio of 17% at the end, the tube fraction was 0.76; 150 steps 0.88; 1000 steps 0.907)
    return (run_latent(TINY, rng=0, data=data),
            run_latent(replace(TINY, model="exact", n_steps=1000), rng=0, data=data))


def test_train_rf_uses_the_exact_moments_and_the_gradient_flow():
    """The trained field is the gradient flow of RandomFeatureModel.moments (exact; no Monte Carlo U) on the
    same time rule, bit for bit: same model draw, same assembly."""
    cfg = replace(TINY, p=12)
    _, _, Z, _ = load_latent_data(cfg, 0)
    Z = Z[:15]
    field, info = train_rf(Z, cfg, np.random.default_rng(7))
    model = RandomFeatureModel(Z.shape[1], cfg.p, cfg.K, cfg.T, cfg.activation, True, np.random.default_rng(7))
    mom = model.moments(Z, OU(), t0=cfg.t0, weight=cfg.weight, n_gl=cfg.n_gl, report=False)
    W = gradient_flow(mom.U, mom.V, np.zeros((Z.shape[1], cfg.p))).predict(cfg.tau)
    assert info["time_nodes"] == mom.n_time_nodes and info["p"] == 12
    x = Z[:3] * 0.9
    np.testing.assert_array_equal(field.score(x, 0.1), model.score_field(W).score(x, 0.1))


def test_ridge_dimension_and_measurements_are_consistent(runs):
    rf, _ = runs
    m, K = rf.samples.shape
    assert (m, K) == (TINY.n_samples, 32) and rf.latent.shape == (60, 32)
    dens = EmpiricalDensity(rf.latent)
    tm = TINY.t_min
    # d* is the stated criterion's choice, and the JSON carries the spectrum it came from
    ch = ridge_dimension(dens, rf.samples, tm)
    assert rf.d_star == ch.d
    s = json.loads(json.dumps(rf.summary()))
    assert s["ridge_dimension"]["median_spectrum"] == pytest.approx(ch.median_spectrum.tolist(), rel=1e-12)
    assert s["ridge_dimension"]["histogram"] == ch.histogram.tolist()
    assert s["paper"] == PAPER and s["at_d_paper"]["d"] == 25
    # the residual at d* and at d = 25, from tail sums of one eigendecomposition, equals ridge.residual
    # (independent frame per d); same eigenvectors, different summation order: round-off
    for name, d in (("d*", rf.d_star), ("paper", 25)):
        at = rf.at[name]
        ref = ridge.residual(dens, rf.samples, tm, d)
        np.testing.assert_allclose(at["residual"], ref.residual, rtol=1e-9, atol=1e-9 * ref.residual.max())
        assert at["residual_norm"].max() == 1.0
        np.testing.assert_allclose(at["residual_scaled"], np.sqrt(OU().h(tm)) * at["residual"], rtol=1e-15)
        if d > 0:
            np.testing.assert_allclose(at["eigengap"], ref.frame.eigengap, rtol=1e-12, atol=1e-12)
        for thr, g in at["gap_means"].items():
            assert g["count"] == int(np.sum(at["eigengap"] > float(thr)))
        summ = s["at_d_star" if name == "d*" else "at_d_paper"]
        assert summ["below_half"] == int(np.sum(at["residual_norm"] < 0.5))
        assert summ["residual_norm_median"] == pytest.approx(np.median(at["residual_norm"]), rel=1e-12)
    # the evolution's last record is t_min itself
    assert rf.times[0] == TINY.T and rf.times[-1] == tm and np.allclose(rf.states[-1], rf.samples)
    assert rf.evolution["d_star_norm_median"][-1] == pytest.approx(np.median(rf.at["d*"]["residual_norm"]))
    assert rf.evolution["d_paper_norm_median"][-1] == pytest.approx(np.median(rf.at["paper"]["residual_norm"]))
    assert rf.evolution["d_choice"][-1] == rf.d_star
    # tube: counted samples only, fraction = share inside the chi radius
    tube = rf.at["d*"]["tube"]
    if tube is not None:
        z = tube.z[tube.counted]
        assert tube.fraction == np.mean(z <= tube.radius)
    dec = rf.encoder.decode(rf.samples)
    assert dec.shape == (m, 784) and np.all(np.isfinite(dec))


def test_exact_score_sits_in_the_calibrated_tube_and_memorises(runs):
    rf, ex = runs
    # the exact score samples p_{t_min}; at t_min = 1e-3 its posterior has collapsed on single training points
    # (d* = 0) and a sample is a_t x_i + sqrt(h) z: its distance to the mode in noise units is chi_32, so 90%
    # of samples lie inside the 90% radius. Tolerance: 3 binomial standard errors at the nominal level
    # (sqrt(0.09/150) = 0.0245, analytic, not estimated from these samples); the sampler's bias at 1000
    # geometric EM steps (step ratio 0.9%) is well inside it (see the fixture).
    assert ex.d_star == 0
    tube = ex.at["d*"]["tube"]
    assert tube.n_counted == TINY.n_tube
    assert abs(tube.fraction - 0.9) < 3 * tube.se, tube
    # ... and memorises: d_1/d_2 < 1/3 for most samples; the RF model (p = 16) does not; intervals separate
    assert ex.memo.fraction > 0.8 and ex.memo.ci_low > rf.memo.ci_high


def test_bimodality_coefficient():
    # Sarle's coefficient: 1/3 for a normal law, 1 for two equal point masses, 5/9 for the uniform law.
    # Deterministic samples (quantiles), m = 4000: the finite-size terms are O(1/m) and the quantile grid's
    # tails are cut at 1/(2m): 2e-2 covers both (the normal's kurtosis converges slowest)
    m = 4000
    q = (np.arange(m) + 0.5) / m
    assert bimodality(norm.ppf(q)) == pytest.approx(1 / 3, abs=2e-2)
    assert bimodality(q) == pytest.approx(5 / 9, abs=2e-2)
    assert bimodality(np.repeat([0.0, 1.0], m // 2)) == pytest.approx(1.0, abs=2e-2)
    with pytest.raises(ValueError, match="bimodality"):
        bimodality(np.ones(10))


def test_bad_input():
    with pytest.raises(ValueError, match="latent"):
        load_latent_data(replace(TINY, latent="vae"), 0)
    with pytest.raises(ValueError, match="n_train"):
        load_latent_data(replace(TINY, n_train=1), 0)
    with pytest.raises(ValueError, match="model"):
        run_latent(replace(TINY, model="magic"))
    with pytest.raises(ValueError, match="d_paper"):
        run_latent(replace(TINY, d_paper=32))
    data = load_latent_data(TINY, 0)
    with pytest.raises(ValueError, match="data does not match"):
        run_latent(replace(TINY, latent="ae"), data=data)


@pytest.mark.slow
def test_latent_figure_quick(tmp_path):
    from paper_figures import registry

    figs = registry.figures()
    mod = figs["latent"]
    assert mod.TITLE and len(mod.CAPTION) > 200
    res = mod.render(tmp_path, quick=True, seed=0, progress=False)
    assert sorted(p.suffix for p in res.files) == [".pdf", ".png"]
    for p in res.files:
        assert p.exists() and p.stat().st_size > 20000
    d = json.loads(json.dumps(res.data))
    assert d["paper"]["residual_norm_mean"] == 0.527 and set(d["runs"]) == {"pca_rf", "pca_exact", "ae_rf",
                                                                           "ae_exact"}
    for run in d["runs"].values():
        assert run["d_star"] == run["ridge_dimension"]["d"] and run["at_d_paper"]["d"] == 25


def test_mnist_dir_source(tmp_path):
    """--mnist DIR: LeCun's IDX files (here written from the shipped subset) give the same images, any digit."""
    import gzip
    import struct

    from rftheory.cli import build_parser
    from rftheory.data.mnist import load_mnist_subset

    X, y = load_mnist_subset(scale=False)
    img = X.reshape(-1, 28, 28).astype(np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + struct.pack(">III", *img.shape) + img.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", y.size)
                                                       + y.astype(np.uint8).tobytes())
    cfg = replace(TINY, mnist_dir=str(tmp_path), digit=7)
    images, _, Z, info = load_latent_data(cfg, 0)
    np.testing.assert_array_equal(images, load_mnist_subset(digit=7)[0][:TINY.n_train])
    assert Z.shape == (TINY.n_train, 32) and str(tmp_path) in info["source"]
    assert build_parser().parse_args(["figures", "--mnist", str(tmp_path)]).mnist == str(tmp_path)


def test_user_model_through_the_adapter(tiny_data):
    # a user's model of the latent score, as a plain callable (wrapped in fields.ScoreField) and as a saved RF
    # model loaded back (fields.save_rf / load_rf): the callable computing the exact score must give the very
    # run of model="exact" (same calls, same generator draws: bitwise), and the saved RF model the very run of
    # model="rf" (same weights: bitwise)
    import tempfile

    from rftheory.fields import ScoreField, load_rf, save_rf

    cfg = replace(TINY, n_steps=30, n_samples=24, n_tube=8, n_record=2, proj_max_iter=10)
    data = tiny_data  # load_latent_data(TINY, 0): the same latent map (cfg changes only the sampling)
    dens = EmpiricalDensity(data[2])
    calls = []

    def my_score(x, t):
        calls.append(x.shape)
        return dens.score(x, t)

    user = run_latent(cfg, rng=1, data=data, model=my_score)
    ref = run_latent(replace(cfg, model="exact"), rng=1, data=data)
    assert calls and user.config.model == "user" and user.model_info["model"].startswith("user model")
    np.testing.assert_array_equal(user.samples, ref.samples)
    assert user.d_star == ref.d_star and user.memo.fraction == ref.memo.fraction
    assert json.loads(json.dumps(user.summary()))["model"]["model"] == user.model_info["model"]
    # a trained RF field saved by the user and loaded back: the same samples as training it in the run
    field, _ = train_rf(data[2], cfg, np.random.default_rng(2))
    with tempfile.TemporaryDirectory() as tmp:
        save_rf(f"{tmp}/rf.npz", field)
        loaded = load_rf(f"{tmp}/rf.npz")
    a = run_latent(cfg, rng=3, data=data, model=loaded)
    b = run_latent(cfg, rng=3, data=data, model=field)
    np.testing.assert_array_equal(a.samples, b.samples)
    # refusals, each naming the problem
    with pytest.raises(ValueError, match="'ve' process"):
        run_latent(cfg, data=data, model=ScoreField(my_score, "ve"))
    with pytest.raises(ValueError, match="shape"):
        run_latent(cfg, data=data, model=lambda x, t: x[:, :3])
    with pytest.raises(TypeError, match="model must be a score field"):
        run_latent(cfg, data=data, model=42)
