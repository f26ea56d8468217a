"""Shared hypothesis strategies: training sets with bounded coordinates, times, query points."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

COORD = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def training_sets(draw, min_n: int = 1, max_n: int = 8, min_D: int = 1, max_D: int = 4, D=None):
    """(n, D) float64 arrays with coordinates in [-5, 5]."""
    D = draw(st.integers(min_D, max_D)) if D is None else D
    n = draw(st.integers(min_n, max_n))
    return draw(hnp.arrays(np.float64, (n, D), elements=COORD))


def times(lo: float = 1e-4, hi: float = 10.0):
    """Times spread log-uniformly across [lo, hi]."""
    return st.floats(min_value=np.log(lo), max_value=np.log(hi)).map(np.exp)


@st.composite
def query_points(draw, D: int, min_m: int = 1, max_m: int = 6, scale: float = 6.0):
    m = draw(st.integers(min_m, max_m))
    el = st.floats(min_value=-scale, max_value=scale, allow_nan=False, allow_infinity=False, width=64)
    return draw(hnp.arrays(np.float64, (m, D), elements=el))


@st.composite
def rotations(draw, D: int):
    """A random orthogonal D x D matrix (QR of a Gaussian matrix drawn from a hypothesis seed)."""
    seed = draw(st.integers(0, 2**32 - 1))
    g = np.random.default_rng(seed).standard_normal((D, D))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))[None, :]
