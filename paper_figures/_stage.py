"""A figure's computed arrays cached on disk beside the RF moments (issue 17: from cache, a figure run only
renders).

A figure splits its work into ``compute() -> dict`` (the samples, traces and measurements: minutes at the
papers' sizes) and the drawing. :func:`cached` stores the dict in ``stage-NAME-<key>.npz`` under the moment
cache directory (``rftheory figures --cache``; nothing is stored when the cache is off, as in the tests). The
key is a SHA-256 of the figure's name, its settings (sizes, seed, ...), :data:`FORMAT` and the hash of the
whole code of rftheory and paper_figures (:func:`paper_figures._common.code_digest`), so any change of the code
recomputes. Nothing read is trusted: the file carries a SHA-256 of its contents (``rftheory._io.array_digest``)
and the key; an entry failing either check, or unreadable, is discarded with a warning naming the file and
recomputed. Entries are written atomically (``rftheory._io.atomic_path``), read without pickle.

Values: NumPy arrays (numeric, bool or str) and Python scalars; a dict value is flattened as ``outer|inner``.
The dict returned is the same whether computed or read (:func:`_normal`): scalars come back as Python
scalars, everything else as arrays, so a figure's JSON has the same bytes either way.
"""
from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from rftheory._io import array_digest, atomic_path, read_npz, remove_stale_temps

from . import _hqt
from ._common import code_digest

log = logging.getLogger(__name__)

#: raise when the stored layout changes
FORMAT = 1
_SEP = "|"


def stage_key(name: str, settings: dict) -> str:
    """Hex SHA-256 of the figure ``name``, its ``settings`` (JSON, sorted keys; non-JSON values by repr), FORMAT,
    the code hash and the posterior-pass engine (numba or numpy)."""
    from rftheory.density import _fused_pass

    # the density's posterior pass (compiled where numba is installed) changes results at round-off: part of the key
    engine = "numba" if _fused_pass.available() else "numpy"
    blob = json.dumps({"name": name, "format": FORMAT, "code": _code(), "settings": settings, "engine": engine},
                      sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


_CODE: dict = {}


def _code() -> str:
    """The code hash, once per process (the sources do not change during a run)."""
    if "sha" not in _CODE:
        _CODE["sha"] = code_digest()
    return _CODE["sha"]


def stage_path(cache_dir, name: str, key: str) -> Path:
    return Path(cache_dir) / f"stage-{name}-{key[:32]}.npz"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        k = str(k)
        if _SEP in k or k.startswith("__"):
            raise ValueError(f"stage entry name {k!r} may not contain {_SEP!r} nor start with '__'")
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}{_SEP}"))
        else:
            a = np.asarray(v)
            if a.dtype.hasobject:
                raise TypeError(f"stage entry {prefix}{k!r} is not an array of numbers, bools or strings")
            out[f"{prefix}{k}"] = a
    return out


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for k in flat:                               # stored in the computed dict's order
        *outer, last = k.split(_SEP)
        d = out
        for o in outer:
            d = d.setdefault(o, {})
        a = flat[k]
        d[last] = a.item() if a.ndim == 0 else a
    return out


def _normal(d: dict) -> dict:
    """``d`` as it reads back from disk: nested dicts kept, scalars as Python scalars, the rest as arrays."""
    return _unflatten(_flatten(d))


def save_stage(path, flat: dict, key: str) -> None:
    """Write the flat entries with the key and a SHA-256 of everything, atomically."""
    entries = {"__key__": np.array(key), **flat}
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __sha256__=np.array(array_digest(entries)), **entries)


def load_stage(path, key: str):
    """The nested dict stored at ``path`` if it exists, belongs to ``key`` and matches its checksum; else None
    (a bad entry is discarded with a warning naming the file)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        z = read_npz(path)
        stored = z.pop("__sha256__", None)
        if str(z.get("__key__")) != key:
            raise ValueError("it belongs to another key")
        if stored is None or str(stored) != array_digest(z):
            raise ValueError("its contents do not match the stored checksum")
        del z["__key__"]
        return _unflatten(z)
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as err:
        log.warning("figure cache %s discarded (%s); recomputing", path, err)
        return None


def cached(name: str, settings: dict, compute):
    """``compute()`` (a dict, see the module docstring) from the stage cache when the figure run has one and
    it holds a valid entry for (name, settings, code); else computed, stored, and returned normalised."""
    cache_dir = _hqt._CACHE["dir"]
    if cache_dir is None:
        return _normal(compute())
    remove_stale_temps(cache_dir, ".stage-*.npz.*")          # what a killed writer left
    key = stage_key(name, settings)
    path = stage_path(cache_dir, name, key)
    got = load_stage(path, key)
    if got is not None:
        log.info("figure %s: computed arrays from cache %s", name, path)
        return got
    flat = _flatten(compute())
    save_stage(path, flat, key)
    return _unflatten(flat)
