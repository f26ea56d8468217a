"""The moment columns of the streaming pass's data chunks and their caches (``rftheory.density._streaming``).

A chunk's columns are ``[1, y, y_i y_j (i <= j), y_i y_j y_k (i <= j <= k)]`` with y the chunk's points about
their own mean: one product of the weights with them gives every weighted sum of the pass's fast path. They
depend on the data alone, so they are kept: on the density object up to ``FEATURE_KEEP_BYTES`` in all (across
calls), else in a dict of the call up to ``FEATURE_CACHE_BYTES``, else built again by each query block.

Issue 17 (the two-thread ridge residual): the query blocks used to build a missing chunk's columns themselves.
On two query threads the two first blocks then built the same chunk at once, and both counted its bytes
against the keep budget, so at n = 10^4, D = 32 the last chunk was never kept and every later call built it
again, twice at once on two threads. :func:`prepare` now builds every missing chunk once, before the blocks
start (one chunk per query thread, stored by the calling thread), and :func:`keep` counts a chunk only once
(under a lock). The columns are built by the same code whichever thread builds them: the same bits. Private.
"""
from __future__ import annotations

import threading

import numpy as np

from .._blas import run_blocks as _run_blocks

# moment columns of all chunks are kept for the duration of one moments() call up to this size
FEATURE_CACHE_BYTES = 256 * 2**20
# ... and kept on the density object across calls up to this total
FEATURE_KEEP_BYTES = 64 * 2**20
_LOCK = threading.Lock()


def build(dens, n0, nc, want_cov, want_k3):
    """``(xbar, F)`` of the chunk of ``nc`` points from ``n0``: its mean and its columns (a new array)."""
    Xb = dens._xc[n0:n0 + nc]
    xbar = Xb.mean(axis=0)
    Y = Xb - xbar
    cols = [np.ones((Y.shape[0], 1)), Y]
    if want_cov:
        i2, j2 = dens._pairs
        cols.append(Y[:, i2] * Y[:, j2])
    if want_k3:
        i3, j3, k3 = dens._triples
        cols.append(Y[:, i3] * Y[:, j3] * Y[:, k3])
    return xbar, np.concatenate(cols, axis=1)


def keep(dens, key, out, cache):
    """Store ``out`` on the density if the keep budget allows (each key counted once), else in ``cache`` (the
    call's dict, or None: not stored). Returns the stored entry (the first one stored for the key)."""
    nb = out[1].nbytes
    with _LOCK:
        have = dens._feat_cache.get(key)
        if have is not None:
            return have
        if dens._feat_bytes + nb <= FEATURE_KEEP_BYTES:  # kept on the object (read-only data)
            dens._feat_cache[key] = out
            dens._feat_bytes += nb
            return out
        if cache is not None:
            return cache.setdefault(key[0], out)
    return out


def lookup(dens, n0, nc, want_cov, want_k3, cache=None):
    """The chunk's ``(xbar, F)``: kept, in the call's cache, or built (and stored by :func:`keep`)."""
    key = (n0, nc, want_cov, want_k3)
    got = dens._feat_cache.get(key)
    if got is not None:
        return got
    if cache is not None and n0 in cache:
        return cache[n0]
    return keep(dens, key, build(dens, n0, nc, want_cov, want_k3), cache)


def prepare(dens, want_cov, want_k3, cache) -> None:
    """Build, before a call's query blocks start, every chunk's columns that the call will find stored (kept or
    in ``cache``, the call's dict; with ``cache`` None the blocks build their own and nothing is done): one
    chunk per task on the query threads, stored here in chunk order."""
    if cache is None:
        return
    nc, n = dens.chunk_size, dens.n
    todo = [n0 for n0 in range(0, n, nc)
            if (n0, min(nc, n - n0), want_cov, want_k3) not in dens._feat_cache and n0 not in cache]
    if not todo:
        return
    built = {}

    def one(n0):
        built[n0] = build(dens, n0, min(nc, n - n0), want_cov, want_k3)

    _run_blocks(one, todo)
    for n0 in todo:
        keep(dens, (n0, min(nc, n - n0), want_cov, want_k3), built[n0], cache)
