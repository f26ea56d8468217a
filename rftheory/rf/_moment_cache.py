"""The on-disk moment cache (split out of :mod:`rftheory.rf.moments`, which re-exports it; the contract is in that
module's docstring): one checksummed ``.npz`` per assembly, keyed by a SHA-256 of everything the result depends
on, validated when read, written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from .._io import array_digest, atomic_path, read_npz, remove_stale_temps
from ._moment_types import FORMAT, PARAMETRIZATIONS, WEIGHTS, Moments, QuadratureReport

__all__ = ["cache_key", "cache_path", "clean_cache_dir", "load_moments", "save_moments"]

log = logging.getLogger("rftheory.rf.moments")  # the public module's logger, as before the split


def cache_key(model, data, settings: dict) -> str:
    """The key of a cached result: hex SHA-256 of the model's weights and activation, ``data`` and ``settings``.

    Parameters
    ----------
    model : RandomFeatureModel
    data : numpy.ndarray, shape (n, D)
    settings : dict
        JSON-able settings (schedule repr, t0, T, weight, quadrature ...).

    Returns
    -------
    str
        64 hex digits.
    """
    hsh = hashlib.sha256()
    meta = {"format": FORMAT, "activation": model.act.name, "K": model.K, "T_emb": model.T, **settings}
    hsh.update(json.dumps(meta, sort_keys=True, default=repr).encode())
    for arr in (model.W_x, model.W_t, model.b, data):
        a = np.ascontiguousarray(arr, dtype=np.float64)
        hsh.update(repr(a.shape).encode())
        hsh.update(a.tobytes())
    return hsh.hexdigest()


def cache_path(cache_dir, key: str) -> Path:
    """Where the entry for ``key`` lives: ``cache_dir / moments-<first 32 hex digits>.npz``.

    Parameters
    ----------
    cache_dir : path
    key : str

    Returns
    -------
    pathlib.Path
    """
    return Path(cache_dir) / f"moments-{key[:32]}.npz"


def clean_cache_dir(cache_dir) -> list:
    """Remove the temporary files that a killed writer left in ``cache_dir``.

    Parameters
    ----------
    cache_dir : path

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    return remove_stale_temps(cache_dir, ".moments-*.npz.*")


def _entries(mom: Moments, key: str) -> dict:
    rep = mom.report
    out = {"key": np.array(key), "U": np.asarray(mom.U, dtype=np.float64), "V": np.asarray(mom.V, dtype=np.float64),
           "c0": np.array(float(mom.c0)), "weight": np.array(mom.weight),
           "parametrization": np.array(mom.parametrization), "method": np.array(mom.method),
           "t0": np.array(float(mom.t0)), "T": np.array(float(mom.T)), "n_time_nodes": np.array(int(mom.n_time_nodes))}
    if rep is not None:
        out.update(rep_rule=np.array(rep.rule), rep_n=np.array([rep.n_nodes, rep.n_nodes_refined]),
                   rep_units=np.asarray(rep.units), rep_diff=np.array([rep.rel_diff_U, rep.rel_diff_V]))
    return out


def save_moments(path, mom: Moments, key: str) -> None:
    """Write ``mom`` atomically (a reader sees no half-written entry) with a SHA-256 of its contents.

    Parameters
    ----------
    path : path
        Target file (its directory is created).
    mom : Moments
    key : str
        From :func:`cache_key`.

    Returns
    -------
    None
    """
    entries = _entries(mom, key)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, sha256=np.array(array_digest(entries)), **entries)


class _BadEntry(ValueError):
    pass


def _validate(z: dict, key: str, p, D) -> None:
    """Raise _BadEntry saying what is wrong with the loaded entries ``z`` (see the module docstring)."""
    stored = z.pop("sha256", None)
    if str(z.get("key")) != key:
        raise _BadEntry("it belongs to another key")
    if stored is None:
        raise _BadEntry("it carries no checksum")
    if str(stored) != array_digest(z):
        raise _BadEntry("its contents do not match the stored checksum")
    U, V = z["U"], z["V"]
    if U.dtype != np.float64 or V.dtype != np.float64:
        raise _BadEntry(f"U, V must be float64; got {U.dtype}, {V.dtype}")
    if U.ndim != 2 or U.shape[0] != U.shape[1] or (p is not None and U.shape != (p, p)):
        raise _BadEntry(f"U has shape {U.shape}; expected (p, p) with p = {p}")
    if V.ndim != 2 or V.shape[1] != U.shape[0] or (D is not None and V.shape[0] != D):
        raise _BadEntry(f"V has shape {V.shape}; expected (D, p) = ({D}, {U.shape[0]})")
    if not (np.all(np.isfinite(U)) and np.all(np.isfinite(V)) and np.isfinite(z["c0"])):
        raise _BadEntry("U, V or c0 contains NaN or inf")
    if not np.array_equal(U, U.T):                # assemble() builds U exactly symmetric
        raise _BadEntry("U is not symmetric")
    if str(z["method"]) != "exact" or str(z["weight"]) not in WEIGHTS \
            or str(z["parametrization"]) not in PARAMETRIZATIONS:
        raise _BadEntry("its settings (method, weight, parametrization) are not those of a cached assembly")


def load_moments(path, key: str, p: int | None = None, D: int | None = None) -> Moments | None:
    """The cached Moments at ``path`` if it exists and passes every check of the module docstring (key,
    checksum, U (p, p) and V (D, p) when ``p`` / ``D`` are given, finite, U symmetric); else None: the entry is
    discarded, with a warning naming the file, and the caller recomputes and overwrites it.

    Parameters
    ----------
    path : path
    key : str
        From :func:`cache_key`.
    p, D : int, optional
        Expected feature count and dimension.

    Returns
    -------
    Moments or None
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        z = read_npz(path)
        _validate(z, key, p, D)
        rep = None
        if "rep_rule" in z:
            n1, n2 = (int(v) for v in z["rep_n"])
            dU, dV = (float(v) for v in z["rep_diff"])
            rep = QuadratureReport(str(z["rep_rule"]), n1, n2, z["rep_units"], dU, dV)
        return Moments(U=z["U"], V=z["V"], c0=float(z["c0"]), weight=str(z["weight"]),
                       parametrization=str(z["parametrization"]), method=str(z["method"]),
                       t0=float(z["t0"]), T=float(z["T"]), n_time_nodes=int(z["n_time_nodes"]), report=rep)
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as err:
        log.warning("moment cache %s discarded (%s); recomputing", path, err)
        return None
