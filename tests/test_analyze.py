"""rftheory analyze: the calibrated tube headline, robustness to one far sample, memorization with duplicated
training points, a normally perturbed sampler, report files as a set, bad input and bad --out."""
import json
import re
import time

import numpy as np
import pytest

from rftheory import EmpiricalDensity, cli
from rftheory.apps import analyze_report
from rftheory.apps.analyze import analyze_samples, load_table
from rftheory.density.schedules import geometric_grid
from rftheory.dynamics.motion import memorization, nearest_distinct
from rftheory.dynamics.sampling import PerturbedField, normal_error, sample

# Points on a line in R^3: by P2 the d = 1 ridge of p_t is exactly the line a_t * (x-axis) and an exact draw
# of p_t is a point of it plus N(0, h_t I_2) in the normal plane, so |x - pi(x)| / sqrt(h_t) ~ chi_2 exactly
# and the tube count is exactly Binomial(m, level).
X = np.column_stack([np.linspace(-3.0, 3.0, 7), np.zeros(7), np.zeros(7)])
T_EVAL = 0.01
M = 300
Z = 4.0  # z-score of every statistical comparison below


def _binomial_band(level, m):
    """4 binomial standard errors at the nominal level (analytic variance, not estimated from the data)."""
    return Z * np.sqrt(level * (1 - level) / m)


# ----------------------------------------------------------------------------- calibration (headline)
@pytest.mark.parametrize("level", [0.5, 0.9])
def test_tube_fraction_calibrated_on_a_line(level):
    Xl = np.column_stack([np.linspace(-3.0, 3.0, 61), np.zeros(61), np.zeros(61)])
    m = 4000
    S = EmpiricalDensity(Xl).sample(T_EVAL, m, np.random.default_rng(21))
    res = analyze_samples(Xl, S, T_EVAL, 1, level=level, rng=0)
    assert np.all(res.status == 0) and res.tube.n_counted == m
    assert abs(res.tube.fraction - level) < _binomial_band(level, m)
    # the distance is the normal offset exactly (P2: the ridge is the line itself): round-off
    conv = res.status == 0
    np.testing.assert_allclose(res.proj_distance[conv], np.linalg.norm(S[conv, 1:], axis=1), rtol=1e-8)


def test_tube_fraction_calibrated_on_a_plane_in_r4():
    # a 15 x 15 grid (spacing 0.1 < sqrt(h_t) = 0.14) on a 2-plane of R^4, d = 2: z ~ chi_2 exactly (P2)
    g = np.linspace(-0.7, 0.7, 15)
    P = np.array([[u, v] for u in g for v in g])
    Q = np.linalg.qr(np.random.default_rng(4).standard_normal((4, 4)))[0]
    Xp = np.column_stack([P, np.zeros((P.shape[0], 2))]) @ Q.T + np.array([1.0, -2.0, 0.5, 3.0])
    m = 2000
    S = EmpiricalDensity(Xp).sample(T_EVAL, m, np.random.default_rng(8))
    res = analyze_samples(Xp, S, T_EVAL, 2, rng=0)
    assert res.tube.n_counted == m
    assert abs(res.tube.fraction - 0.9) < _binomial_band(0.9, m)


def test_one_far_sample_moves_headline_by_at_most_one_over_m():
    Xl = np.column_stack([np.linspace(-3.0, 3.0, 61), np.zeros(61), np.zeros(61)])
    S = EmpiricalDensity(Xl).sample(T_EVAL, 1000, np.random.default_rng(3))
    base = analyze_samples(Xl, S, T_EVAL, 1, rng=0)
    for far in ([10.0, 10.0, 0.0], [1e6, -1e6, 5.0], [0.0, 3.0, 0.0]):
        res = analyze_samples(Xl, np.vstack([S, far]), T_EVAL, 1, rng=0)
        assert abs(res.tube.fraction - base.tube.fraction) <= 1.0 / res.m
        assert res.m == base.m + 1
        # the far sample is reported apart (escaped) or counted outside the tube, never silently dropped
        assert res.status[-1] == 4 or (res.status[-1] == 0 and not res.tube.inside[-1])
        assert sum(res.summary()["status_counts"].values()) == res.m
    # the paper's max-normalised fraction, kept as a secondary column, is what one far sample moves
    assert res.on_ridge_fraction - base.on_ridge_fraction > 0.3


def test_normal_perturbation_lowers_the_tube_fraction():
    dens = EmpiricalDensity(X)
    rng = np.random.default_rng(11)
    exact = dens.sample(T_EVAL, M, rng)
    # reverse SDE with s* + (delta / h_t) P_perp e_y: by T1 the normal offset settles near delta = 0.5,
    # i.e. 3.5 sqrt(h_t), well outside the chi_2 tube (radius 2.15 sqrt(h_t))
    delta = 0.5
    field = PerturbedField(dens, normal_error(dens, 1, np.array([0.0, 1.0, 0.0])),
                           scale=lambda t: delta / dens.schedule.h(t))
    x0 = np.sqrt(float(dens.schedule.h(5.0))) * rng.standard_normal((M, 3))
    pert = sample(field, x0, geometric_grid(5.0, T_EVAL, 150), method="em", rng=rng).final
    ex, pe = analyze_samples(X, exact, T_EVAL, 1, rng=1), analyze_samples(X, pert, T_EVAL, 1, rng=1)
    assert abs(ex.tube.fraction - 0.9) < _binomial_band(0.9, M)
    assert ex.tube.fraction - pe.tube.fraction > Z * np.hypot(ex.tube.se, pe.tube.se)
    assert np.median(pe.normal_offset) > np.median(ex.normal_offset) + 0.5 * delta
    # the perturbation is purely normal and the ridge is flat: the tangential part is round-off
    assert np.nanmax(pe.tangent_offset) < 1e-8 * (1 + np.nanmax(pe.proj_distance))


# ----------------------------------------------------------------------------- memorization, neighbours
def test_memorization_with_duplicated_training_points():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((50, 3))
    Xd = np.vstack([base, base[:20], base[:5]])  # 20 points twice, 5 three times
    copies = base[:20].copy()
    near = base[:20] + 1e-4 * rng.standard_normal((20, 3))  # much closer than any other training point
    mem = memorization(np.vstack([copies, near]), Xd, rng)
    assert mem.fraction == 1.0  # with d_1 = d_2 = 0 (or d_1 ~ d_2) duplicates would read "not memorized"
    assert np.all(mem.ratios[:20] == 0.0) and np.all(mem.ratios[20:] < 1e-2)
    # the ratios are those of the de-duplicated set, exactly
    ref = memorization(np.vstack([copies, near]), base, rng)
    np.testing.assert_array_equal(mem.ratios, ref.ratios)


@pytest.mark.parametrize("D", [3, 24])  # k-d tree below KDTREE_MAX_D, blocked brute force above
def test_nearest_distinct_matches_brute_force(D):
    rng = np.random.default_rng(D)
    Xn = rng.standard_normal((700, D))
    Xn = np.vstack([Xn, Xn[:40]])
    Q = np.vstack([rng.standard_normal((60, D)), Xn[:5]])
    d, i = nearest_distinct(Q, Xn, k=2)
    U = np.unique(Xn, axis=0)
    full = np.sort(np.linalg.norm(Q[:, None] - U[None], axis=-1), axis=1)
    np.testing.assert_allclose(d, full[:, :2], rtol=1e-12, atol=0)  # both are |q - x| of the same rows
    np.testing.assert_allclose(np.linalg.norm(Q - Xn[i[:, 0]], axis=1), d[:, 0], rtol=1e-12, atol=0)
    dl, il = nearest_distinct(Xn[:30], Xn, k=1, self_query=True)  # leave-one-out: the nearest *other* point
    assert np.all(dl[:, 0] > 0) and np.all(il[:, 0] != np.arange(30))
    np.testing.assert_allclose(dl[:, 0], np.sort(np.linalg.norm(Xn[:30, None] - U[None], axis=-1), 1)[:, 1],
                               rtol=1e-12, atol=0)


def test_memorization_bootstrap_interval_is_binomial():
    # resampling m flags with replacement gives Binomial(m, p) counts: the 95% interval is about
    # p +- 1.96 sqrt(p (1 - p) / m); 4000 draws put its quantiles within ~0.01 (Monte Carlo) of that
    r = np.r_[np.zeros(30), np.ones(70)]
    ratios = np.column_stack([r, np.ones(100)])
    mem = memorization(np.zeros((100, 2)), None, np.random.default_rng(0), distances=ratios, n_boot=4000)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 100)
    assert mem.fraction == 0.3
    assert abs(mem.ci_low - (0.3 - half)) < 0.015 and abs(mem.ci_high - (0.3 + half)) < 0.015


# ----------------------------------------------------------------------------- files
def _cli(tmp_path, train, samples, *extra, out=None):
    return cli.main(["analyze", "--train", str(train), "--samples", str(samples), "--t", "0.01", "--d", "1",
                     "--out", str(out or tmp_path / "o"), "--no-progress", *extra])


def test_report_files_and_columns(tmp_path, capsys):
    tr, sm = tmp_path / "train.csv", tmp_path / "samples.npy"
    np.savetxt(tr, X, delimiter=",", header="x,y,z", comments="")
    S = EmpiricalDensity(X).sample(0.05, M, np.random.default_rng(5))
    np.save(sm, S)
    out = tmp_path / "out"
    assert _cli(tmp_path, tr, sm, "--header", out=out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(analyze_report.REPORT_FILES)
    for f in analyze_report.REPORT_FILES:
        assert (out / f).stat().st_size > 100
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_train"] == 7 and rep["n_samples"] == M and rep["d"] == 1
    assert rep["tube"]["n_counted"] + sum(v for k, v in rep["status_counts"].items() if k != "converged") == M
    assert "secondary_hqt" in rep and "note" in rep["secondary_hqt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directory left
    with open(out / "per_sample.csv") as fh:
        head = fh.readline().strip().split(",")
        rows = [ln.strip().split(",") for ln in fh]
    assert head[:4] == ["index", "x0", "x1", "x2"] and head[-1] == "status" and "in_tube" in head
    assert len(rows) == M and rows[0][0] == "0" and rows[0][-1] in {"converged", "max_iter", "not_regular",
                                                                    "diverged", "escaped"}
    np.testing.assert_allclose(np.array([r[1:4] for r in rows], float), S, rtol=1e-9)
    # a second run replaces the report as a whole
    assert _cli(tmp_path, tr, sm, "--header", "--level", "0.5", out=out) == 0
    assert json.loads((out / "report.json").read_text())["tube"]["level"] == 0.5


def test_d_auto_and_pca(tmp_path, capsys):
    rng = np.random.default_rng(3)
    imgs = rng.random((40, 4, 5))
    np.savez(tmp_path / "train.npz", train=imgs, other=np.zeros(3))
    np.save(tmp_path / "s.npy", imgs[:10] + 0.01 * rng.standard_normal((10, 4, 5)))
    assert load_table(tmp_path / "train.npz", "train").shape == (40, 20)
    out = tmp_path / "o"
    rc = cli.main(["analyze", "--train", str(tmp_path / "train.npz"), "--samples", str(tmp_path / "s.npy"),
                   "--t", "0.01", "--d", "auto", "--pca", "3", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert rep["D"] == 3 and rep["pca"]["K"] == 3
    assert rep["dimension"]["d"] == rep["d"] and len(rep["dimension"]["median_spectrum"]) == 3
    # 3 of 20 uniform directions keep well under half of the variance: the report says so
    assert any("keeps only" in w for w in rep["warnings"])


def test_failed_write_leaves_previous_report(tmp_path, capsys, monkeypatch):
    good = tmp_path / "good.npy"
    np.save(good, X)
    out = tmp_path / "o"
    assert _cli(tmp_path, good, good) == 0
    before = {f: (out / f).read_bytes() for f in analyze_report.REPORT_FILES}

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(analyze_report, "_plot", boom)
    assert _cli(tmp_path, good, good, "--level", "0.5") == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {f: (out / f).read_bytes() for f in analyze_report.REPORT_FILES} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    new = tmp_path / "new"
    monkeypatch.setattr(analyze_report, "_plot", boom)
    assert _cli(tmp_path, good, good, out=new) == 2
    assert not new.exists()  # no partial output


def test_bad_input_and_bad_out_fail_fast(tmp_path, capsys):
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
    p = tmp_path / "hdr.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n")
    cases.append((good, p, (), "line 1 is not a row of numbers.*pass --header"))
    p = tmp_path / "mid.csv"
    p.write_text("1,2,3\n4,5,6\n7,x,9\n1,1,1\n")
    cases.append((good, p, (), "line 3 is not a row of numbers: '7,x,9'"))
    cases.append((good, p, ("--header",), "line 3 is not a row of numbers"))
    p = tmp_path / "ragged.csv"
    p.write_text("1,2,3\n4,5\n")
    cases.append((good, p, (), "line 2 has 2 columns but the first row has 3"))
    p = tmp_path / "two.npz"
    np.savez(p, a=X, b=X)
    cases.append((good, p, (), r"holds arrays \['a', 'b'\]"))
    cases.append((good, tmp_path / "missing.npy", (), "no such file"))
    cases.append((good, good, ("--d", "3"), "d .*0 <= d < D = 3"))
    cases.append((good, good, ("--d", "one"), "--d must be an integer ridge dimension or 'auto'"))
    cases.append((good, good, ("--t", "-1"), "t must lie in"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases.append((good, good, ("--out", str(afile)), "exists and is not a directory"))
    cases.append((good, good, ("--out", str(afile / "sub")), "cannot write --out"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    cases.append((good, good, ("--out", str(other)), "holds other files"))
    for train, samples, extra, msg in cases:
        t0 = time.perf_counter()
        rc = cli.main(["analyze", "--train", str(train), "--samples", str(samples), "--t", "0.01", "--d", "1",
                       "--out", str(tmp_path / "o"), "--no-progress", *extra])
        took = time.perf_counter() - t0
        err = capsys.readouterr().err
        assert rc == 2, (msg, err)
        assert err.startswith("rftheory analyze: error:") and err.count("\n") == 1, err
        assert re.search(msg, err), (msg, err)
        assert took < 1.0, (msg, took)
    assert not (tmp_path / "o").exists()
    assert (other / "notes.txt").read_text() == "keep me" and afile.read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------- scale: pooled density
@pytest.mark.parametrize("D", [3, 12])  # pools found by the k-d tree (D <= 10) and by brute force
def test_pooled_density_matches_dense(D, monkeypatch):
    # n = 5000 Gaussian points, t = 1e-3: the pools (K = 64 or 256 neighbours per sample) are checked to carry
    # all but 1e-12 of the weight, so pooled and dense runs agree to round-off. d = 0: the ridge points are
    # the modes, a well-posed target (no tangential freedom).
    from rftheory.apps import analyze as an

    rng = np.random.default_rng(D)
    Xg = rng.standard_normal((5000, D))
    S = EmpiricalDensity(Xg).sample(1e-3, 60, rng) + 0.03 * rng.standard_normal((60, D))
    pooled = analyze_samples(Xg, S, 1e-3, 0)
    assert "dense" not in pooled.density["samples_by_pool"]
    monkeypatch.setattr(an, "POOL_K0", 10**9)  # K >= n / 4: the dense EmpiricalDensity for every chunk
    dense = analyze_samples(Xg, S, 1e-3, 0)
    assert dense.density["samples_by_pool"] == {"dense": 60}
    _assert_pooled_is_dense(pooled, dense)


def _assert_pooled_is_dense(pooled, dense):
    """Pooled and dense analyses agree: same statuses and tube fraction; eigenvalues (-1/h + (a/h)^2 Cov:
    summation order and the dropped 1e-12 of the weight change them by round-off of the largest, 1/h = 500 at
    t = 1e-3, a few eps; 1e-10 leaves a wide margin for O(n) sums); modes (both projections stop at
    |s| <= 1e-9 (1/length): at t = 1e-3, h = 2e-3, they agree to well below 1e-9 length)."""
    np.testing.assert_array_equal(pooled.status, dense.status)
    lam_scale = np.abs(dense.eigenvalues).max()
    np.testing.assert_allclose(pooled.eigenvalues, dense.eigenvalues, rtol=0, atol=1e-10 * lam_scale)
    np.testing.assert_allclose(pooled.proj_points, dense.proj_points, rtol=0, atol=1e-9)
    assert pooled.tube.fraction == dense.tube.fraction


def test_modes_by_newton_above_newton_max_d_match_scms(monkeypatch):
    # d = 0 takes Newton steps at any D ("auto"; they need no third cumulant), d > 0 only up to NEWTON_MAX_D.
    # D = 30 > NEWTON_MAX_D, t = 0.1 (dense: no pool holds): Newton and SCMS find the same modes -- both stop
    # at |s| <= tol = 1e-9 (1/length) where the Hessian's eigenvalues are <= -|lambda_min| ~ -1/h, so the
    # points agree to ~tol h / |1 + h lambda| ~ 1e-9 length (1e-7 leaves room for the slowest direction)
    from rftheory.apps import analyze as an

    rng = np.random.default_rng(7)
    D = 30
    assert D > an.NEWTON_MAX_D
    Xg = rng.standard_normal((300, D)) / np.sqrt(np.arange(1, D + 1))
    S = EmpiricalDensity(Xg).sample(0.1, 24, rng)
    calls = []
    orig = an.ridge.project

    def spy(*args, **kw):
        calls.append(kw.get("newton"))
        return orig(*args, **kw)

    monkeypatch.setattr(an.ridge, "project", spy)
    auto = analyze_samples(Xg, S, 0.1, 0)
    scms = analyze_samples(Xg, S, 0.1, 0, newton=False)
    assert calls and set(calls[:len(calls) // 2]) == {True} and set(calls[len(calls) // 2:]) == {False}
    np.testing.assert_array_equal(auto.status, scms.status)
    ok = auto.status == 0
    assert ok.mean() > 0.9
    np.testing.assert_allclose(auto.proj_points[ok], scms.proj_points[ok], rtol=0, atol=1e-7)
    calls.clear()
    analyze_samples(Xg, S[:4], 0.1, 1)   # d > 0 above NEWTON_MAX_D: SCMS
    assert calls and set(calls) == {False}


def test_given_d_against_the_spectrum_warns():
    # points on the x-axis of R^3 at t = 0.01: the Hessian spectrum shows d = 1 at the samples (one flat
    # direction along the line, two normal ones), so d = 1 passes quietly and d = 0 is flagged with the
    # spectrum's own choice; --d auto agrees with it
    rng = np.random.default_rng(11)
    Xl = np.column_stack([np.linspace(-3.0, 3.0, 31), np.zeros(31), np.zeros(31)])
    S = EmpiricalDensity(Xl).sample(0.01, 60, rng)
    auto = analyze_samples(Xl, S, 0.01, "auto")
    assert auto.d == 1 and auto.dimension.share > 0.5
    assert not [w for w in analyze_samples(Xl, S, 0.01, 1).warnings if "given" in w]
    w0 = [w for w in analyze_samples(Xl, S, 0.01, 0).warnings if "given" in w]
    assert len(w0) == 1 and "d = 0 given" in w0[0] and "show 1" in w0[0], w0


# ----------------------------------------------------------------------------- pool growth and fallback
def _spy_builds(monkeypatch):
    from rftheory.apps import analyze_pools

    calls = []
    orig = analyze_pools.Pools.build

    def build(self, S, k=None):
        out = orig(self, S, k)
        calls.append((k, S.shape[0], out[3]))
        return out

    monkeypatch.setattr(analyze_pools.Pools, "build", build)
    return calls


@pytest.mark.parametrize("case", ["grow_and_remeasure", "dense_fallback"])
def test_pool_growth_and_dense_fallback_match_dense(case, monkeypatch):
    # grow_and_remeasure: first K = 1 (never enough: the 1st neighbour is its own nearest pooled row) grows x4 at
    # the samples to K = 64, and the projections of two samples leave that pool's reach, so they are measured
    # again with K = 256 (analyze's second loop). dense_fallback: at t = 0.5 no pool with 4 K < n covers the
    # samples, so the dense EmpiricalDensity is used. Both must agree with a dense run to round-off (d = 0: the
    # modes; tolerances as in test_pooled_density_matches_dense).
    from rftheory.apps import analyze as an

    rng = np.random.default_rng(3)
    Xg = rng.standard_normal((3000, 3))
    t, noise, k0 = (1e-3, 0.03, 1) if case == "grow_and_remeasure" else (0.5, 0.0, an.POOL_K0)
    S = EmpiricalDensity(Xg).sample(t, 40, rng) + noise * rng.standard_normal((40, 3))
    calls = _spy_builds(monkeypatch)
    monkeypatch.setattr(an, "POOL_K0", k0)
    pooled = analyze_samples(Xg, S, t, 0)
    usage = pooled.density["samples_by_pool"]
    if case == "grow_and_remeasure":
        assert calls[0][0] is None and calls[0][2] == 64  # grown from K = 1 at the samples
        assert [c[0] for c in calls[1:]] == [256] and usage == {"K=64": 38, "K=256": 2}  # re-measured
        assert pooled.density["kind"] == "pooled"
    else:
        assert usage == {"dense": 40} and pooled.density["kind"] == "dense"
    monkeypatch.setattr(an, "POOL_K0", 10**9)
    dense = analyze_samples(Xg, S, t, 0)
    assert dense.density["samples_by_pool"] == {"dense": 40}
    _assert_pooled_is_dense(pooled, dense)


# ----------------------------------------------------------------------------- t at the edge of float64
@pytest.mark.filterwarnings("error::RuntimeWarning")   # the refusal comes with no overflow warning first
def test_cli_at_t_1e_300_correct_numbers_or_one_line_refusal(tmp_path, capsys, monkeypatch):
    # at t = 1e-300, sqrt(h_t) = 1.4e-150: samples that are training points sit on the modes (distance 0, all
    # inside the tube, d* = 0, all memorised); samples 0.1 away are 7e148 noise units out (tube fraction 0) and
    # their residuals |P_perp s| ~ 0.1 / h_t ~ 1e299 must not overflow the report's statistics (std was inf); a sample
    # between two modes, where the Hessian is not representable, is a one-line refusal with exit 2
    np.save(tmp_path / "x.npy", X)
    rng = np.random.default_rng(0)
    # the numbers are under test, not the plots (test_report_files_and_columns renders them): empty files
    monkeypatch.setattr(analyze_report, "_plot", lambda res, png, pdf: (png.write_bytes(b""), pdf.write_bytes(b"")))

    def run(S, d):
        np.save(tmp_path / "s.npy", S)
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        rc = cli.main(["analyze", "--train", str(tmp_path / "x.npy"), "--samples", str(tmp_path / "s.npy"),
                       "--t", "1e-300", "--d", d, "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        return rc, err, (json.loads((out / "report.json").read_text()) if rc == 0 else None)

    on = X[[0, 1, 2, 3, 4, 5, 6, 3, 2]]
    for d in ("auto",):
        rc, err, rep = run(on, d)
        assert rc == 0, err
        assert rep["d"] == 0 and rep["dimension"]["share"] == 1.0 and rep["h_t"] == pytest.approx(2e-300, rel=1e-12)
        assert rep["tube"]["fraction"] == 1.0 and rep["tube"]["n_counted"] == 9
        assert rep["memorization"]["fraction"] == 1.0
    far = X + 0.1 * rng.standard_normal(X.shape)
    rc, err, rep = run(far, "0")
    assert rc == 0, err
    assert rep["tube"]["n_inside"] == 0 and rep["tube"]["n_counted"] >= 1
    res = rep["secondary_hqt"]["residual"]
    assert all(isinstance(v, float) and np.isfinite(v) for k, v in res.items() if k not in ("count", "nonfinite"))
    assert 1e297 < res["std"] < 1e300 and res["q00"] <= res["mean"] <= res["q100"]
    for d in ("1",):
        rc, err, rep = run(np.array([[0.5, 0.0, 0.0], [1.5, 0.0, 0.0]]), d)
        assert rc == 2 and err.count("\n") == 1 and "rftheory analyze: error:" in err, err
        assert "not representable in float64" in err and "larger t" in err


# ----------------------------------------------------------------------------- trajectories over pools
def test_trajectories_pooled_match_dense_measure(monkeypatch):
    # recorded exact reverse-SDE paths on n = 3000 points in R^3, t from 1 down to 1e-3: at the early times no
    # pool covers the states (dense), at the late ones pools of K = 64.. do; every measurement must equal
    # dynamics.motion.measure over the dense density to round-off (d = 0: the modes, tolerances as in
    # test_pooled_density_matches_dense). CHUNK = 16 so that several chunks per time are measured.
    from rftheory.apps import analyze_traj
    from rftheory.dynamics.motion import measure, phases

    monkeypatch.setattr(analyze_traj, "CHUNK", 16)
    rng = np.random.default_rng(5)
    Xg = rng.standard_normal((3000, 3))
    dens = EmpiricalDensity(Xg)
    x0 = np.sqrt(float(dens.schedule.h(1.0))) * rng.standard_normal((40, 3))
    tr = sample(dens, x0, geometric_grid(1.0, 1e-3, 60), method="em", rng=rng, record=6)
    meas, usage = analyze_traj.measure_pooled(Xg, tr.states, tr.times, 0, model=dens)
    kinds = [set(u) for u in usage.values()]
    assert kinds[0] == {"dense"} and "dense" not in kinds[-1]  # dense early, pooled late
    ref = measure(dens, tr, 0, field=dens, velocity=False, kappa=False)
    np.testing.assert_array_equal(meas.status, ref.status)
    np.testing.assert_allclose(meas.proj, ref.proj, rtol=0, atol=1e-9)
    np.testing.assert_allclose(meas.distance, ref.distance, rtol=0, atol=1e-9)
    lam_scale = np.abs(ref.lambda1).max(axis=1, keepdims=True)  # per time: 1/h_t sets the round-off
    assert np.all(np.abs(meas.lambda1 - ref.lambda1) <= 1e-10 * lam_scale)
    # the model is the exact score: its error is round-off of |s| ~ |x| / h_t, bounded per time
    s_scale = np.max(np.linalg.norm(tr.states, axis=2), axis=1, keepdims=True) / dens.schedule.h(tr.times)[:, None]
    assert np.all(meas.e_perp <= 1e-10 * s_scale) and np.all(meas.e_par <= 1e-10 * s_scale)
    r = 0.3
    a, b = phases(meas, r), phases(ref, r)
    np.testing.assert_array_equal(a.reach_time, b.reach_time)
    np.testing.assert_array_equal(np.isnan(a.align_time), np.isnan(b.align_time))
