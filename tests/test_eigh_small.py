"""The closed-form symmetric 2x2 (and 1x1) eigendecomposition of the ridge frame at D <= 2 (issue 17): accuracy
against mpmath (50 digits), orthonormality, the hard cases (equal eigenvalues, tiny or zero off-diagonals,
extreme scales), and the same bits from its stack form and its float form."""
import math

import mpmath
import numpy as np
import pytest

from rftheory.geometry._eigh_small import eigh2, eigh_small

EPS = np.finfo(float).eps
TINY = 5e-324   # the least subnormal


def _cases(rng):
    """Random symmetric 2x2 matrices (PSD, indefinite, nearly singular) and the edge cases."""
    A = rng.normal(size=(400, 2, 2))
    S = A + A.transpose(0, 2, 1)
    P = A @ A.transpose(0, 2, 1)
    v = rng.normal(size=(200, 2, 1))
    rank1 = v @ v.transpose(0, 2, 1) + 1e-14 * np.eye(2)          # a small eigenvalue ~1e-14 |C|
    edge = []
    for d0, d1, off in [(1.0, 1.0, 0.0), (1.0, 1.0, 1e-300), (1.0, 1.0, 1e-17), (1.0, 1.0 + 2 * EPS, 1e-20),
                        (2.0, 1.0, 0.0), (1.0, 2.0, 0.0), (1.0, 2.0, -0.0), (1.0, 1.0, 5e-324), (0.0, 0.0, 0.0),
                        (-3.0, -3.0, 0.0), (1.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0),
                        (1e-310, 3e-310, 1e-311), (1e300, 1e300, 1e300), (1e150, 1e-150, 1e-10),
                        (1.0, 1.0 - EPS, EPS), (-2.0, 5.0, 1e-8), (3.0, 3.0, -2.0), (1e-20, 1.0, 1e-10)]:
        edge.append([[d0, off], [off, d1]])
    return np.concatenate([S, P, rank1, np.array(edge)])


def _mp_eig(M):
    mpmath.mp.dps = 50
    a, b, c = (mpmath.mpf(float(M[0, 0])), mpmath.mpf(float(M[1, 0])), mpmath.mpf(float(M[1, 1])))
    p = (a - c) / 2
    r = mpmath.sqrt(p * p + b * b)
    return (a + c) / 2 - r, (a + c) / 2 + r


def test_eigenvalues_and_vectors_are_accurate():
    # eigenvalues within 4 ulp of the spectral norm (mpmath 50 digits; plus 4 least subnormals, the absolute
    # grid below 2^-1022); eigenvectors orthonormal and C v = mu v to 4 eps |C| (normwise backward stable, as
    # LAPACK's eigh)
    C = _cases(np.random.default_rng(0))
    w, V = eigh_small(C)
    for i in range(C.shape[0]):
        nrm = max(abs(float(x)) for x in _mp_eig(C[i]))
        lo, hi = _mp_eig(C[i])
        for k, ref in enumerate((lo, hi)):
            assert abs(mpmath.mpf(float(w[i, k])) - ref) <= 4 * EPS * nrm + 4 * TINY, (i, C[i])
        assert w[i, 0] <= w[i, 1]
        np.testing.assert_allclose(V[i].T @ V[i], np.eye(2), rtol=0, atol=4 * EPS)
        if nrm > 1e-300:    # relative residual (at subnormal scale the products lose bits absolutely)
            R = C[i] @ V[i] - V[i] * w[i][None, :]
            assert np.abs(R).max() <= 4 * EPS * nrm, (i, C[i], R)


def test_agrees_with_lapack_eigh():
    # the same spectrum as np.linalg.eigh to round-off, and the same eigenvectors up to sign where the gap is
    # large (the angle error of either is ~eps |C| / gap)
    C = _cases(np.random.default_rng(1))
    w, V = eigh_small(C)
    wl, Vl = np.linalg.eigh(C)
    nrm = np.abs(wl).max(axis=1)
    assert np.all(np.abs(w - wl) <= 8 * EPS * nrm[:, None])
    gap = wl[:, 1] - wl[:, 0]
    ok = gap > 1e-3 * nrm
    # the sine of the angle between the two bases' k-th vectors (their 2D cross product): first order in the error
    sin = np.abs(V[:, 0, :] * Vl[:, 1, :] - V[:, 1, :] * Vl[:, 0, :])[ok]
    bound = (8 * EPS * nrm / np.where(ok, gap, 1.0))[ok]
    assert np.all(sin <= bound[:, None])


def test_equal_eigenvalues_and_tiny_off_diagonals():
    # a multiple of the identity: the identity's vectors; an off-diagonal far below eps of the diagonal's
    # difference: the axes, the eigenvalues the diagonal exactly
    w, V = eigh_small(np.array([[[2.5, 0.0], [0.0, 2.5]], [[3.0, 1e-200], [1e-200, 1.0]]]))
    assert w[0].tolist() == [2.5, 2.5]
    assert sorted(np.abs(V[0]).ravel().tolist()) == [0.0, 0.0, 1.0, 1.0]
    assert w[1].tolist() == [1.0, 3.0]
    # the eigenvector of 3 is (1, b/(a - c)) = (1, 5e-201) to first order: the tiny rotation is kept exactly
    np.testing.assert_array_equal(np.abs(V[1]), [[5e-201, 1.0], [1.0, 5e-201]])


def test_stack_form_and_float_form_have_the_same_bits():
    C = _cases(np.random.default_rng(2))
    C = np.concatenate([C, -C, np.array([[[-0.0, 0.0], [0.0, -0.0]]])])
    w, V = eigh_small(C)
    for i in range(C.shape[0]):
        lo, hi, cs, sn = eigh2(float(C[i, 0, 0]), float(C[i, 1, 0]), float(C[i, 1, 1]))
        got = np.array([lo, hi, -sn, cs, cs, sn])
        ref = np.array([w[i, 0], w[i, 1], V[i, 0, 0], V[i, 1, 0], V[i, 0, 1], V[i, 1, 1]])
        assert got.tobytes() == ref.tobytes(), (i, C[i])


def test_one_by_one_is_lapacks():
    C = np.random.default_rng(3).normal(size=(50, 1, 1))
    w, V = eigh_small(C)
    wl, Vl = np.linalg.eigh(C)
    assert w.tobytes() == wl.tobytes() and V.tobytes() == np.abs(Vl).tobytes()


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_scaled_matrices_scale_exactly(scale):
    # a power-of-ten scale changes the result only by rounding of the scaled entries (no overflow or underflow
    # of p^2 + b^2: the s sqrt(1 + (t/s)^2) form)
    C = _cases(np.random.default_rng(4))[:200]
    w, V = eigh_small(C)
    ws, Vs = eigh_small(C * scale)
    assert np.all(np.isfinite(ws)) and np.all(np.isfinite(Vs))
    nrm = np.abs(w).max(axis=1)
    assert np.all(np.abs(ws / scale - w) <= 8 * EPS * nrm[:, None])
    assert math.isfinite(float(np.abs(Vs).sum()))
