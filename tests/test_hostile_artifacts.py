"""Hostile probes (issue 16), damaged artifacts: poisoned moment and sweep caches, killed writers, a figure run
killed part-way. Each test states the promised behaviour: a damaged on-disk artifact is discarded (with a warning
naming the file) and recomputed, never trusted; a run's outputs appear together or not at all. (The refusals of
what float64 cannot hold, bad arguments and the CLI's one-line failures are in tests/test_hostile.py.)
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
from tests.test_hostile_artifacts import FakeFigure
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
