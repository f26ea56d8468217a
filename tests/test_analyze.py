"""rftheory analyze: exact draws from p_t against a normally perturbed sampler; report files; bad input."""
import json
import re

import numpy as np
import pytest

from rftheory import EmpiricalDensity, cli
from rftheory.apps.analyze import analyze_samples, load_table
from rftheory.dynamics.sampling import PerturbedField, normal_error, sample
from rftheory.density.schedules import geometric_grid

# Seven points on a line in R^3: by P2 the d = 1 ridge of p_t is exactly the line a_t * (x-axis) and the
# normal score is -y/h_t, so an exact draw from p_t has sqrt(h_t) |P_perp s*| = |z_perp| ~ chi_2 exactly.
X = np.column_stack([np.linspace(-3.0, 3.0, 7), np.zeros(7), np.zeros(7)])
T_EVAL = 0.01
M = 300
Z = 4.0  # z-score of every statistical comparison below


@pytest.fixture(scope="module")
def runs():
    dens = EmpiricalDensity(X)
    h = float(dens.schedule.h(T_EVAL))
    rng = np.random.default_rng(11)
    exact = dens.sample(T_EVAL, M, rng)
    # reverse SDE from p_T with s* + (delta / h_t) P_perp e_y: by T1 the normal offset settles near delta
    delta = 0.5
    field = PerturbedField(dens, normal_error(dens, 1, np.array([0.0, 1.0, 0.0])),
                           scale=lambda t: delta / dens.schedule.h(t))
    x0 = np.sqrt(float(dens.schedule.h(5.0))) * rng.standard_normal((M, 3))
    pert = sample(field, x0, geometric_grid(5.0, T_EVAL, 150), method="em", rng=rng).final
    return (analyze_samples(X, exact, T_EVAL, 1, rng=1), analyze_samples(X, pert, T_EVAL, 1, rng=1), h, delta)


def test_exact_draws_match_chi(runs):
    ex, _, h, _ = runs
    r2 = ex.residual_scaled ** 2  # chi^2_2: mean 2, variance 4
    assert abs(r2.mean() - 2.0) < Z * 2.0 / np.sqrt(M)
    assert ex.h == pytest.approx(h) and ex.D == 3 and ex.d == 1
    # on the line the offset from the projection is purely normal (P2: the ridge is the x-axis itself)
    assert np.all(ex.proj_status == 0)
    assert np.max(ex.tangent_offset) < 1e-8 * (1 + np.max(ex.proj_distance))
    assert np.allclose(ex.normal_offset, ex.proj_distance, rtol=1e-10, atol=1e-12)
    # distance to the ridge = |P_perp x| exactly, and h_t * residual = that distance (P2)
    assert np.allclose(ex.proj_distance, h * ex.residual, rtol=1e-8)


def test_normal_perturbation_moves_samples_off_ridge(runs):
    ex, pe, h, delta = runs
    se = np.hypot(ex.residual_scaled.std(), pe.residual_scaled.std()) / np.sqrt(M)
    assert pe.residual_scaled.mean() - ex.residual_scaled.mean() > Z * se
    # the normal offset grows by about delta (T1 with e = delta/h): compare medians loosely but one-sided
    assert np.median(pe.normal_offset) > np.median(ex.normal_offset) + 0.5 * delta
    # on-ridge fraction (max-normalised residual < 0.2) drops; binomial standard errors
    p1, p2 = ex.on_ridge_fraction, pe.on_ridge_fraction
    se_b = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / M)
    assert p1 - p2 > Z * se_b
    # the tangential part stays zero for both (the perturbation is purely normal)
    assert np.max(pe.tangent_offset) < 1e-8 * (1 + np.max(pe.proj_distance))


def test_summary_and_files(runs, tmp_path):
    ex, _, _, _ = runs
    s = ex.summary()
    assert s["on_ridge_fraction"] == ex.on_ridge_fraction
    assert sum(s["residual_normalized_hist"]) == M
    assert s["memorization"]["ci_low"] <= s["memorization"]["fraction"] <= s["memorization"]["ci_high"]
    tr, sm = tmp_path / "train.csv", tmp_path / "samples.npy"
    np.savetxt(tr, X, delimiter=",", header="x,y,z", comments="")
    np.save(sm, EmpiricalDensity(X).sample(0.05, M, np.random.default_rng(5)))
    out = tmp_path / "out"
    rc = cli.main(["analyze", "--train", str(tr), "--samples", str(sm), "--t", "0.05", "--d", "1",
                   "--out", str(out)])
    assert rc == 0
    for f in ("report.json", "summary.md", "per_sample.csv", "analyze.png", "analyze.pdf"):
        assert (out / f).stat().st_size > 100
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_train"] == 7 and rep["n_samples"] == M and rep["d"] == 1
    assert not list(out.glob(".*"))  # no temporary files left
    per = np.loadtxt(out / "per_sample.csv", delimiter=",", skiprows=1)
    assert per.shape == (M, 11)


def test_images_flattened_and_pca(tmp_path):
    rng = np.random.default_rng(3)
    imgs = rng.random((40, 4, 5))
    np.savez(tmp_path / "train.npz", train=imgs, other=np.zeros(3))
    np.save(tmp_path / "s.npy", imgs[:10] + 0.01 * rng.standard_normal((10, 4, 5)))
    assert load_table(tmp_path / "train.npz", "train").shape == (40, 20)
    out = tmp_path / "o"
    rc = cli.main(["analyze", "--train", str(tmp_path / "train.npz"), "--samples", str(tmp_path / "s.npy"),
                   "--t", "0.01", "--d", "2", "--pca", "6", "--out", str(out)])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["D"] == 6 and rep["pca"]["K"] == 6


def _run(tmp_path, capsys, train, samples, *extra):
    rc = cli.main(["analyze", "--train", str(train), "--samples", str(samples), "--t", "0.01", "--d", "1",
                   "--out", str(tmp_path / "o"), *extra])
    return rc, capsys.readouterr().err


def test_bad_input(tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, X)
    cases = []
    p = tmp_path / "d2.npy"
    np.save(p, X[:, :2])
    cases.append((good, p, (), "D = 2.*D = 3"))
    p = tmp_path / "nan.csv"
    bad = X.copy()
    bad[[2, 5], 1] = np.nan
    np.savetxt(p, bad, delimiter=",")
    cases.append((good, p, (), r"2 row\(s\) contain NaN.*\[2, 5\]"))
    p = tmp_path / "empty.csv"
    p.write_text("")
    cases.append((p, good, (), "train.*empty"))
    p = tmp_path / "blank.csv"
    p.write_text("\n \n")
    cases.append((good, p, (), "samples.*empty"))
    p = tmp_path / "zero.npy"
    np.save(p, np.zeros((0, 3)))
    cases.append((good, p, (), "no data"))
    p = tmp_path / "x.txt"
    p.write_text("1,2,3\n")
    cases.append((good, p, (), "unreadable format '.txt'"))
    p = tmp_path / "junk.npy"
    p.write_bytes(b"not a numpy file at all")
    cases.append((good, p, (), "samples.*junk.npy"))
    p = tmp_path / "words.csv"
    p.write_text("a,b,c\nd,e,f\n")
    cases.append((good, p, (), "not a numeric CSV"))
    p = tmp_path / "two.npz"
    np.savez(p, a=X, b=X)
    cases.append((good, p, (), r"holds arrays \['a', 'b'\]"))
    cases.append((good, tmp_path / "missing.npy", (), "no such file"))
    cases.append((good, good, ("--d", "3"), "d .*0 <= d < D = 3"))
    cases.append((good, good, ("--t", "-1"), "t must lie in"))
    for train, samples, extra, msg in cases:
        rc, err = _run(tmp_path, capsys, train, samples, *extra)
        assert rc == 2, (msg, err)
        assert err.startswith("rftheory analyze: error:"), err
        assert re.search(msg, err), (msg, err)
    assert not (tmp_path / "o" / "report.json").exists()
