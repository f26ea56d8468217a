"""Atomic file output shared by reports, figures and caches: write to a temporary file in the target's
directory, then ``os.replace`` it over the target, so a reader sees the old file or the complete new one.

A writer holds an exclusive ``flock`` on its temporary file until the rename, so :func:`remove_stale_temps`
can tell the leftovers of a killed run (lock free: the kernel drops a dead process's locks) from a file that
another live process is still writing (lock held), and removes only the former. :func:`array_digest` is the
content checksum stored in every cache file and checked on load."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

try:                                             # POSIX; elsewhere stale temps are told by age
    import fcntl
except ImportError:                              # pragma: no cover - not on Linux
    fcntl = None

__all__ = ["atomic_path", "json_safe", "array_digest", "file_digest", "remove_stale_temps", "locked_dir"]

log = logging.getLogger(__name__)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; on success give it the permissions a plain ``open`` would
    (0666 less the umask, not mkstemp's 0600), fsync it and rename it over ``path``; on error remove it.
    Creates the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)       # "being written": see remove_stale_temps
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        os.close(fd)


def remove_stale_temps(directory, pattern: str = ".*.*", max_age: float = 3600.0) -> list:
    """Remove the temporary files (or staging directories, see :func:`locked_dir`) matching ``pattern`` in
    ``directory`` that no live writer holds (their writer was killed before the rename); return their paths.
    Without ``flock`` (not POSIX) an entry counts as stale when it is older than ``max_age`` seconds."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for f in sorted(directory.glob(pattern)):
        if not (f.is_file() or f.is_dir()) or f.is_symlink():
            continue
        try:
            if fcntl is None:
                if time.time() - f.stat().st_mtime < max_age:
                    continue
            else:
                fd = os.open(f, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:          # a live writer holds it
                    continue
                finally:
                    os.close(fd)
            kind = "directory" if f.is_dir() else "file"
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()
        except FileNotFoundError:                # its writer renamed it meanwhile
            continue
        log.warning("removed stale temporary %s %s (left by an interrupted run)", kind, f)
        removed.append(f)
    return removed


@contextlib.contextmanager
def locked_dir(parent, prefix: str):
    """Yield a new private directory ``parent/<prefix>XXXX`` holding an exclusive ``flock`` on it until the
    block ends (then the directory is removed, whatever it still holds): a staging area that
    :func:`remove_stale_temps` leaves alone while its owner lives and removes after the owner was killed."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    fd = os.open(path, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def file_digest(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    hsh = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hsh.update(block)
    return hsh.hexdigest()


def read_npz(path) -> dict:
    """Every array of the ``.npz`` file at ``path``, read whole (no pickles). The file is opened here, not by
    ``np.load``: np.load leaks its own handle when the zip is truncated. Raises ``ValueError`` if the file is
    not an ``.npz`` archive (and whatever numpy raises on a damaged one); callers discard such entries."""
    with open(path, "rb") as fh:
        npz = np.load(fh, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with npz:
            return {k: npz[k] for k in npz.files}


def array_digest(arrays: dict) -> str:
    """Hex SHA-256 of a dict of arrays: every entry's name, dtype, shape and bytes, in name order."""
    hsh = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.hasobject:
            raise TypeError(f"array {name!r} is an object array; cannot checksum it")
        hsh.update(repr((name, a.dtype.str, a.shape)).encode())
        hsh.update(a.tobytes())
    return hsh.hexdigest()


def json_safe(obj):
    """A strict-JSON copy of ``obj``: dict keys to strings, tuples and arrays to lists, NumPy scalars to Python,
    non-finite floats to "inf" / "-inf" / "nan" (strict JSON has none), anything else by ``repr``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else repr(f)
    if obj is None or isinstance(obj, str):
        return obj
    return repr(obj)
