"""Atomic file output shared by reports, figures and caches: write to a temporary file in the target's
directory, then ``os.replace`` it over the target, so a reader sees the old file or the complete new one."""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "json_safe"]


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
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
