"""The posterior third central moment by pair products (session 19): ``python -m bench.bench_third [--quick]``.

``EmpiricalDensity.third_cumulant`` (and with it ``hessian_derivative``, the Newton steps of ``ridge.project`` for
d > 0, and ``rftheory analyze`` up to D = 24) sums ``(w d)_i d_j d_k`` over the data. Before, that was one plain
three-operand ``np.einsum("qni,qnj,qnk->qijk")`` per query block and data chunk (numpy's generic loop, D^3
multiply-adds per (query, point)); now it is one BLAS product per query, ``(D, chunk) x (chunk, D(D+1)/2)``, over
the pairs j <= k, read back by sorted triple. The baseline below is that einsum, as it stood, run on the same
instance, queries and data in the same process: interleaved rounds, median of the per-round ratios of wall
times, and the largest difference of the two tensors over their largest entry (both sum the same terms in other
orders: round-off). Data N(0, I_D), queries N(0, I_D), t = 0.3, OU. Nothing is asserted.

Measured (session 19, quiet 2-core machine, one-off timings): 5x at D = 8 (n = 3000, m = 200), 7x at D = 24
(n = 3000, m = 100), 17x at D = 32 (n = 1e4, m = 40); ``rftheory analyze`` on 400 samples near a circle in D = 24
(n = 3000, d = 1, Newton projection) went from 98 s to 11.6 s with the same report.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rftheory import EmpiricalDensity
from rftheory.density import _streaming

CASES_QUICK = ((8, 2000, 100), (24, 2000, 40))
CASES_FULL = ((8, 3000, 200), (24, 3000, 100), (32, 10000, 40))


def einsum_baseline(dens, x, tt):
    """The third central moment as it was computed before session 19 (the plain three-operand einsum)."""
    a, h = dens.schedule._a(tt), dens.schedule._h(tt)
    xq = x - a[:, None] * dens.center[None, :]
    D, nc = dens.D, dens.chunk_size
    out = np.empty((x.shape[0], D, D, D))
    qc = int(max(1, _streaming._BLOCK_BYTES // (8 * min(nc, dens.n) * D * 2)))
    for q0 in range(0, x.shape[0], qc):
        sl = slice(q0, min(x.shape[0], q0 + qc))
        xs, as_, hs = xq[sl], a[sl], h[sl]
        M, W, mu = dens._normaliser(xs, as_, hs)
        acc = np.zeros((xs.shape[0], D, D, D))
        for n0 in range(0, dens.n, nc):
            Xb = dens._xc[n0:n0 + nc]
            w = np.exp(dens._logits(xs, as_, hs, n0, Xb) - M[:, None]) / W[:, None]
            d = Xb[None, :, :] - mu[:, None, :]
            acc += np.einsum("qni,qnj,qnk->qijk", d * w[:, :, None], d, d)
        out[sl] = acc
    return out


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_third", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for D, n, m in (CASES_QUICK if args.quick else CASES_FULL):
        dens = EmpiricalDensity(rng.standard_normal((n, D)))
        x = rng.standard_normal((m, D))
        tt = np.full(m, 0.3)
        ratios, t_old, t_new, diff = [], [], [], 0.0
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            got = {}
            for k in order:
                got[k] = _time(lambda: einsum_baseline(dens, x, tt) if k == "old" else dens._third_cumulant(x, tt))
            t_old.append(got["old"][0])
            t_new.append(got["new"][0])
            ratios.append(got["old"][0] / got["new"][0])
            diff = max(diff, float(np.abs(got["old"][1] - got["new"][1]).max() / np.abs(got["old"][1]).max()))
        rows.append({"D": D, "n": n, "m": m, "einsum_s": round(float(np.median(t_old)), 3),
                     "pair_gemm_s": round(float(np.median(t_new)), 3),
                     "speedup": round(float(np.median(ratios)), 2), "max_rel_diff": f"{diff:.1e}"})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"bench": "third_cumulant_pair_gemm", "rounds": args.rounds,
                      "speedup (min over cases)": min(r["speedup"] for r in rows),
                      "note": "wall-time ratios, interleaved rounds, median; baseline in the same run"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
