"""Atomic file writes (temporary file in the target's directory, fsync, then ``os.replace``).

A reader never sees a half-written report or cache entry: either the old file, or the complete new one.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rftheory._io import atomic_path

__all__ = ["atomic_write_bytes", "atomic_write_text", "save_npz_atomic", "load_npz"]


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; creates the parent directory. Returns the path."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def atomic_write_text(path, text: str) -> Path:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_npz_atomic(path, arrays: dict) -> Path:
    """Save a dict of arrays as an uncompressed ``.npz`` (exact bits), atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path) -> dict:
    """Load every array of an ``.npz`` written by :func:`save_npz_atomic` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
