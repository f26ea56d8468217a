"""Symmetric third-order sums by one matrix product over the pairs (session 19): ``sum_n (w d)_i d_j d_k``.

A plain three-operand ``einsum`` runs numpy's generic loop over the D^3 products per point (and ``optimize=True``
searches a path on every call). Here the pairs j <= k of each point are formed once, ``(n, D(D+1)/2)``, and
``(w d)^T`` times them is one BLAS product ``(D, n) x (n, D(D+1)/2)``; every (i, j, k) is then read from the entry
of its sorted triple (a <= b <= c: ``a P + pair(b, c)``), so the tensor is exactly symmetric. Used by the two-pass
third central moment of :mod:`rftheory.density._streaming` and the truncated sums of
:mod:`rftheory.density.neighbours`.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=16)
def pair_index(D: int) -> tuple:
    """``(jj, kk, flat)``: the pairs j <= k (``np.triu_indices(D)``) and, for every (i, j, k) in C order, the flat
    index into a (D, pairs) array of its sorted triple's entry."""
    jj, kk = np.triu_indices(D)
    pos = np.zeros((D, D), dtype=np.intp)
    pos[jj, kk] = np.arange(jj.size)
    pos[kk, jj] = np.arange(jj.size)
    srt = np.sort(np.stack(np.meshgrid(np.arange(D), np.arange(D), np.arange(D), indexing="ij")), axis=0)
    flat = (srt[0] * jj.size + pos[srt[1], srt[2]]).ravel()
    for a in (jj, kk, flat):
        a.setflags(write=False)
    return jj, kk, flat


def pair_products(d: np.ndarray) -> np.ndarray:
    """``d_j d_k`` for the pairs j <= k: (..., n, D) -> (..., n, D(D+1)/2)."""
    jj, kk, _ = pair_index(d.shape[-1])
    return d[..., jj] * d[..., kk]


def symmetric(acc: np.ndarray) -> np.ndarray:
    """(..., D, pairs) sums ``sum_n (w d)_i d_j d_k`` -> the exactly symmetric (..., D, D, D) tensor."""
    D = acc.shape[-2]
    _, _, flat = pair_index(D)
    lead = acc.shape[:-2]
    return acc.reshape(lead + (-1,))[..., flat].reshape(lead + (D, D, D))


def third_sum(w: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``sum_n w_n d_ni d_nj d_nk`` for d (n, D), w (n,): (D, D, D), exactly symmetric."""
    return symmetric((d * w[:, None]).T @ pair_products(d))
