"""The production assembly of U, V, c0 (rf/moments.py via RandomFeatureModel.moments) against an independent
reference (tests/ref_assembly.py: per-pair 1-D integrals on the same time rule, none of the production
formulas), for every activation, both parametrizations and all three weights.

Tolerance: 1e-12 relative to the largest entry (the issue's target; the observed deviation is <= 5e-16
relative, i.e. round-off of sums of ~10^3 positive terms), except where the production's own quadrature is
not exact (tanh's Gauss-Hermite rule: see test_tanh_assembly). A 1e-6 relative error in the batched ReLU
pair sum is 10^6 times this tolerance (test_a_1e6_error_in_the_batched_pair_sum_fails).
"""
import mpmath as mp
import numpy as np
import pytest

from rftheory.rf import _mehler
from rftheory.rf.model import RandomFeatureModel

from . import ref_assembly as ref
from .mp_reference import erf_pair_ref, gh_pair_ref, relu_pair_ref

REL = 1e-12
X3 = np.array([[-1.5, 0.3, 0.2], [1.0, -0.5, 0.7], [0.2, 1.1, -0.9]])
# (activation, p, data rows, weight, t0, T, n_gl): ReLU big enough that the (point, time node) steps
# (14 nodes x 3 points = 42) span two batches of the default 32
CASES = {
    "relu": (12, 3, "1/h", 0.05, 2.0, 2),
    "erf": (8, 2, "1/h2", 0.05, 2.0, 2),
    "cos": (8, 2, "1", 0.05, 2.0, 2),
}


def _dev(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def refs():
    out = {}
    for act, (p, n, w, t0, T, n_gl) in CASES.items():
        m = RandomFeatureModel(3, p, 2, 2.0, activation=act, rng=7)
        kw = dict(t0=t0, T=T, weight=w, n_gl=n_gl)
        out[act] = (m, X3[:n], kw, ref.reference_moments(m, X3[:n], **kw))
    return out


@pytest.mark.parametrize("act", sorted(CASES))
@pytest.mark.parametrize("param", ["posterior_mean", "score"])
def test_assembly_matches_reference(refs, act, param):
    m, X, kw, (U, Vpm, Vsc, c0pm, c0sc) = refs[act]
    mom = m.moments(X, parametrization=param, report=False, **kw)
    V, c0 = (Vpm, c0pm) if param == "posterior_mean" else (Vsc, c0sc)
    assert _dev(mom.U, U) <= REL
    assert _dev(mom.V, V) <= REL
    assert abs(mom.c0 - c0) <= REL * abs(c0)


@pytest.mark.parametrize("batch,threads", [(5, 1), (7, 2), (1000, 1)])
def test_relu_assembly_does_not_depend_on_batching(refs, batch, threads):
    """Batches that split the 42 steps unevenly, several threads, one batch: all equal the reference."""
    m, X, kw, (U, Vpm, _, _, _) = refs["relu"]
    mom = m.moments(X, report=False, batch=batch, threads=threads, **kw)
    assert _dev(mom.U, U) <= REL and _dev(mom.V, Vpm) <= REL


def test_a_1e6_error_in_the_batched_pair_sum_fails(refs, monkeypatch):
    """Power: the batched pair sum (rf/_mehler.py) scaled by (1 + 1e-6) breaks the comparison by ~1e-6."""
    m, X, kw, (U, _, _, _, _) = refs["relu"]
    orig = _mehler.MehlerPairs.weighted_sum
    monkeypatch.setattr(_mehler.MehlerPairs, "weighted_sum",
                        lambda self, *a, **k: orig(self, *a, **k) * (1 + 1e-6))
    mom = m.moments(X, report=False, **kw)
    assert _dev(mom.U, U) > 100 * REL


def test_tanh_assembly():
    """tanh's moments are Gauss-Hermite with 48 nodes: below 1e-13 only while the pre-activation scale s
    stays below ~0.6 (poles of tanh pi/(2s) off the axis; the production error estimate, 48 vs 96 nodes, is
    5e-13 at s = 0.7, 4e-12 at 0.74 and 2.5e-7 at s = 1.4, where the reference confirms it). The rows of W_x
    are scaled to |w| <= 0.6 (s <= 0.56) and that estimate at the largest s is asserted first."""
    m = RandomFeatureModel(3, 5, 1, 1.0, activation="tanh", rng=11)
    m.W_x *= 0.6 / np.linalg.norm(m.W_x, axis=1).max()
    X = X3[:2]
    kw = dict(t0=0.1, T=1.0, weight="1/h", n_gl=2)
    s = np.sqrt(-np.expm1(-2.0))             # largest sqrt(h) on [t0, T], times the largest |w_j| = 0.8
    assert m.act.error_estimate(np.array(0.5), np.array(0.6 * s), np.array(-0.5), np.array(0.6 * s),
                                np.array(0.5)) < 1e-14
    U, Vpm, Vsc, c0pm, c0sc = ref.reference_moments(m, X, **kw)
    for param, V, c0 in (("posterior_mean", Vpm, c0pm), ("score", Vsc, c0sc)):
        mom = m.moments(X, parametrization=param, report=False, **kw)
        assert _dev(mom.U, U) <= REL and _dev(mom.V, V) <= REL
        assert abs(mom.c0 - c0) <= REL * abs(c0)


ARGS = [(0.3, 0.8, -0.4, 1.1, 0.45), (-2.0, 0.5, 0.7, 0.9, 0.93)]


@pytest.mark.slow
@pytest.mark.parametrize("args", ARGS + [(1.2, 1.4, -0.4, 1.3, -0.7)])
def test_reference_tanh_rule_vs_mpmath(args):
    """tanh pairs: the reference against mpmath's nested tanh-sinh (3 minutes each; 1e-15 as below); at the
    third point the production Gauss-Hermite rule is off by 2.5e-7, within its own error estimate."""
    with mp.workdps(20):
        want = gh_pair_ref(mp.tanh, *args, dps=20)
    assert abs(ref.pair("tanh", *args) - float(want)) <= 1e-15


@pytest.mark.parametrize("args", ARGS)
def test_reference_rule_vs_mpmath(args):
    """The reference's fixed Gauss-Legendre rule against mpmath's adaptive tanh-sinh at 30 digits:
    agreement to 1e-15 absolute on O(1) values (float64 round-off of the 400-term fsum)."""
    mu_u, s_u, mu_v, s_v, rho = args
    got = ref.pair("relu", *args)
    want = s_u * s_v * relu_pair_ref(mu_u / s_u, mu_v / s_v, rho)
    assert abs(got - float(want)) <= 1e-15 * max(1.0, abs(float(want)))
    got = ref.pair("erf", *args)
    assert abs(got - float(erf_pair_ref(*args))) <= 1e-15
    # single moments: E[u+] = s g(mu/s), E[x u+] = s Phi(mu/s), E[(u+)^2] by mpmath quadrature
    m1, m2, mx = ref.single("relu", mu_u, s_u)
    a = mp.mpf(mu_u) / s_u
    assert abs(m1 - float(s_u * (a * mp.ncdf(a) + mp.npdf(a)))) <= 1e-15
    assert abs(mx - float(s_u * mp.ncdf(a))) <= 1e-15
    want2 = mp.quad(lambda x: (mu_u + s_u * x) ** 2 * mp.npdf(x), [-a, -a + 3, mp.inf])
    assert abs(m2 - float(want2)) <= 1e-15 * max(1.0, float(want2))
