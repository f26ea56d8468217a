"""Shared helpers for the figure scripts: the result type, PNG + PDF output with fixed metadata, and the
publication of one figure's outputs as a set.

A figure's outputs -- ``NAME.png``, ``NAME.pdf``, ``NAME.json`` (the numbers, with the run's seed),
``NAME.caption.txt`` -- form a set (:func:`render_set`): they are rendered into a private staging directory,
moved into place, and ``NAME.manifest.json`` (seed, profile, version, a hash of the code, and the SHA-256 of
every file) is written LAST. A reader trusts a set only through :func:`check_set`, which fails on a missing
manifest (a run killed while moving files in), a missing file, or one whose bytes do not match (a file left
from another run). The same seed gives the same bytes in every file: the PDF carries no creation date.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import rftheory  # noqa: E402
from rftheory._io import atomic_path, file_digest, json_safe, locked_dir, remove_stale_temps  # noqa: E402

# house colours for the ridge figures
RIDGE = "#2ca02c"
SAMPLES = "#1f77b4"
TRAIN = "#d62728"


@dataclass
class FigureResult:
    """Files written and the numbers behind the figure (for tests and captions)."""

    name: str
    files: list = field(default_factory=list)
    data: dict = field(default_factory=dict)


def save(fig, out_dir, stem: str, dpi: int = 110) -> list:
    """Write ``stem.png`` and ``stem.pdf`` atomically (temporary file + rename); return the paths."""
    paths = []
    for ext in ("png", "pdf"):
        final = Path(out_dir) / f"{stem}.{ext}"
        # no creation date in the PDF (nor a version-dependent producer): same seed => same bytes
        meta = {"CreationDate": None, "Producer": None} if ext == "pdf" else None
        with atomic_path(final, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(final)
    plt.close(fig)
    return paths


def save_data(res: FigureResult, out_dir) -> Path:
    """Write the numbers behind a figure to ``NAME.json`` (atomically) beside its PNG and PDF."""
    final = Path(out_dir) / f"{res.name}.json"
    with atomic_path(final, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(json_safe(res.data), indent=1, allow_nan=False) + "\n")
    return final


# ----------------------------------------------------------------------------- a figure's outputs as a set
STAGING = ".staging-"
_TEMP_PATTERNS = (".*.png.*.png", ".*.pdf.*.pdf", ".*.json.*.json", ".*.txt.*.txt", ".*.tmp", STAGING + "*")


def manifest_path(out_dir, name: str) -> Path:
    return Path(out_dir) / f"{name}.manifest.json"


def code_digest() -> str:
    """SHA-256 over the sources of rftheory and paper_figures (path and bytes, in path order)."""
    hsh = hashlib.sha256()
    for pkg in (Path(rftheory.__file__).parent, Path(__file__).parent):
        for f in sorted(pkg.rglob("*.py")):
            hsh.update(str(f.relative_to(pkg.parent)).encode())
            hsh.update(f.read_bytes())
    return hsh.hexdigest()


def reuse_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next allocation (a figure run's process only).

    By default glibc returns a freed block above its thresholds to the kernel, and the next temporary of the
    same size is page-faulted in again; it raises the thresholds only once a large mmapped block has been freed.
    Until then an RF score evaluation at the papers' size (2 MiB temporaries) is dominated by page faults:
    Heun PF-ODE, 2000 points, p = 1000, 200 steps in a fresh process took 11.5-12.8 CPU-s, 2.3-2.5 with this
    setting (bits unchanged). Raises the trim threshold to 1 GiB and the mmap threshold as far as glibc allows
    (``mallopt``: 1 GiB is refused on 64-bit glibc, whose limit is 32 MiB, and 32 MiB is then set), so memory
    stays at the run's peak. Returns whether it was applied (False off glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    big = 1 << 30
    ok = bool(mallopt(M_MMAP_THRESHOLD, big)) or bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))
    return bool(mallopt(M_TRIM_THRESHOLD, big)) and ok


def clean_out_dir(out_dir) -> list:
    """Remove what killed runs left in ``out_dir``: temporary files and staging directories that no live
    process holds. Returns their paths."""
    removed = []
    for pat in _TEMP_PATTERNS:
        removed += remove_stale_temps(out_dir, pat)
    return removed


def render_set(mod, out_dir, *, quick: bool, seed: int, progress: bool = True) -> FigureResult:
    """Render figure module ``mod`` into ``out_dir`` as a set (module docstring); return its FigureResult
    with the published paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean_out_dir(out)
    name = mod.NAME
    run = {"name": name, "seed": int(seed), "quick": bool(quick), "version": rftheory.__version__,
           "code_sha256": code_digest()}
    with locked_dir(out, f"{STAGING}{name}-") as stage:
        res = mod.render(stage, quick=quick, seed=seed, progress=progress)
        res.data = {"run": run, **res.data}
        save_data(res, stage)
        caption = " ".join(str(getattr(mod, "CAPTION", "") or "").split())
        with atomic_path(stage / f"{name}.caption.txt", suffix=".txt") as tmp:
            Path(tmp).write_text(caption + "\n")
        files = sorted(f.name for f in stage.iterdir() if f.is_file() and not f.name.startswith("."))
        bad = [f for f in files if not f.startswith(f"{name}.")]
        if bad:
            raise RuntimeError(f"figure {name} wrote {bad}: every output must be named {name}.EXT")
        digests = {f: file_digest(stage / f) for f in files}
        # publish: old manifest out first (the set is "incomplete" from here), files in, new manifest last
        man = manifest_path(out, name)
        old = _read_manifest(man)
        man.unlink(missing_ok=True)
        for f in files:
            os.replace(stage / f, out / f)
        for f in (old or {}).get("files", {}):
            if f not in digests and f != man.name and (out / f).is_file():
                (out / f).unlink()                   # a file of the previous set that this one lacks
        with atomic_path(man, suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps({"run": run, "files": digests}, indent=1, sort_keys=True) + "\n")
    res.files = [out / Path(p).name for p in res.files]
    return res


def _read_manifest(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def check_set(out_dir, name: str) -> dict:
    """The manifest of figure ``name`` in ``out_dir`` after checking that every file it lists is there with
    the recorded bytes; ValueError (naming the file) otherwise."""
    man = manifest_path(out_dir, name)
    data = _read_manifest(man)
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict) or "run" not in data:
        raise ValueError(f"figure {name}: no valid manifest {man} (never rendered, or the run was interrupted)")
    for f, digest in data["files"].items():
        p = Path(out_dir) / f
        if not p.is_file():
            raise ValueError(f"figure {name}: {p} is missing")
        if file_digest(p) != digest:
            raise ValueError(f"figure {name}: {p} does not match the manifest (left from another run?)")
    return data
