"""Write tests/relu_far_refs.csv: mpmath references (30 digits, tests/mp_reference.py) for the ReLU pair moment
G(a, b; rho) at random points of the far-tail region of issue 16 -- a, b in [-38, 10], |rho| <= 1 - 1e-6 --
drawn with a fixed seed so that the hard parts of the region are not left to chance: b is uniform (half),
near -a (a quarter: a + b near 0, where rho -> -1 makes G tiny) or near a (a quarter: the peak at r -> 1), and
rho is uniform in [-1, 1] (a third) or +-(1 - 10^U(-6, -1)) (two thirds). Points whose value is not a normal
float are dropped (only absolute accuracy means anything there). Run: ``python -m tests.make_relu_far_refs``
(about 1-2 s per point); tests/test_relu_far_tails.py reads the table and, marked slow, regenerates it.
"""
from __future__ import annotations

import numpy as np

N_CANDIDATES, SEED = 500, 2
TINY = 2.3e-308        # smallest normal float64, rounded up


def candidates(n: int = N_CANDIDATES, seed: int = SEED):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-38, 10, n)
    kb = rng.integers(0, 4, n)
    b = np.where(kb < 2, rng.uniform(-38, 10, n), np.where(kb == 2, -a + rng.uniform(-2, 2, n),
                                                            a + rng.uniform(-2, 2, n)))
    sg = rng.choice([-1.0, 1.0], n)
    kind = rng.integers(0, 3, n)
    r = np.where(kind == 0, rng.uniform(-1, 1, n), sg * (1 - 10 ** rng.uniform(-6, -1, n)))
    return a, b, r


def rows(n: int = N_CANDIDATES, seed: int = SEED):
    """(a, b, rho, ref) for the candidates whose reference is a normal float. Candidates the library puts
    below 1e-306 are not sent to mpmath (a cheap pre-filter: they underflow or nearly so)."""
    from rftheory.rf._bvn import relu_pair_std

    from .mp_reference import relu_pair_ref

    a, b, r = candidates(n, seed)
    vals = relu_pair_std(a, b, r)
    out = []
    for i in range(n):
        if vals[i] < 1e-306:
            continue
        ref = float(relu_pair_ref(a[i], b[i], r[i], dps=30))
        if ref > TINY:
            out.append((a[i], b[i], r[i], ref))
    return out


def main() -> None:
    from pathlib import Path

    path = Path(__file__).with_name("relu_far_refs.csv")
    with open(path, "w") as fh:
        fh.write(f"# {__doc__.splitlines()[0]}\n# seed {SEED}, {N_CANDIDATES} candidates; a,b,rho,ref\n")
        for row in rows():
            fh.write(",".join(repr(float(v)) for v in row) + "\n")


if __name__ == "__main__":
    main()
