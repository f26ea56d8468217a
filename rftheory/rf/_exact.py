"""The exact (closed-form) moment assembly in fixed blocks of (point, time node) steps (rf/moments.py).

The steps ``s = q n + i`` (time node q, training point i) are cut into blocks of ``block_steps`` consecutive
steps (a multiple of ``batch``), fixed by the problem alone -- never by the number of threads, processes or
dask workers. Each block's partial sums (U's diagonal, U's upper triangle, V, c0) start from zero and are
computed the same way wherever they run; the caller adds the partials in block order. Hence the serial and
the distributed assemblies give the same bits (rf/_distributed.py runs the blocks as dask tasks).

:class:`ExactSpec` holds everything a block needs (picklable: it is what a dask worker receives); its
:class:`_Context` (norms, projections, the embedding's c(t) and the ReLU pair sum: rf/_mehler.py's series,
one GEMM per order over the block's steps, plus a short quadrature for the pairs with |rho| > rho_c) is built
once per process and memoised by the spec's token (on dask workers; the last 2 are kept, so a long-lived
cluster holds at most two -- ~100 MB each at p = 1000 -- per worker). A ReLU block's pair sum is one call
over all its steps, so larger blocks make larger (more efficient) products.

Loss weights assembled together share the steps' per-unit terms, but every product that sums over steps is
taken per weight (U's diagonal, c0, V, the series' GEMMs and the far pairs' sums on both engines), so a weight's
bits do not depend on the weights assembled beside it (tests/test_mehler.py). The "kernel" baseline
(``RELU_PAIRS``) does not keep that: it routes the pairs by all weights' sums together.
"""
from __future__ import annotations

import uuid

import numpy as np

from . import _mehler
from .embedding import fourier_embedding

BLOCK_STEPS = 256         # (point, time node) steps per block (rounded to whole batches)
RELU_PAIRS = "mehler"     # ReLU pair sum: "mehler" (rf/_mehler.py) or "kernel" (the hoisted quadrature of
                          # rf/_relu_pair_kernel.py for every pair, the method before; bench/bench_rf.py's baseline)
_CTX: dict = {}           # token -> _Context, this process's memo (the latest few specs)


class ExactSpec:
    """The inputs of an exact assembly (restricted to the chosen units), picklable.

    Parameters
    ----------
    act : Activation
    Wx, Wt, b : numpy.ndarray
        The model's weights restricted to the units.
    K, T_emb, embedding
        The Fourier embedding.
    data : numpy.ndarray, shape (n, D)
    nodes : numpy.ndarray, shape (Q,)
        Time nodes.
    a_all, h_all : numpy.ndarray, shape (Q,)
        The schedule at the nodes.
    wq : numpy.ndarray, shape (Q, nw)
        Quadrature weight times each loss weight.
    parametrization : str
    batch : int
        Steps per kernel call (ReLU); blocks hold whole batches.
    block_steps : int
        Steps per block (rounded up to whole batches).
    """

    def __init__(self, act, Wx, Wt, b, K, T_emb, embedding, data, nodes, a_all, h_all, wq, parametrization,
                 batch, block_steps=BLOCK_STEPS):
        self.act, self.Wx, self.Wt, self.b = act, Wx, Wt, b
        self.K, self.T_emb, self.embedding = K, T_emb, embedding
        self.data, self.nodes, self.a_all, self.h_all, self.wq = data, nodes, a_all, h_all, wq
        self.parametrization = parametrization
        self.relu = act.name == "relu"
        self.batch = int(batch) if self.relu else 1
        per = max(1, -(-int(block_steps) // self.batch))
        self.block_steps = per * self.batch
        self.n_steps = nodes.size * data.shape[0]
        self.token = uuid.uuid4().hex

    def blocks(self) -> list:
        """The (start, stop) step ranges of the blocks, in order."""
        return [(s, min(s + self.block_steps, self.n_steps)) for s in range(0, self.n_steps, self.block_steps)]


class _Context:
    def __init__(self, spec: ExactSpec):
        Wx = spec.Wx
        self.norms = np.sqrt(np.einsum("jd,jd->j", Wx, Wx))
        self.proj = spec.data @ Wx.T
        self.C = fourier_embedding(spec.nodes, spec.K, spec.T_emb, spec.embedding) @ spec.Wt.T + spec.b[None, :]
        p = Wx.shape[0]
        self.jj, self.kk = np.triu_indices(p, k=1)
        rho = np.clip((Wx[self.jj] * Wx[self.kk]).sum(1) / (self.norms[self.jj] * self.norms[self.kk]), -1.0, 1.0)
        self.mehler = None
        if spec.relu and RELU_PAIRS == "mehler":   # the series (GEMMs) for all pairs + a quadrature where |rho| > rho_c
            self.mehler = _mehler.MehlerPairs(rho, p, perm=_mehler.unit_order(Wx))
        else:
            self.kern = spec.act.pair_kernel(rho)
        self.relu = spec.relu


def context(spec: ExactSpec) -> _Context:
    """This process's context for ``spec`` (built on first use, memoised by token; the last 2 are kept)."""
    ctx = _CTX.get(spec.token)
    if ctx is None:
        ctx = _Context(spec)
        while len(_CTX) >= 2:
            _CTX.pop(next(iter(_CTX)))
        _CTX[spec.token] = ctx
    return ctx


def block(spec: ExactSpec, lo: int, hi: int, threads: int = 1, ctx: _Context | None = None):
    """Partial sums of steps lo..hi-1, from zero: (U_diag (nw, p), U_off (nw, P), V (nw, D, p), c0 (nw,)).

    ``ctx``: the spec's context (the serial caller builds it once and drops it after; a dask task uses this
    process's memo, :func:`context`)."""
    ctx = context(spec) if ctx is None else ctx
    act, Wx, data = spec.act, spec.Wx, spec.data
    p, D = Wx.shape
    n = data.shape[0]
    nw = spec.wq.shape[1]
    U_diag = np.zeros((nw, p))
    U_off = np.zeros((nw, ctx.jj.size))
    V = np.zeros((nw, D, p))
    c0 = np.zeros(nw)
    rel = ([], [], [])                         # ReLU: alpha, s, w of the whole block, for one Mehler sum
    for st in range(lo, hi, spec.batch):
        idx = np.arange(st, min(st + spec.batch, hi))
        qb, ib = idx // n, idx % n
        a, h, w = spec.a_all[qb], spec.h_all[qb], spec.wq[qb] / n                  # w (B, nw)
        s = np.sqrt(h)[:, None] * ctx.norms[None, :]                                 # (B, p)
        mu = a[:, None] * ctx.proj[ib] + ctx.C[qb]
        y = a[:, None] * data[ib]                                                    # (B, D)
        if spec.parametrization == "posterior_mean":
            yy = np.einsum("bd,bd->b", y, y) / D
            for k in range(nw):
                c0[k] += w[:, k] @ yy
            m1 = act.mean(mu, s)
            for k in range(nw):
                V[k] += (w[:, k, None] * y).T @ m1
        else:
            for k in range(nw):
                c0[k] += w[:, k] @ (1.0 / h)
            md = act.mean_deriv(mu, s)
            for k in range(nw):
                V[k] -= Wx.T * (w[:, k, None] * md).sum(0)[None, :]
        sec = act.second(mu, s)
        for k in range(nw):  # one product per weight: a weight's bits do not depend on its companions
            U_diag[k] += w[:, k] @ sec
        if ctx.mehler is not None:
            for acc, x in zip(rel, (mu / s, s, w)):
                acc.append(x)
        elif ctx.relu:
            U_off += ctx.kern.weighted_sum(ctx.jj, ctx.kk, mu / s, s, w, threads=threads).T
        else:
            jj, kk = ctx.jj, ctx.kk
            for b in range(idx.size):
                U_off += w[b][:, None] * ctx.kern(mu[b, jj], s[b, jj], mu[b, kk], s[b, kk])[None, :]
    if rel[0]:
        alpha, sc, wb = (np.concatenate(x) for x in rel)
        U_off += ctx.mehler.weighted_sum(alpha, sc, wb, batch=spec.batch, threads=threads).T
    return U_diag, U_off, V, c0


def task(spec: ExactSpec, lo: int, hi: int, threads: int = 1):
    """:func:`block` as a dask task (module-level, importable by a worker)."""
    return block(spec, lo, hi, threads)


def add_partials(parts, shapes):
    """Sum the block partials in the order given (the order fixes the bits)."""
    acc = [np.zeros(s) for s in shapes]
    for part in parts:
        for a, x in zip(acc, part):
            a += x
    return acc
