"""Exact nearest neighbours for the memorization metric and `rftheory analyze`: the k nearest rows
(:func:`nearest_rows`) and the nearest *distinct* training points (:class:`DistinctNeighbours`,
:func:`nearest_distinct`), by a k-d tree at low dimension and blocked brute force above it.
:mod:`rftheory.dynamics.motion` re-exports every public name here.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["KDTREE_MAX_D", "nearest_rows", "DistinctNeighbours", "nearest_distinct"]


# nearest neighbours: a k-d tree up to this dimension, blocked exact brute force (BLAS) above it. Measured
# (bench/bench_analyze.py, n = 1e5, 2000 queries, k = 2): cKDTree 0.19 s / 0.72 s at D = 3 / 8 against
# 2.5 s / 2.1 s brute force; at D = 32 cKDTree 82 s (Gaussian data) and 19 s (2-dim latent + noise) against
# 2.9 s / 3.2 s brute force.
KDTREE_MAX_D = 10
_NN_BLOCK_BYTES = 32 * 2**20  # largest (query block, data block) distance matrix of the brute-force path


def _brute_knn(Q, X, k):
    """Exact k nearest rows of X for each row of Q by blocks: memory ``_NN_BLOCK_BYTES`` plus (m, k).
    Distances from |q|^2 + |x|^2 - 2 q.x (one matrix product per block) select k + 2 candidates; their
    distances are then recomputed as |q - x| (no cancellation), and re-sorted."""
    m, D = Q.shape
    n = X.shape[0]
    kc = min(k + 2, n)
    xx = np.einsum("nd,nd->n", X, X)
    qb = max(1, min(m, 4096))
    nb = max(kc, _NN_BLOCK_BYTES // (8 * qb))
    dist = np.empty((m, k))
    idx = np.empty((m, k), dtype=np.int64)
    for q0 in range(0, m, qb):
        Qb = Q[q0:q0 + qb]
        best_d = np.full((Qb.shape[0], 0), np.inf)
        best_i = np.zeros((Qb.shape[0], 0), dtype=np.int64)
        for n0 in range(0, n, nb):
            Xb = X[n0:n0 + nb]
            d2 = xx[n0:n0 + nb][None, :] - 2.0 * (Qb @ Xb.T)  # + |q|^2, the same for every column
            kk = min(kc, Xb.shape[0])
            part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            cand_d = np.take_along_axis(d2, part, axis=1)
            best_d = np.concatenate([best_d, cand_d], axis=1)
            best_i = np.concatenate([best_i, part + n0], axis=1)
            if best_d.shape[1] > kc:
                keep = np.argpartition(best_d, kc - 1, axis=1)[:, :kc]
                best_d = np.take_along_axis(best_d, keep, axis=1)
                best_i = np.take_along_axis(best_i, keep, axis=1)
        exact = np.linalg.norm(Qb[:, None, :] - X[best_i], axis=-1)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        dist[q0:q0 + qb] = np.take_along_axis(exact, order, axis=1)
        idx[q0:q0 + qb] = np.take_along_axis(best_i, order, axis=1)
    return dist, idx


def nearest_rows(queries, data, k: int):
    """Distances ``(m, k)`` (ascending) and indices ``(m, k)`` of the k nearest rows of ``data`` (duplicates
    not merged): a k-d tree for D <= KDTREE_MAX_D, blocked brute force above (memory O(block + m k)).

    Parameters
    ----------
    queries : array_like, shape (m, D)
        Query points.
    data : array_like, shape (n, D)
        The rows searched (duplicated rows count separately).
    k : int
        Number of neighbours, 1 <= k <= n.

    Returns
    -------
    dist : numpy.ndarray, shape (m, k)
        Euclidean distances to the k nearest rows, ascending along each row (the data's length unit).
    idx : numpy.ndarray of int, shape (m, k)
        Their row indices into ``data``.

    Raises
    ------
    ValueError
        If queries or data is not 2-D, their dimensions D differ, or k is outside [1, n].

    Notes
    -----
    Exact either way: scipy's cKDTree for D <= KDTREE_MAX_D (10); above it, blocked brute force whose largest
    distance block is about 32 MiB, with the candidates' distances recomputed as ``|q - x|``.
    """
    X = np.asarray(data, dtype=np.float64)
    Q = np.asarray(queries, dtype=np.float64)
    if X.ndim != 2 or Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise ValueError(f"queries {Q.shape} and data {X.shape} must be (m, D) and (n, D) with the same D")
    k = int(k)
    if not 1 <= k <= X.shape[0]:
        raise ValueError(f"k must lie in [1, {X.shape[0]}] (the number of data rows); got {k}")
    if X.shape[1] <= KDTREE_MAX_D:
        dist, idx = cKDTree(X).query(Q, k=k)
        return np.asarray(dist).reshape(-1, k), np.asarray(idx).reshape(-1, k)
    return _brute_knn(Q, X, k)


class DistinctNeighbours:
    """The distinct rows of a data set (duplicates merged once, at construction) for repeated
    :meth:`query` calls; ``first`` maps a distinct row to its first occurrence in the data.

    Parameters
    ----------
    data : array_like, shape (n, D)
        The data set (converted to float64).

    Attributes
    ----------
    rows : numpy.ndarray, shape (n_distinct, D)
        The distinct rows, in lexicographic order (``numpy.unique(data, axis=0)``).
    first : numpy.ndarray of int, shape (n_distinct,)
        Index in ``data`` of each distinct row's first occurrence.
    n_distinct : int
        Number of distinct rows.

    Raises
    ------
    ValueError
        If data is not 2-D.

    Notes
    -----
    The k-d tree (D <= KDTREE_MAX_D) is built on the first :meth:`query` and reused by later ones.
    """

    def __init__(self, data):
        X = np.asarray(data, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"data must have shape (n, D); got {X.shape}")
        self.rows, self.first = np.unique(X, axis=0, return_index=True)
        self._tree = None

    @property
    def n_distinct(self) -> int:
        return self.rows.shape[0]

    def query(self, queries, k: int = 2, self_query: bool = False):
        """The k nearest distinct rows of each query (as :func:`nearest_distinct`, without re-merging).

        Parameters
        ----------
        queries : array_like, shape (m, D)
            Query points.
        k : int, default 2
            Number of distinct neighbours per query, at most ``n_distinct`` (``n_distinct - 1`` with
            ``self_query``).
        self_query : bool, default False
            The queries are rows of the data: each one's own row (the nearest, at distance 0) is dropped, so
            the k nearest distinct *other* rows are returned.

        Returns
        -------
        dist : numpy.ndarray, shape (m, k)
            Euclidean distances, ascending along each row (the data's length unit).
        idx : numpy.ndarray of int, shape (m, k)
            Indices into the original data (the first occurrence of each distinct row).

        Raises
        ------
        ValueError
            If there are fewer than k distinct rows (k + 1 with ``self_query``), or queries is not of shape
            (m, D).
        """
        Q = np.asarray(queries, dtype=np.float64)
        kk = int(k) + 1 if self_query else int(k)
        if self.n_distinct < kk:
            raise ValueError(f"data have {self.n_distinct} distinct point(s); {kk} are needed")
        if Q.ndim != 2 or Q.shape[1] != self.rows.shape[1]:
            raise ValueError(f"queries must have shape (m, {self.rows.shape[1]}); got {Q.shape}")
        if self.rows.shape[1] <= KDTREE_MAX_D:
            if self._tree is None:
                self._tree = cKDTree(self.rows)
            dist, idx = self._tree.query(Q, k=kk)
            dist, idx = np.asarray(dist).reshape(-1, kk), np.asarray(idx).reshape(-1, kk)
        else:
            dist, idx = _brute_knn(Q, self.rows, kk)
        if self_query:  # the query's own row is at distance 0, first
            dist, idx = dist[:, 1:], idx[:, 1:]
        return dist, self.first[idx]


def nearest_distinct(queries, data, k: int = 2, self_query: bool = False):
    """Distances ``(m, k)`` (ascending) and indices ``(m, k)`` into ``data`` of the k nearest *distinct* rows
    of ``data`` (duplicated rows count once; the index is their first occurrence).

    Parameters
    ----------
    queries : array_like, shape (m, D)
        Query points.
    data : array_like, shape (n, D)
        The data searched; duplicated rows are merged.
    k : int, default 2
        Number of distinct neighbours per query, at most the number of distinct rows (one less with
        ``self_query``).
    self_query : bool, default False
        The queries are rows of ``data`` and each one's own row is skipped (leave-one-out: the nearest
        distinct *other* point).

    Returns
    -------
    dist : numpy.ndarray, shape (m, k)
        Euclidean distances, ascending along each row (the data's length unit).
    idx : numpy.ndarray of int, shape (m, k)
        Indices into ``data`` (the first occurrence of each distinct row).

    Raises
    ------
    ValueError
        If queries or data is not 2-D, their dimensions D differ, or data has fewer than k distinct rows
        (k + 1 with ``self_query``).

    Notes
    -----
    Exact: a k-d tree (scipy cKDTree) for D <= KDTREE_MAX_D, blocked brute force above; beyond the inputs,
    merging the duplicates sorts a copy of the data, and the search then holds the distinct rows, one
    brute-force block (about 32 MiB) and the (m, k) results. For repeated queries against the same data use
    :class:`DistinctNeighbours` (the duplicates are merged once).
    """
    X = np.asarray(data, dtype=np.float64)
    Q = np.asarray(queries, dtype=np.float64)
    if X.ndim != 2 or Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise ValueError(f"queries {Q.shape} and data {X.shape} must be (m, D) and (n, D) with the same D")
    return DistinctNeighbours(X).query(Q, k, self_query)
