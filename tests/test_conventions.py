"""Conventions as options (docs/conventions.md): embedding order, the tau = inf eigenvalue cut-off, Simpson."""
import numpy as np
import pytest

from rftheory.rf.features import fourier_embedding
from rftheory.rf.model import RandomFeatureModel, gradient_flow
from rftheory.rf.moments import simpson_rule

X2 = np.array([[-3.0, 0.0], [3.0, 0.0]])


def test_interleaved_embedding_values():
    t, K, T = 0.3, 3, 2.0
    phi = fourier_embedding(t, K, T, "interleaved")[0]
    ang = 2 * np.pi * np.arange(1, K + 1) * t / T
    want = [1.0]
    for k in range(K):
        want += [np.sin(ang[k]), np.cos(ang[k])]
    # the angle is formed in another order: round-off, |ang| eps ~ 1e-15
    assert np.max(np.abs(phi - np.array(want))) <= 4e-15
    with pytest.raises(ValueError, match="order"):
        fourier_embedding(t, K, T, "zipped")


def _permuted_pair(K=3, p=20):
    """A concat model and an interleaved one whose W_t columns are permuted to match: the same function."""
    A = RandomFeatureModel(2, p, K, 4.0, rng=5)
    B = RandomFeatureModel(2, p, K, 4.0, rng=5, embedding="interleaved")
    perm = [0] + [c for k in range(1, K + 1) for c in (k, K + k)]
    B.W_t = A.W_t[:, perm].copy()
    return A, B


def test_interleaved_model_is_a_column_permutation():
    """Features and moments of the permuted pair agree to round-off (sums of the same terms in another order:
    1e-13 relative is 500 eps)."""
    A, B = _permuted_pair()
    x = np.random.default_rng(1).standard_normal((50, 2))
    t = np.linspace(0.01, 4.0, 50)
    fa, fb = A.features(x, t), B.features(x, t)
    assert np.max(np.abs(fa - fb)) <= 1e-13 * np.max(np.abs(fa))
    ma = A.moments(X2, t0=1e-2, weight="1/h", n_gl=4, report=False)
    mb = B.moments(X2, t0=1e-2, weight="1/h", n_gl=4, report=False)
    assert np.max(np.abs(ma.U - mb.U)) <= 1e-13 * np.max(np.abs(ma.U))
    assert np.max(np.abs(ma.V - mb.V)) <= 1e-13 * np.max(np.abs(ma.V))
    # unpermuted, the interleaved model is another model (the test above can fail)
    C = RandomFeatureModel(2, 20, 3, 4.0, rng=5, embedding="interleaved")
    assert np.max(np.abs(C.features(x, t) - fa)) > 1e-3


def test_embedding_order_is_in_the_cache_key(tmp_path):
    """Same draws, other embedding order: the interleaved model must not load the concat model's entry."""
    A = RandomFeatureModel(2, 10, 2, 3.0, rng=9)
    B = RandomFeatureModel(2, 10, 2, 3.0, rng=9, embedding="interleaved")
    ma = A.moments(X2, t0=1e-2, weight="1", n_gl=4, report=False, cache_dir=tmp_path)
    mb = B.moments(X2, t0=1e-2, weight="1", n_gl=4, report=False, cache_dir=tmp_path)
    mb2 = B.moments(X2, t0=1e-2, weight="1", n_gl=4, report=False)
    assert np.array_equal(mb.U, mb2.U) and not np.allclose(ma.U, mb.U)
    assert len(list(tmp_path.glob("moments-*.npz"))) == 2
    ms = A.moments(X2, t0=1e-2, weight="1", report=False, cache_dir=tmp_path, time_rule="simpson",
                   n_intervals=8)
    assert ms.n_time_nodes == 9 and len(list(tmp_path.glob("moments-*.npz"))) == 3


def test_gradient_flow_cutoff():
    """An explicit cut-off keeps exactly the eigenvalues above it; W* built from the spectrum by hand."""
    rng = np.random.default_rng(2)
    p = 8
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    mu = np.array([1e-9, 5e-5, 2e-4, 1e-3, 0.1, 1.0, 3.0, 10.0])
    U = (Q * mu) @ Q.T
    V = rng.standard_normal((2, p))
    W0 = rng.standard_normal((2, p))
    gf = gradient_flow(U, V, W0, cutoff=1e-4)
    assert gf.rank == 6 and gf.cutoff == 1e-4
    keep = mu > 1e-4
    Qk, Qn = Q[:, keep], Q[:, ~keep]
    want = (V @ Qk / mu[keep]) @ Qk.T + W0 @ Qn @ Qn.T
    # round-off of an eigh of a matrix with condition 1e10 against the kept spectrum: 1e-9 relative
    assert np.max(np.abs(gf.W_star - want)) <= 1e-9 * np.max(np.abs(want))
    assert gradient_flow(U, V, W0).rank == 8            # default: round-off cut-off keeps 1e-9
    for bad in (-1.0, np.nan, "1e-4", True):
        with pytest.raises(ValueError, match="cutoff"):
            gradient_flow(U, V, W0, cutoff=bad)


def test_simpson_rule_exact_for_cubics_and_fourth_order():
    x, w = simpson_rule(0.5, 2.5, 6)
    f = lambda t: 3 * t**3 - t**2 + 2           # noqa: E731
    exact = 3 * (2.5**4 - 0.5**4) / 4 - (2.5**3 - 0.5**3) / 3 + 2 * 2.0
    assert abs(w @ f(x) - exact) <= 1e-13 * exact     # Simpson integrates cubics exactly: round-off
    errs = []
    for n in (8, 16):
        x, w = simpson_rule(0.1, 1.0, n)
        errs.append(abs(w @ np.exp(x) - (np.e - np.exp(0.1))))
    assert 14 < errs[0] / errs[1] < 17                 # h^4: the ratio tends to 16
    for bad in (7, 0, 2.5):
        with pytest.raises(ValueError, match="n_intervals"):
            simpson_rule(0.1, 1.0, bad)


def test_simpson_moments_converge_to_gauss_legendre():
    """U by Simpson on n and 2n intervals against the Gauss-Legendre U (converged to 1e-10 here: smooth
    lambda = 1 on [0.1, 2]): the error falls by ~16 per halving (the fourth-order rule is what is assembled)."""
    m = RandomFeatureModel(2, 12, 1, 2.0, rng=3)
    ref = m.moments(X2, t0=0.1, weight="1", n_gl=12, report=False)
    e = [np.linalg.norm(m.moments(X2, t0=0.1, weight="1", report=False, time_rule="simpson",
                                  n_intervals=n).U - ref.U) for n in (16, 32)]
    assert 12 < e[0] / e[1] < 20, e
