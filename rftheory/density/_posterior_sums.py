"""Per-chunk sums of the posterior moments used by :class:`rftheory.density.empirical.EmpiricalDensity`: the scatter
centred at each query's heaviest point (precise path), the shift of third-moment sums to a new origin and the
third central moment from raw moments (fast path). Index arrays: ``triples`` the unique (i <= j <= k),
``pair_index[i, j]`` the column of the pair (i, j) among the unique i <= j."""
from __future__ import annotations

import numpy as np


def centred_scatter(Xb, e, Wb, jb, block_bytes: int):
    """Weighted mean and scatter of a chunk, each query's sums centred at its heaviest point x_*:
    mu - x_* and x_i - mu keep full relative precision even when the other weights are 1e-30
    (no eps*|x| residue that would swamp a tiny covariance and turn its eigenvectors). Queries are taken in
    slices whose (q, n, D) temporaries stay under ``block_bytes``."""
    q, D = e.shape[0], Xb.shape[1]
    mub = np.empty((q, D))
    Cb = np.empty((q, D, D))
    step = max(1, block_bytes // (16 * Xb.shape[0] * D))
    for s0 in range(0, q, step):
        ss = slice(s0, s0 + step)
        xs = Xb[jb[ss]]
        Y = Xb[None, :, :] - xs[:, None, :]
        dm = np.einsum("qn,qnd->qd", e[ss], Y) / Wb[ss, None]
        mub[ss] = xs + dm
        d = Y - dm[:, None, :]
        Cb[ss] = np.matmul(np.swapaxes(d * e[ss, :, None], 1, 2), d)  # sum_n e d d^T (batched product)
    return mub, Cb


def shift_plan(c, triples, pair_index):
    """The per-origin factors of :func:`shift_third` for the origin c (D,): computed once per data chunk (its
    mean) and reused by every query block, the same products as written out in ``shift_third``."""
    i3, j3, k3 = triples
    p = pair_index
    return (p[j3, k3], p[i3, k3], p[i3, j3], c[i3], c[j3], c[k3], c[i3] * c[j3], c[i3] * c[k3], c[j3] * c[k3],
            c[i3] * c[j3] * c[k3], i3, j3, k3)


def shift_third(S3, S2, S1, S0, c, triples=None, pair_index=None, plan=None):
    """Sums of ``(c + y)^{(x)3}`` (unique i <= j <= k) from the sums of y, y y and y y y (weights e).
    ``plan`` is ``shift_plan(c, triples, pair_index)`` (else it is computed here)."""
    if plan is None:
        plan = shift_plan(c, triples, pair_index)
    pjk, pik, pij, ci, cj, ck, cij, cik, cjk, cijk, i3, j3, k3 = plan
    out = S3.copy()
    # (c+y)_i (c+y)_j (c+y)_k = y_i y_j y_k + [c_i y_j y_k + c_j y_i y_k + c_k y_i y_j]
    #                            + [c_i c_j y_k + c_i c_k y_j + c_j c_k y_i] + c_i c_j c_k
    out += ci * S2[:, pjk] + cj * S2[:, pik] + ck * S2[:, pij]
    out += cij * S1[:, k3] + cik * S1[:, j3] + cjk * S1[:, i3]
    out += cijk * S0[:, None]
    return out


def central_third(r3, mu, cov, triples, triple_index=None):
    """kappa_ijk = E[x_i x_j x_k] - (mu_i C_jk + mu_j C_ik + mu_k C_ij) - mu_i mu_j mu_k (full tensor).
    ``triple_index`` (D, D, D), the column of the sorted (i, j, k) among ``triples``, fills the tensor by one
    gather (the same values as the six permuted assignments)."""
    D = mu.shape[1]
    i3, j3, k3 = triples
    # cov[:, j, k] read through the flat index j D + k (one gather instead of a two-array fancy index)
    cf = cov.reshape(cov.shape[0], D * D)
    mi, mj, mk = mu[:, i3], mu[:, j3], mu[:, k3]
    u = r3 - (mi * cf[:, j3 * D + k3] + mj * cf[:, i3 * D + k3] + mk * cf[:, i3 * D + j3]) - mi * mj * mk
    if triple_index is not None:
        return u[:, triple_index]
    out = np.empty((mu.shape[0], D, D, D))
    for a_, b_, c_ in ((i3, j3, k3), (i3, k3, j3), (j3, i3, k3), (j3, k3, i3), (k3, i3, j3), (k3, j3, i3)):
        out[:, a_, b_, c_] = u
    return out
