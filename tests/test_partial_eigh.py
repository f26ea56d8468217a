"""The top-k eigenpairs (LAPACK dsyevr by index, ``density._partial_eigh``) and ``ridge.residual``'s partial frame
(issue 17): agreement with the full ``np.linalg.eigh`` to round-off (tolerances from eps |C|), bits independent of
the blocks and the thread count, and the residual's lazy frame bit for bit the eager ``ridge.frame``."""
import dataclasses
import pickle

import numpy as np
import pytest

from rftheory import EmpiricalDensity, ridge
from rftheory._blas import set_query_threads
from rftheory.density import _partial_eigh, _streaming
from rftheory.geometry import _ridge_frame
import rftheory.geometry.ridge as ridge_mod

EPS = np.finfo(np.float64).eps


def _stack(rng, m, D, scale=1.0, rank=None):
    A = rng.standard_normal((m, D, rank or D + 3))
    return scale * (A @ A.transpose(0, 2, 1))


def _check_pairs(C, k, w, v):
    """Eigenvalues within 4 D eps |C|_2 of the full decomposition's top k; eigenvectors orthonormal to 4 D eps
    and with residual |C v - w v| <= 4 D eps |C|_2 (LAPACK's normwise backward stability, with room)."""
    m, D = C.shape[0], C.shape[-1]
    wf, vf = np.linalg.eigh(C)
    nrm = np.abs(wf).max(axis=1)                                   # |C|_2
    assert w.shape == (m, k) and v.shape == (m, D, k)
    assert np.all(np.abs(w - wf[:, D - k:]) <= 4 * D * EPS * nrm[:, None])
    gram = np.einsum("mdi,mdj->mij", v, v)
    assert np.all(np.abs(gram - np.eye(k)) <= 4 * D * EPS)
    res = np.einsum("mij,mjk->mik", C, v) - v * w[:, None, :]
    assert np.all(np.linalg.norm(res / nrm[:, None, None], axis=1) <= 4 * D * EPS)   # (scaled: no overflow)
    return wf, vf


@pytest.mark.parametrize("D,k", [(3, 1), (8, 2), (32, 1), (32, 2), (32, 4), (24, 24)])
def test_top_pairs_agree_with_full_eigh_to_roundoff(D, k):
    rng = np.random.default_rng(D * 10 + k)
    C = _stack(rng, 40, D)
    w, v = _partial_eigh.top_eigh(C, k)
    wf, vf = _check_pairs(C, k, w, v)
    # with separated eigenvalues the vectors are the full decomposition's up to sign: |v . v_full| = 1 within
    # eps |C| / gap (first-order perturbation), with room 4 D
    gap = np.min(np.diff(wf[:, D - k - 1 if k < D else 0:], axis=1), axis=1)
    dots = np.abs(np.einsum("mdk,mdk->mk", v, vf[:, :, D - k:]))
    assert np.all(np.abs(dots - 1) <= 4 * D * EPS * np.abs(wf).max(axis=1)[:, None] / gap[:, None])


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300 / 64])
def test_top_pairs_at_extreme_scales_and_repeated_eigenvalues(scale):
    rng = np.random.default_rng(7)
    C = np.concatenate([_stack(rng, 6, 32, scale / 40), np.broadcast_to(scale * np.eye(32), (2, 32, 32)),
                        _stack(rng, 3, 32, scale / 40, rank=2)])     # low rank: a zero eigenvalue 30 times
    w, v = _partial_eigh.top_eigh(C, 3)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(v))
    _check_pairs(C, 3, w, v)


def test_each_matrix_alone_same_bits_and_both_interfaces_agree(monkeypatch):
    rng = np.random.default_rng(3)
    C = _stack(rng, 30, 32)
    w, v = _partial_eigh.top_eigh(C, 2)
    for i in (0, 7, 29):   # a matrix alone gives its bits in the stack
        wi, vi = _partial_eigh.top_eigh(C[i:i + 1], 2)
        assert np.array_equal(wi[0], w[i]) and np.array_equal(vi[0], v[i])
    # scipy's wrapper (GIL held), used where the function pointer is not available: the same routine, same bits
    monkeypatch.setitem(_partial_eigh._STATE, "fn", False)
    w2, v2 = _partial_eigh.top_eigh(C, 2)
    assert np.array_equal(w, w2) and np.array_equal(v, v2)


def test_reads_the_lower_triangle_and_refuses_nothing_silently():
    rng = np.random.default_rng(4)
    C = _stack(rng, 4, 32)
    junk = C.copy()
    iu = np.triu_indices(32, 1)
    junk[:, iu[0], iu[1]] = 1e3               # only the upper triangle changed: eigh reads the lower one
    w, v = _partial_eigh.top_eigh(C, 2)
    wj, vj = _partial_eigh.top_eigh(junk, 2)
    assert np.array_equal(w, wj) and np.array_equal(v, vj)
    C[1, 3, 2] = np.nan                       # a non-finite matrix: NaN rows (no LAPACK call), the others unchanged
    wn, vn = _partial_eigh.top_eigh(C, 2)
    assert np.all(np.isnan(wn[1])) and np.all(np.isnan(vn[1]))
    assert np.array_equal(wn[[0, 2, 3]], w[[0, 2, 3]]) and np.array_equal(vn[[0, 2, 3]], v[[0, 2, 3]])
    with pytest.raises(ValueError, match="k <= D"):
        _partial_eigh.top_eigh(C, 33)


# ----------------------------------------------------------------------------- ridge.residual's partial frame
def _workload(m, D=32, n=600, seed=5):
    rng = np.random.default_rng(seed)
    scales = np.linspace(2.0, 0.3, D)                 # a decaying spectrum: distinct eigenvalues
    dens = EmpiricalDensity(rng.normal(size=(n, D)) * scales)
    return dens, dens.sample(0.4, m, rng), 0.4


def _eager(dens, x, t, d):
    """The residual as computed before the partial path: the full frame, |E^T s|."""
    fr = ridge.frame(dens, x, t, d)
    return _ridge_frame._row_norms(np.einsum("mdk,md->mk", fr.normal, fr.score)), fr


@pytest.mark.parametrize("m,blocks", [(60, False), (700, True)])
@pytest.mark.parametrize("D,d", [(32, 0), (32, 1), (48, 3)])
def test_residual_partial_agrees_and_lazy_frame_is_the_eager_frame(m, blocks, D, d, monkeypatch):
    if blocks:   # several query blocks: each block's thread decomposes its own covariances
        monkeypatch.setattr(_streaming, "_BLOCK_BYTES", 2**20)
    dens, x, t = _workload(m, D)
    assert _ridge_frame._partial_applies(dens, x, d)
    res = ridge.residual(dens, x, t, d)
    assert type(res.frame) is _ridge_frame._LazyFrame and "_src" in res.frame.__dict__   # nothing computed yet
    r_old, fr = _eager(dens, x, t, d)
    # the lazy frame, once read, is the eager frame bit for bit (every field)
    for f in dataclasses.fields(ridge.Frame):
        a, b = getattr(res.frame, f.name), getattr(fr, f.name)
        assert (a is None and b is None) or np.array_equal(a, b), f.name
    assert isinstance(res.frame, ridge.Frame) and "_src" not in res.frame.__dict__
    # residual |s - V V^T s| against |E^T s|: both within eps |s| of the exact value, up to the tangent
    # space's own round-off, eps |C| / (mu_d - mu_{d+1}) (first order); room 4 D
    s = np.linalg.norm(fr.score, axis=1)
    C = dens.posterior_cov(x, t)
    mu = np.linalg.eigvalsh(C)[:, ::-1]
    cond = 1.0 + (mu[:, 0] / (mu[:, d - 1] - mu[:, d]) if d else 0.0)
    assert np.all(np.abs(res.residual - r_old) <= 4 * D * EPS * s * cond)
    # beta, eigengap: (a/h)^2 times eigenvalues of C within 4 D eps |C|
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    tol = (a / h) ** 2 * 4 * D * EPS * mu[:, 0]
    # the flags: equal wherever the full frame's beta (eigengap) is farther than that from the threshold
    far = np.abs(fr.beta) > tol
    assert np.array_equal(res.curvature_ok[far], (fr.beta > 0)[far])
    bmin = float(np.median(np.minimum(fr.beta, fr.eigengap)))   # about half the points regular
    res2 = ridge.residual(dens, x, t, d, beta_min=bmin)
    differ = res2.regular != fr.regular(bmin)
    assert np.all((np.abs(fr.beta - bmin) <= tol) | (np.abs(fr.eigengap - bmin) <= tol) | ~differ)
    assert res2.regular.any() and not res2.regular.all()


def test_partial_beta_and_gap_within_roundoff_of_the_full(monkeypatch):
    """The partial path's beta and eigengap themselves (not only the flags) against the full frame's."""
    dens, x, t = _workload(300)
    got = {}
    real = _ridge_frame._residual_partial

    def spy(*args):
        out = real(*args)
        got["beta"], got["gap"] = out[1], out[2]
        return out

    monkeypatch.setattr(ridge_mod, "_residual_partial", spy)
    ridge.residual(dens, x, t, 1)
    fr = ridge.frame(dens, x, t, 1)
    a, h = dens.schedule.a(t), dens.schedule.h(t)
    mu1 = np.linalg.eigvalsh(dens.posterior_cov(x, t))[:, -1]
    tol = (a / h) ** 2 * 4 * 32 * EPS * mu1
    assert np.all(np.abs(got["beta"] - fr.beta) <= tol)
    assert np.all(np.abs(got["gap"] - fr.eigengap) <= 2 * tol)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_residual_partial_bits_do_not_depend_on_threads(threads, monkeypatch):
    monkeypatch.setattr(_streaming, "_BLOCK_BYTES", 2**20)
    monkeypatch.setattr(_ridge_frame, "_EIGH_BLOCK", 64)
    dens, x, t = _workload(500)
    old = set_query_threads(1)
    try:
        ref = ridge.residual(dens, x, t, 1)
        set_query_threads(threads)
        got = ridge.residual(dens, x, t, 1)
    finally:
        set_query_threads(old)
    assert np.array_equal(got.residual, ref.residual) and np.array_equal(got.regular, ref.regular)
    assert np.array_equal(got.frame.vectors, ref.frame.vectors)


def test_lazy_frame_pickles_replaces_and_keeps_other_paths():
    dens, x, t = _workload(20)
    res = ridge.residual(dens, x, t, 1)
    back = pickle.loads(pickle.dumps(res))          # the pickle holds the full frame
    assert "_src" not in back.frame.__dict__
    fr = ridge.frame(dens, x, t, 1)
    assert np.array_equal(back.frame.normal, fr.normal) and np.array_equal(back.residual, res.residual)
    q = dataclasses.replace(ridge.residual(dens, x, t, 1).frame, d=1)
    assert np.array_equal(q.eigenvalues, fr.eigenvalues) and np.array_equal(q.tangent, fr.tangent)
    res.frame.beta = res.frame.beta * 2               # an assignment replaces that field only
    assert np.array_equal(res.frame.beta, 2 * fr.beta) and np.array_equal(res.frame.vectors, fr.vectors)
    tab = ridge.residual(dens, x, t, 1)
    np.testing.assert_array_equal(tab.frame.project_normal(fr.score), fr.project_normal(fr.score))
    # outside the partial path's range (small D, or many tangent vectors) the residual's frame is eager
    assert type(ridge.residual(dens, x, t, 2).frame) is ridge.Frame
    dens3 = EmpiricalDensity(np.random.default_rng(1).normal(size=(50, 3)))
    assert type(ridge.residual(dens3, np.zeros((2, 3)), 0.3, 1).frame) is ridge.Frame


def test_lazy_frame_read_from_two_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    dens, x, t = _workload(24)   # (small: an eigh from a user thread runs with the default BLAS threads, slow here)
    fr = ridge.frame(dens, x, t, 1)
    for _ in range(3):
        res = ridge.residual(dens, x, t, 1)
        with ThreadPoolExecutor(2) as ex:
            got = list(ex.map(lambda k: getattr(res.frame, k), ["vectors", "normal", "eigenvalues", "beta"]))
        assert all(np.array_equal(g, getattr(fr, k)) for g, k in zip(got, ["vectors", "normal", "eigenvalues",
                                                                           "beta"]))
