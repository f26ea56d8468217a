"""Calibrate the far-pair panel rules of rf/_mehler_far.py (``_PANELS``) for one expansion cutoff rho_0.

A pair with |rho| > rho_c gets ``int_{rho_0}^{rho} (rho - r) phi2(a, b; r) dr`` (rho_0 = +-rho_c) by Gauss-Legendre
in theta = asin r on panels uniform in atanh r (rf/_mehler_far.py, ``_ShiftedQuadrature``). For each node count n
this finds the widest panel h (in atanh r) on which n nodes keep the absolute error (s_j s_k = 1) below ``--tol``
(default 5e-16) on a grid of (a, b): a, b in [-38, 12], 0.167 apart in [-8, 8] (0.4 with ``--quick``), both signs
of rho, the integral over 1 and 2 panels after rho_0. The reference is the same quadrature with 4x the panels and
24 nodes each (its own convergence is printed: 8x the panels with 24 nodes against it).

Search: h grows geometrically (x 1.08) from 0.005 until the first failure, then bisection between the last pass
and that failure to 0.2 % (so h is the widest width below which every scanned width passes, not just any
crossing of an error that may oscillate in h). The table printed keeps 2-3 significant digits, rounded down.
Then the table is checked as rf/_mehler.py uses it (:func:`rf._mehler_far.far_panels` picks the cheapest rule per
width) on widths from 0.005 to 17 and just below each rule's limit, against 20 nodes on panels <= 0.5 wide, and
the nodes per far pair at the papers' size (p = 1000 units, D = 2, rng 0) are counted.

Measured (session 18, full grid; "nodes/far pair" at the papers' size, where 143,241 / 176,530 / 204,955 /
230,089 of the 499,500 pairs are far at rho_0 = 0.9 / 0.85 / 0.8 / 0.75):

| rho_0 | h for n = 3, 4, 5, 6, 8, 10, 12, 16 | table's error, widths 0.005..17 | nodes/far pair |
|---|---|---|---|
| 0.9 | 0.035, 0.1, 0.2, 0.31, 0.55, 0.81, 1.04, 1.52 | 4.8e-16 | 13.35 (the table of before: 13.58) |
| 0.85 | 0.033, 0.096, 0.19, 0.3, 0.53, 0.77, 1.04, 1.46 | 4.9e-16 | 13.68 |
| 0.8 | 0.032, 0.092, 0.18, 0.29, 0.53, 0.77, 1.02, 1.44 | 4.6e-16 | 13.88 (rf/_mehler_far.py's table for 0.8) |
| 0.75 | 0.031, 0.091, 0.18, 0.29, 0.53, 0.76, 1.0, 1.42 | 4.6e-16 | 14.08 |

The table calibrated before at 0.9 (same h as this script's for n = 3, 4, 5, 9, 12-16, 3-10 % narrower for 6, 7, 8,
10, 11) errs 1.7e-15 at rho_0 = 0.8, 1.3e-15 at 0.85: a rule's error grows as its panels start at smaller rho_0.

Usage: ``PYTHONPATH=$PWD python -m bench.calibrate_far_panels [--rho0 0.8] [--quick] [--compare]``
(``--compare``: print the table in rf/_mehler_far.py beside the new one). Runs in ~1 min (``--quick`` ~15 s).
Not a benchmark (it is not named ``bench_*``, so ``rftheory bench`` does not run it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

NODES = tuple(range(3, 17))


def grid(step: float) -> np.ndarray:
    """a (or b) values: [-38, 12], ``step`` apart in [-8, 8]."""
    inner = np.linspace(-8.0, 8.0, int(round(16.0 / step)) + 1)
    return np.concatenate([[-38.0, -30, -20, -14, -11], inner, [10.0, 12.0]])


class Case:
    """(a, b) grid and the exponent variables of rf/_mehler_kernels.py: ``(a - s b)^2`` and ``s a b``."""

    def __init__(self, g):
        a, b = (x.ravel() for x in np.meshgrid(g, g))
        self.X = {s: (np.square(a - s * b), s * a * b) for s in (1.0, -1.0)}
        self.size = a.size

    def values(self, quad, chunk=4096):
        """(pairs, grid) integrals by the nodes of ``quad`` (a rf._mehler_far._ShiftedQuadrature)."""
        out = np.empty((quad.sgn.size, self.size))
        for q in range(quad.sgn.size):
            sl = slice(quad.off[q], quad.off[q + 1])
            X0, X1 = self.X[float(quad.sgn[q])]
            c1, c2, wn = quad.c1[sl], quad.c2[sl], quad.wn[sl]
            for i in range(0, self.size, chunk):
                E = X0[i:i + chunk, None] * c1[None, :] + X1[i:i + chunk, None] * c2[None, :]
                np.maximum(E, -700.0, out=E)
                out[q, i:i + chunk] = np.exp(E) @ wn
        return out


def _quad(rho0, widths, panels):
    from rftheory.rf import _mehler_far

    s0 = np.arctanh(rho0)
    rho = np.tanh(s0 + np.asarray(widths, dtype=np.float64))
    rho = np.concatenate([rho, -rho])
    return _mehler_far._ShiftedQuadrature(rho, np.sign(rho) * rho0, panels=panels)


def rule_error(case, rho0, n, h, refs):
    """Max |error| of n nodes per panel h over 1 and 2 panels after rho0 (both signs), against ``refs``. The
    widths are k h (1 - 1e-9): exactly k panels (k h itself may round to k + 1, a finer rule)."""
    ws = [h * (1 - 1e-9), 2 * h * (1 - 1e-9)]
    ref = refs.get(h)
    if ref is None:
        ref = refs[h] = case.values(_quad(rho0, ws, ((24, h / 4),)))
    got = case.values(_quad(rho0, ws, ((n, h),)))
    return float(np.max(np.abs(got - ref)))


def widest(case, rho0, n, tol, refs, h0=0.005, grow=1.08, rel=0.002):
    """The widest panel (atanh r) on which n nodes hold ``tol``: geometric scan, then bisection."""
    lo, h = 0.0, h0
    while rule_error(case, rho0, n, h, refs) <= tol:
        lo, h = h, h * grow
        if h > 8:
            return lo
    hi = h
    while hi - lo > rel * hi:
        mid = 0.5 * (lo + hi)
        if rule_error(case, rho0, n, mid, refs) <= tol:
            lo = mid
        else:
            hi = mid
    return lo


def round_down(h: float) -> float:
    """h rounded down to 2 significant digits (3 from 1 up)."""
    d = 2 if h < 1 else 3
    e = int(np.floor(np.log10(h))) - d + 1
    return round(float(np.floor(h / 10.0**e) * 10.0**e), 6)


def check_table(case, rho0, panels):
    """Max error of the table as used (cheapest rule per width) over widths 0.005..17 and just below each limit,
    against 20 nodes on panels <= 0.5 (the test's reference)."""
    widths = np.concatenate([np.geomspace(0.005, 17.0, 23), [0.999 * h for _, h in panels]])
    ref = case.values(_quad(rho0, widths, ((20, 0.5),)))
    got = case.values(_quad(rho0, widths, panels))
    return float(np.max(np.abs(got - ref)))


def nodes_per_far_pair(rho0, panels, p=1000):
    """Mean nodes per far pair (|rho| > rho0) of the papers' model (p units, D = 2, rng 0)."""
    from rftheory.rf import _mehler_far
    from rftheory.rf.model import RandomFeatureModel

    W = RandomFeatureModel(2, p, 128, 40.0, activation="relu", rng=0).W_x
    u = W / np.linalg.norm(W, axis=1)[:, None]
    jj, kk = np.triu_indices(p, 1)
    rho = np.clip((u[jj] * u[kk]).sum(1), -1, 1)
    far = np.abs(rho) > rho0
    s1 = np.arctanh(np.minimum(np.abs(rho[far]), 1 - 1e-16))
    npan, ngl = _mehler_far.far_panels(s1 - np.arctanh(rho0), panels)
    return float(np.mean(npan * ngl)), int(far.sum()), int(np.sum(npan * ngl))


def calibrate(rho0, tol=5e-16, step=0.167, nodes=NODES):
    case = Case(grid(step))
    refs = {}
    raw = {n: widest(case, rho0, n, tol, refs) for n in nodes}
    # reference convergence: 8x the panels with 24 nodes against the reference, at the widest h found
    hs = sorted(refs)[-3:]
    ws = lambda h: [h * (1 - 1e-9), 2 * h * (1 - 1e-9)]                 # noqa: E731
    conv = max(float(np.max(np.abs(case.values(_quad(rho0, ws(h), ((24, h / 8),))) - refs[h]))) for h in hs)
    return raw, conv, case


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="calibrate_far_panels", description=__doc__.splitlines()[0])
    ap.add_argument("--rho0", type=float, default=None, help="expansion cutoff (default: the engine's, "
                    "rf._mehler.cutoff())")
    ap.add_argument("--tol", type=float, default=5e-16)
    ap.add_argument("--quick", action="store_true", help="a, b 0.4 apart in [-8, 8] (0.167 otherwise)")
    ap.add_argument("--compare", action="store_true", help="print rf._mehler_far._PANELS beside the new table")
    args = ap.parse_args(argv)
    from rftheory.rf import _mehler, _mehler_far

    rho0 = _mehler.cutoff() if args.rho0 is None else args.rho0
    t0 = time.perf_counter()
    raw, conv, case = calibrate(rho0, args.tol, 0.4 if args.quick else 0.167)
    panels = tuple((n, round_down(h)) for n, h in raw.items())
    out = {"rho0": rho0, "tol": args.tol, "grid points": case.size, "reference convergence": conv,
           "widest h (raw)": {n: round(h, 4) for n, h in raw.items()},
           "_PANELS": "(" + ", ".join(f"({n}, {h:g})" for n, h in panels) + ")",
           "table checked on widths 0.005..17 (max error)": check_table(case, rho0, panels)}
    mean, nfar, ntot = nodes_per_far_pair(rho0, panels)
    out["papers' size: far pairs, nodes per far pair"] = [nfar, round(mean, 3)]
    if args.compare:
        table = _mehler_far.panel_rules(rho0)
        cur = dict(table)
        out["h: rf._mehler_far.panel_rules(rho0) (current) / new"] = {n: [cur.get(n), h] for n, h in panels}
        out["current table at this rho0: max error on widths 0.005..17"] = check_table(case, rho0, table)
        out["current table: nodes per far pair"] = round(nodes_per_far_pair(rho0, table)[0], 3)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()) + "\n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
