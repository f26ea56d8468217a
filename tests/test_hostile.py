"""Hostile probes (issue 16): poisoned caches, killed runs, extreme t and scales, bad arguments.

Each test states the promised behaviour: a damaged on-disk artifact is discarded (with a warning naming the
file) and recomputed, never trusted; the library refuses what it cannot compute with an error naming the
argument instead of returning NaN; the CLI fails in one line.
"""
import fcntl
import logging
import os
from pathlib import Path

import numpy as np
import pytest

import verification
from rftheory._io import atomic_path, remove_stale_temps
from rftheory.rf.model import RandomFeatureModel
from verification.protocol import Context, execute

X2 = np.array([[-3.0, 0.0], [3.0, 0.0]])


def _rewrite_npz(path, **changes):
    """Rewrite the .npz at ``path`` with some entries replaced, keeping every other entry -- the stored
    checksum included -- as it was (what a bit rot or a hand edit does)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ----------------------------------------------------------------------------- the RF moment cache
@pytest.fixture
def cached_moments(tmp_path):
    m = RandomFeatureModel(2, 8, 2, 2.0, rng=3)
    kw = dict(t0=1e-2, weight="1", n_gl=3, report=False, cache_dir=tmp_path)
    first = m.moments(X2, **kw)
    (entry,) = tmp_path.glob("moments-*.npz")
    return m, kw, first, entry


def _resigned(entry, **changes):
    """Entries replaced AND the checksum recomputed: a valid key and checksum around bad contents."""
    from rftheory._io import array_digest

    with np.load(entry, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "sha256"}
    arrays.update(changes)
    with open(entry, "wb") as fh:
        np.savez(fh, sha256=np.array(array_digest(arrays)), **arrays)


@pytest.mark.parametrize("damage", ["U_nan_resigned", "U_shape_resigned", "U_asym_resigned", "V_inf_resigned",
                                    "bitflip", "no_checksum", "truncated", "garbage"])
def test_bad_moment_cache_entry_is_discarded_and_recomputed(cached_moments, damage, caplog, monkeypatch):
    m, kw, first, entry = cached_moments
    U, V = first.U.copy(), first.V.copy()
    if damage == "U_nan_resigned":
        U[0, 0] = np.nan
        _resigned(entry, U=U)
    elif damage == "U_shape_resigned":
        _resigned(entry, U=np.eye(m.p + 1))
    elif damage == "U_asym_resigned":
        U[0, 1] += 1e-3
        _resigned(entry, U=U)
    elif damage == "V_inf_resigned":
        V[1, 2] = np.inf
        _resigned(entry, V=V)
    elif damage == "bitflip":                      # one ulp in one entry, checksum left as it was
        U[2, 3] = U[3, 2] = np.nextafter(U[2, 3], np.inf)
        _rewrite_npz(entry, U=U)
    elif damage == "no_checksum":
        with np.load(entry, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "sha256"}
        with open(entry, "wb") as fh:
            np.savez(fh, **arrays)
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:200])
    else:
        entry.write_bytes(b"\x00" * 64)
    calls = []
    import rftheory.rf.model as rfm

    real = rfm.assemble
    monkeypatch.setattr(rfm, "assemble", lambda *a, **k: calls.append(1) or real(*a, **k))
    with caplog.at_level(logging.WARNING, logger="rftheory.rf.moments"):
        again = m.moments(X2, **kw)
    assert calls, "the damaged entry was trusted instead of recomputed"
    assert "discarded" in caplog.text and str(entry) in caplog.text
    np.testing.assert_array_equal(again.U, first.U)
    np.testing.assert_array_equal(again.V, first.V)
    # ... and rewritten: the next call is a clean hit
    calls.clear()
    np.testing.assert_array_equal(m.moments(X2, **kw).U, first.U)
    assert not calls


@pytest.mark.parametrize("damage", ["truncated_200", "truncated_half", "truncated_tail", "npy", "garbage"])
def test_damaged_moment_cache_file_is_closed_when_discarded(tmp_path, damage, monkeypatch):
    """load_moments discards a damaged entry without leaking its file handle (np.load leaks its own on a
    truncated zip: a ResourceWarning at collection; issue 16)."""
    import gc
    import warnings

    from rftheory.rf.moments import load_moments

    entry = tmp_path / "entry.npz"
    np.savez(entry, U=np.eye(30), V=np.ones((2, 30)))
    full = entry.read_bytes()
    cut = {"truncated_200": 200, "truncated_half": len(full) // 2, "truncated_tail": len(full) - 10}
    if damage in cut:
        entry.write_bytes(full[:cut[damage]])
    elif damage == "npy":
        with open(entry, "wb") as fh:
            np.save(fh, np.eye(3))
    else:
        entry.write_bytes(b"\x00" * 64)
    # the logger is disabled: pytest's log capture would otherwise keep the error's traceback (and the
    # leaked handle with it) alive past the collection below
    monkeypatch.setattr(logging.getLogger("rftheory.rf.moments"), "disabled", True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_moments(entry, "key") is None
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


def test_stale_moment_temp_files_are_removed_but_a_live_writers_is_not(cached_moments):
    m, kw, first, entry = cached_moments
    cache = entry.parent
    stale = cache / f".{entry.name}.k1ll3d.npz"
    stale.write_bytes(entry.read_bytes()[:100])      # a writer killed half-way
    live = cache / f".{entry.name}.l1v3.npz"
    live.write_bytes(b"being written")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)               # what atomic_path holds while writing
        m.moments(X2, **kw)
        assert not stale.exists()
        assert live.exists()
    finally:
        os.close(fd)
    assert remove_stale_temps(cache, ".moments-*.npz.*") == [live]


def test_atomic_path_holds_its_lock_until_the_rename(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        Path(tmp).write_text("x")
        assert remove_stale_temps(tmp_path) == []     # locked: not stale
    assert target.read_text() == "x" and not list(tmp_path.glob(".*"))


# ----------------------------------------------------------------------------- the verification sweep cache
def test_poisoned_sweep_replicate_is_recomputed_never_passed(tmp_path, caplog):
    """R2's SGD sweep: one cached replicate rewritten with W = 1e6 (its checksum not updated) must be
    recomputed -- the rerun's numbers are those of the clean run bit for bit -- not loaded into the verdict."""
    r2 = verification.registry()["R2"]
    with Context("quick", 0, cache_dir=tmp_path, scheduler="serial") as ctx:
        clean = execute(r2, ctx)
    assert clean.verdict == "pass"
    files = sorted(tmp_path.glob("*sgd_task/*.npz"))
    assert len(files) >= 8
    victim = files[len(files) // 2]
    with np.load(victim) as z:
        _rewrite_npz(victim, W=np.full_like(z["W"], 1e6))
    with caplog.at_level(logging.WARNING, logger="verification.sweep"):
        with Context("quick", 0, cache_dir=tmp_path, scheduler="serial") as ctx:
            again = execute(r2, ctx)
    assert str(victim) in caplog.text and "checksum" in caplog.text
    assert [r.measured for r in again.rows] == [r.measured for r in clean.rows]
    assert again.verdict == "pass"
    with np.load(victim) as z:
        assert np.abs(z["W"]).max() < 1e3                      # the file itself was rewritten


def test_sweep_file_under_the_wrong_key_is_recomputed(tmp_path, caplog):
    from verification.sweep import run_sweep
    from tests.test_verification_sweep import noise_task

    params = [{"scale": 1.0, "i": i} for i in range(3)]
    first = run_sweep(noise_task, params, root_seed=0, cache_dir=tmp_path)
    a, b = (first.cache_dir / f"{k}.npz" for k in first.keys[:2])
    b.write_bytes(a.read_bytes())                   # a valid, signed file filed under another task's key
    with caplog.at_level(logging.WARNING, logger="verification.sweep"):
        again = run_sweep(noise_task, params, root_seed=0, cache_dir=tmp_path)
    assert again.n_computed == 1 and str(b) in caplog.text
    np.testing.assert_array_equal(again.results[1]["x"], first.results[1]["x"])


# ----------------------------------------------------------------------------- a figure's outputs as a set
class FakeFigure:
    """A figure module in miniature (NAME, CAPTION, render): a seed-dependent scatter, rendered in ms."""

    NAME = "fake"
    TITLE = "fake"
    CAPTION = "Random points\n  drawn from the seed."

    @staticmethod
    def render(out_dir, quick=False, seed=0, progress=True):
        import matplotlib.pyplot as plt

        from paper_figures._common import FigureResult, save

        pts = np.random.default_rng(seed).standard_normal((20, 2))
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot(pts[:, 0], pts[:, 1], ".")
        return FigureResult("fake", save(fig, out_dir, "fake", dpi=40), {"points": pts})


_KILLER = """
import os, signal, sys
from pathlib import Path
from paper_figures import _common
from tests.test_hostile import FakeFigure
out, where = Path(sys.argv[1]), sys.argv[2]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "render":            # rendered into the staging directory, killed before publishing
    _common.file_digest = die
elif where == "publish":         # killed right after the first file of the set was moved into place
    real = os.replace
    def replace(a, b):
        real(a, b)
        if Path(b).parent == out:
            die()
    _common.os.replace = replace
_common.render_set(FakeFigure, out, quick=True, seed=1, progress=False)
"""


def _killed_render(out, where):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(out), where], cwd=root, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(root), MPLBACKEND="Agg"))
    assert proc.returncode == -9, proc.returncode          # it really was killed at the checkpoint


@pytest.mark.parametrize("where", ["render", "publish"])
def test_figure_run_killed_at_a_checkpoint_never_passes_as_a_set(tmp_path, where):
    from paper_figures._common import check_set, render_set

    out = tmp_path / "out"
    render_set(FakeFigure, out, quick=True, seed=0, progress=False)
    seed0 = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert check_set(out, "fake")["run"]["seed"] == 0
    _killed_render(out, where)
    assert list(out.glob(".staging-fake-*")), "the kill left no staging directory (checkpoint not reached)"
    if where == "render":        # nothing of seed 1 reached OUT: the seed-0 set is intact and checks
        assert check_set(out, "fake")["run"]["seed"] == 0
        assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == seed0
    else:                        # a seed-1 file beside seed-0 files: the reader must refuse the set
        assert (out / "fake.caption.txt").read_bytes() == seed0["fake.caption.txt"]
        with pytest.raises(ValueError, match="no valid manifest"):
            check_set(out, "fake")
    # a stale writer's temp file from an older run, too
    (out / ".fake.png.abc123.png").write_bytes(b"\x89PNG truncated")
    render_set(FakeFigure, out, quick=True, seed=1, progress=False)
    man = check_set(out, "fake")
    assert man["run"]["seed"] == 1
    assert sorted(f.name for f in out.iterdir()) == sorted(
        ["fake.png", "fake.pdf", "fake.json", "fake.caption.txt", "fake.manifest.json"])
    import json

    assert json.loads((out / "fake.json").read_text())["run"]["seed"] == 1
    assert (out / "fake.caption.txt").read_text() == "Random points drawn from the seed.\n"


def test_check_set_refuses_a_file_from_another_run(tmp_path):
    from paper_figures._common import check_set, render_set

    a, b = tmp_path / "a", tmp_path / "b"
    render_set(FakeFigure, a, quick=True, seed=0, progress=False)
    render_set(FakeFigure, b, quick=True, seed=1, progress=False)
    (a / "fake.png").write_bytes((b / "fake.png").read_bytes())
    with pytest.raises(ValueError, match="fake.png does not match"):
        check_set(a, "fake")
    (a / "fake.pdf").unlink()
    with pytest.raises(ValueError, match="missing|does not match"):
        check_set(a, "fake")


def test_same_seed_same_bytes_in_every_output(tmp_path):
    """A real figure (gtv1, seconds) rendered twice through `rftheory figures`: PNG, PDF, JSON, caption and
    manifest identical byte for byte (the PDF would otherwise carry its creation date); another seed
    differs in the JSON."""
    import time

    from rftheory.cli import main

    for d, seed in (("a", 0), ("b", 0), ("c", 1)):
        if d == "b":
            time.sleep(1.1)                       # a PDF creation date would now differ in its seconds
        assert main(["figures", "--only", "gtv1", "--quick", "--no-progress", "--no-cache", "--seed", str(seed),
                     "--out", str(tmp_path / d)]) == 0
    names = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert names == ["gtv1.caption.txt", "gtv1.json", "gtv1.manifest.json", "gtv1.pdf", "gtv1.png"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
    assert (tmp_path / "a" / "gtv1.json").read_bytes() != (tmp_path / "c" / "gtv1.json").read_bytes()


def test_readme_images_exist_and_figure_files_carry_the_only_names():
    import re

    from paper_figures import registry

    root = Path(__file__).resolve().parents[1]
    links = re.findall(r"\]\((docs/figures/[^)]+)\)", (root / "README.md").read_text())
    assert links and all((root / link).is_file() for link in links)
    quick = {Path(link).stem for link in links if "/full/" not in link}
    assert quick == set(registry.figures())           # one quick render per `--only` name, named by it


# ----------------------------------------------------------------------------- no silent NaN / inf
EPS = np.finfo(float).eps


@pytest.mark.parametrize("t", [1e-160, 1e-200, 1e-250, 1e-300])
def test_hessian_and_residual_at_tiny_t_are_correct_or_refused(t):
    """Near one training point (the other 2.5 away) the posterior is one-hot to every digit
    (weight ratio e^{-3/h}, h ~ 2t), so H = -I/h_t exactly; a^2/h^2 alone overflows below t ~ 1e-154, and the
    old evaluation returned NaN here. Midway between two points the true H = -I/h + (a/h)^2 diag(9/4, 0)
    exceeds float64: a ValueError that says so."""
    from rftheory import EmpiricalDensity, ridge

    p = EmpiricalDensity(np.array([[0.0, 0.0], [3.0, 0.0]]))
    x = np.array([[0.5, 0.0]])
    H = p.hessian(x, t)
    h = p.schedule._h(np.array([t]))[0]
    np.testing.assert_allclose(H[0], -np.eye(2) / h, rtol=4 * EPS, atol=0)     # round-off of -1/h
    assert np.all(np.isfinite(p.hessian_derivative(x, t)))
    res = ridge.residual(p, x, t, d=1)
    assert np.all(np.isfinite(res.residual))
    with pytest.raises(ValueError, match="not representable in float64"):
        p.hessian(np.array([[1.5, 0.0]]), t)


@pytest.mark.parametrize("t", [1e-200, 1e-300])
def test_projection_at_tiny_t_neither_overflows_nor_hides_it(t):
    """At tiny t the Newton system's J ~ 1/h_t = 1e300 made J J^T overflow (a RuntimeWarning, inf in the
    solve). Each system is now scaled by a power of two (exact: same bits at ordinary t). Near a lone training
    point the Hessian is -I/h (isotropic): the d = 1 ridge is undetermined there and every point must say so
    (status not_regular), with no floating-point warning on the way."""
    import warnings

    from rftheory import EmpiricalDensity, datasets, ridge

    X = datasets.thirteen_points()
    p = EmpiricalDensity(X)
    rng = np.random.default_rng(0)
    x = X[:8] * p.schedule.a(t) + np.sqrt(p.schedule.h(t)) * rng.normal(size=(8, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in the solve would raise here
        pr = ridge.project(p, x, t, d=1)
    assert list(pr.status_names) == ["not_regular"] * 8


@pytest.mark.parametrize("t", [1e-310, 1e-320])
@pytest.mark.parametrize("method", ["log_density", "score", "hessian", "residual", "project"])
def test_t_below_float64_is_a_valueerror(method, t):
    """A subnormal h_t (1/h_t overflows) is refused by name, before any floating-point warning (issue 16)."""
    import warnings

    from rftheory import EmpiricalDensity, datasets, ridge

    p = EmpiricalDensity(datasets.thirteen_points())
    call = (lambda x: getattr(ridge, method)(p, x, t, d=1)) if method in ("residual", "project") else \
        (lambda x: getattr(p, method)(x, t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # an overflow warning before the refusal fails here
        with pytest.raises(ValueError, match=f"t = {t:.3g}.*not representable"):
            call(np.array([[1.0, 0.5]]))


def test_huge_data_or_queries_are_refused_not_nan():
    from rftheory import EmpiricalDensity, datasets, ridge

    X = datasets.thirteen_points()
    with pytest.raises(ValueError, match="data.*overflow"):
        EmpiricalDensity(X * 1e160)
    p = EmpiricalDensity(X)
    far = np.array([[1e200, 0.0]])
    with pytest.raises(ValueError, match="log p_t"):
        p.log_density(far, 0.3)
    assert np.all(np.isfinite(p.score(far, 0.3)))                 # the score there is finite and returned
    # at 1e150 everything is still representable: finite values (a one-hot posterior), not NaN
    res = ridge.residual(EmpiricalDensity(X * 1e150), X[:1] * 1e150 + 1e150, 0.3, d=1)
    assert np.all(np.isfinite(res.residual)) and res.residual[0] > 1e149


def test_rf_field_refuses_nan_weights():
    m = RandomFeatureModel(2, 5, 1, 1.0, rng=0)
    W = np.zeros((2, 5))
    W[1, 3] = np.nan
    with pytest.raises(ValueError, match="W contains NaN"):
        m.score_field(W)


def test_gd_reports_divergence_and_converges_when_stable():
    from rftheory.rf.model import gd

    U = np.diag([1.0, 0.25])
    V = np.array([[1.0, 1.0]])
    W0 = np.zeros((1, 2))
    W = gd(U, V, W0, eta=0.4, steps=200)                            # |1 - 2 eta mu| <= 0.8: contracts
    np.testing.assert_allclose(W, [[1.0, 4.0]], rtol=1e-12)        # 0.8^200 ~ 4e-20 from W* = V U^-1
    with pytest.raises(ValueError, match=r"gd diverged.*eta = 1.1 must be < 1/max eig\(U\) = 1"):
        gd(U, V, W0, eta=1.1, steps=200)                            # |1 - 2.2| = 1.2 > 1 on mu = 1
    with pytest.raises(ValueError, match="gd diverged"):
        gd(U, V, W0, eta=1e200, steps=5)                            # inf / nan within a step or two


def test_gradient_flow_refuses_indefinite_and_nonsymmetric_u():
    from rftheory.rf.model import gradient_flow

    U = np.diag([1.0, -0.5])
    V = np.array([[1.0, 1.0]])
    W0 = np.zeros((1, 2))
    with pytest.raises(ValueError, match="indefinite"):
        gradient_flow(U, V, W0)
    gf = gradient_flow(U, V, W0, allow_indefinite=True)
    # the true flow: W(tau) = W* + (W0 - W*) e^{-2 tau U}, W* = V U^-1 = (1, -2); along mu = -0.5 it grows
    for tau in (0.5, 3.0):
        want = np.array([[1.0, -2.0]]) + (W0 - [[1.0, -2.0]]) * np.exp(-2 * tau * np.array([1.0, -0.5]))
        np.testing.assert_allclose(gf.predict(tau), want, rtol=1e-14)   # round-off of expm1/exp
    with pytest.raises(ValueError, match="diverges"):
        gf.predict(np.inf)
    A = np.array([[1.0, 0.3], [0.0, 1.0]])
    with pytest.raises(ValueError, match="not symmetric"):
        gradient_flow(A, V, W0)
    sym = gradient_flow(A, V, W0, symmetrize=True)
    np.testing.assert_array_equal(sym.W_star, gradient_flow((A + A.T) / 2, V, W0).W_star)
    # round-off asymmetry (a Gram matrix summed in another order) is not refused
    B = np.random.default_rng(0).standard_normal((40, 6))
    G = B.T @ B
    G[0, 1] = np.nextafter(G[0, 1], np.inf)
    gradient_flow(G, np.ones((1, 6)), np.zeros((1, 6)))


# ----------------------------------------------------------------------------- bad arguments name themselves
def _bad_argument_cases():
    from rftheory import EmpiricalDensity, datasets, ridge
    from rftheory.rf.model import gd, sgd

    X = datasets.thirteen_points()
    p = EmpiricalDensity(X)
    x = np.array([[1.0, 0.5]])
    m = RandomFeatureModel(2, 3, 1, 1.0, rng=0)
    W0 = np.zeros((2, 3))
    g = np.random.default_rng(0)
    return [
        ("step", lambda: ridge.project(p, x, 0.3, d=1, step=-1)),
        ("step", lambda: ridge.project(p, x, 0.3, d=1, step=np.nan)),
        ("step", lambda: ridge.project(p, x, 0.3, d=1, step=[0.1, 0.2])),
        ("batch_size", lambda: ridge.project(p, x, 0.3, d=1, batch_size=0)),
        ("beta_min", lambda: ridge.project(p, x, 0.3, d=1, beta_min=np.nan)),
        ("beta_min", lambda: ridge.residual(p, x, 0.3, d=1, beta_min=np.nan)),
        ("tol", lambda: ridge.project(p, x, 0.3, d=1, tol=-1.0)),
        ("max_iter", lambda: ridge.project(p, x, 0.3, d=1, max_iter=0)),
        ("d", lambda: ridge.project(p, x, 0.3, d=None)),
        ("d", lambda: ridge.residual(p, x, 0.3, d="1")),
        ("d", lambda: ridge.trace(p, 0.3, d=None)),
        ("data", lambda: EmpiricalDensity(X + 1j)),
        ("x", lambda: p.score(x + 1j, 0.3)),
        ("t", lambda: p.score(x, None)),
        ("t", lambda: p.score(x, "soon")),
        ("t", lambda: p.hessian(x, 0.3 + 1j)),
        ("t", lambda: p.score(x, np.nan)),
        ("size", lambda: p.sample(0.3, -1, g)),
        ("size", lambda: p.sample(0.3, 2.5, g)),
        ("rng", lambda: p.sample(0.3, 2, 1.5)),  # None is a fresh generator (issue 18); a float is refused
        ("T", lambda: RandomFeatureModel(2, 3, 1, None, rng=0)),
        ("p", lambda: RandomFeatureModel(2, 0, 1, 1.0, rng=0)),
        ("t0", lambda: m.moments(X, t0=None)),
        ("batch", lambda: m.moments(X, batch=0)),
        ("threads", lambda: m.moments(X, threads=0)),
        ("steps", lambda: sgd(m, X, W0, 0.1, -1, 0)),
        ("eta", lambda: sgd(m, X, W0, np.nan, 3, 0)),
        ("t0", lambda: sgd(m, X, W0, 0.1, 3, 0, t0=0.0)),
        ("steps", lambda: gd(np.eye(3), np.zeros((2, 3)), W0, 0.1, 2.5)),
        ("eta", lambda: gd(np.eye(3), np.zeros((2, 3)), W0, -0.1, 3)),
    ]


@pytest.mark.parametrize("i", range(30))
def test_bad_argument_gets_a_clear_error_naming_it(i):
    cases = _bad_argument_cases()
    assert len(cases) == 30
    name, call = cases[i]
    with pytest.raises((ValueError, TypeError)) as err:
        call()
    assert str(err.value).startswith(name + " ") or f" {name} " in f" {err.value} ", (name, str(err.value))


# ----------------------------------------------------------------------------- the command line
def _cli(*args, timeout=60):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "rftheory", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(root), MPLBACKEND="Agg"))


def test_python_m_rftheory_version_and_v_after_the_subcommand():
    import rftheory
    from rftheory.cli import build_parser

    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"rftheory {rftheory.__version__}"
    r = _cli("figures", "-v", "--list")
    assert r.returncode == 0 and "ridge" in r.stdout
    p = build_parser()
    assert p.parse_args(["figures", "-v"]).verbose and p.parse_args(["-v", "figures"]).verbose
    assert not p.parse_args(["figures"]).verbose


def test_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    """A refused TCP port (nothing listens on port 1 of this host): refused within the 3 s probe, not dask's
    30 s connect loop; one line on stderr, no traceback."""
    import time

    t0 = time.monotonic()
    r = _cli("verify", "--only", "R2", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "no dask scheduler answers at tcp://127.0.0.1:1" in r.stderr
    assert time.monotonic() - t0 < 25                 # import time on the loaded machine included
    assert not (tmp_path / "report.json").exists()


def test_cli_t_below_float64_is_one_line_exit_2(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "tr.npy", rng.standard_normal((30, 2)))
    np.save(tmp_path / "sa.npy", rng.standard_normal((5, 2)))
    r = _cli("analyze", "--train", str(tmp_path / "tr.npy"), "--samples", str(tmp_path / "sa.npy"), "--t", "1e-320",
             "--d", "1", "--out", str(tmp_path / "o"), "--no-progress")
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr and "not representable in float64" in last


# ----------------------------------------------------------------------------- ReLU moments in the far tails
# mu/s down to -37 (at -38 every ReLU moment is below the smallest normal float, ~2.2e-308) and |rho| up to
# 1 - 1e-6, against mpmath at 40 digits (tests/mp_reference.py). Bound 1e-12 relative: the expansion has no
# cancelling terms, so round-off (~1e-15 per term) and the 16-node panels' quadrature error (< 1e-14 measured)
# are what remain; the worst measured over the grid below is 1e-13 (at alpha = -30, beta = 5, rho = 0.999999).
_FAR = [(-20.0, -20.0, 1 - 1e-6), (-30.0, -25.0, 1 - 1e-6), (-30.0, 5.0, 1 - 1e-6), (-37.0, -37.0, 1 - 1e-6),
        (-30.0, -20.0, 0.5), (-20.0, 20.5, -(1 - 1e-6)), (30.0, -20.0, -0.999), (-37.0, 3.0, 0.999)]
_FAR_SLOW = [(-25.0, -20.0, 0.999), (-35.0, -30.0, 1 - 1e-6), (-20.0, -25.0, 0.0), (-37.0, 37.5, -(1 - 1e-6)),
             (-24.0, 24.0, -0.999), (-30.0, 0.0, 0.999999)]


def _far_case(a, b, rho):
    from rftheory.rf._bvn import relu_pair_std

    from .mp_reference import relu_pair_ref

    ref = float(relu_pair_ref(a, b, rho, dps=40))
    assert ref > 2.3e-308, "the grid must hold normal floats (else only absolute accuracy is meaningful)"
    v = float(relu_pair_std(a, b, rho))
    assert abs(v - ref) <= 1e-12 * ref, (v, ref, abs(v - ref) / ref)


@pytest.mark.parametrize("a,b,rho", _FAR)
def test_relu_pair_far_tails_vs_mpmath(a, b, rho):
    _far_case(a, b, rho)


@pytest.mark.slow
@pytest.mark.parametrize("a,b,rho", _FAR_SLOW)
def test_relu_pair_far_tails_vs_mpmath_more(a, b, rho):
    _far_case(a, b, rho)


@pytest.mark.parametrize("a", [-20.0, -30.0, -37.0, -37.2])
def test_relu_mean_and_second_moment_far_tails_vs_mpmath(a):
    import mpmath as mp

    from rftheory.rf._bvn import relu_g, relu_second_std

    with mp.workdps(40):
        x = mp.mpf(a)
        g = float(x * mp.ncdf(x) + mp.npdf(x))
        q = float((x * x + 1) * mp.ncdf(x) + x * mp.npdf(x))
    assert g > 2.3e-308 and q > 2.3e-308
    assert abs(relu_g(a) - g) <= 1e-12 * g, abs(relu_g(a) - g) / g
    assert abs(relu_second_std(a) - q) <= 1e-12 * q, abs(relu_second_std(a) - q) / q
