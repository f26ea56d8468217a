"""Atomic file writes (temporary file in the target's directory, fsync, then ``os.replace``).

A reader never sees a half-written report or cache entry: either the old file, or the complete new one.
Cache entries (:func:`save_npz_atomic`) carry a SHA-256 of their arrays, and :func:`load_npz` refuses a file
whose contents do not match it (:class:`CorruptCacheFile`): a cached result is not trusted because it parses.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rftheory._io import array_digest, atomic_path

__all__ = ["atomic_write_bytes", "atomic_write_text", "save_npz_atomic", "load_npz", "CorruptCacheFile",
           "CHECKSUM"]

#: name of the checksum entry in a cache file
CHECKSUM = "__sha256__"


class CorruptCacheFile(ValueError):
    """A cache file that cannot be trusted: unreadable, without a checksum, or whose arrays do not match it."""


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
    """Save a dict of arrays as an uncompressed ``.npz`` (exact bits), atomically, with their SHA-256
    (:func:`rftheory._io.array_digest`) stored as the entry ``__sha256__``."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if CHECKSUM in arrays:
        raise ValueError(f"arrays: the name {CHECKSUM!r} is reserved for the checksum")
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{CHECKSUM: np.array(array_digest(arrays))})
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path) -> dict:
    """Every array of an ``.npz`` written by :func:`save_npz_atomic` (no pickles), after checking them against
    the stored checksum; :class:`CorruptCacheFile` (naming the file) if unreadable, unsigned or altered."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except Exception as err:  # noqa: BLE001 - whatever the damage, the file is not trusted
        raise CorruptCacheFile(f"cache file {path} is unreadable ({type(err).__name__}: {err})") from err
    stored = out.pop(CHECKSUM, None)
    if stored is None:
        raise CorruptCacheFile(f"cache file {path} carries no checksum")
    if str(stored) != array_digest(out):
        raise CorruptCacheFile(f"cache file {path}: contents do not match the stored checksum")
    return out
