"""ReLU far-tail routing in U assembly (issue 16): ``python -m bench.bench_relu_route [--quick]``.

Exact U at the papers' setting (D = 2, K = 128, T = 40, n = 3 points; p = 1000, or 500 with --quick) on a slice
of 8 time nodes, with ``_ReluPairKernel.weighted_sum`` as assembly calls it (``route=False``, the default) and
with ``route=True`` (far-tail terms that could spoil their entry recomputed by ``relu_pair_std``), interleaved
rounds, medians. Prints the time ratio against the target (routing at most 1.2x, so that it could be the
default), the share of routed terms, and how many U entries differ by more than 1e-12 relative between the two
(the entries the default leaves less accurate; subnormal entries not counted).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

TARGET = 1.2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_relu_route", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="p = 500 (about 2 minutes on a quiet machine)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    from rftheory.density.schedules import OU
    from rftheory.rf import _relu_pair_kernel as _kern
    from rftheory.rf.model import RandomFeatureModel
    from rftheory.rf.moments import assemble, time_rule

    from bench.bench_rf import X3
    p, K, T = (500 if a.quick else 1000), 128, 40.0
    m = RandomFeatureModel(2, p, K, T, activation="relu", rng=0)
    nodes, wts = time_rule(1e-3, T, K, T, 8, 2.0)
    sl = np.linspace(0, nodes.size - 1, 8).astype(int)
    orig_ws, orig_std = _kern._ReluPairKernel.weighted_sum, _kern.relu_pair_std
    count = [0]

    def counting_std(x, y, r):
        count[0] += np.size(x)
        return orig_std(x, y, r)

    times = {False: [], True: []}
    U = {}
    try:
        _kern.relu_pair_std = counting_std
        for _ in range(a.rounds):
            for route in (False, True):
                _kern._ReluPairKernel.weighted_sum = (
                    lambda self, *args, _r=route, **kw: orig_ws(self, *args, route=_r, **kw))
                count[0] = 0
                t0 = time.perf_counter()
                U[route] = assemble(m, X3, OU(), 1e-3, T, "1", "exact", "posterior_mean", nodes[sl], wts[sl])[0]
                times[route].append(time.perf_counter() - t0)
                routed = count[0]
    finally:
        _kern._ReluPairKernel.weighted_sum, _kern.relu_pair_std = orig_ws, orig_std
    terms = sl.size * X3.shape[0] * p * (p - 1) // 2
    off, on = float(np.median(times[False])), float(np.median(times[True]))
    normal = np.abs(U[True]) > 2.3e-308
    d = np.abs(U[True] - U[False])
    print({"bench": "relu_route_U_assembly", "p": p, "t_default_s": round(off, 2), "t_routed_s": round(on, 2),
           "ratio": round(on / off, 3), "routed_share_of_terms": round(routed / terms, 4),
           "entries_off_by_more_than_1e-12_without_routing": int(np.sum(d[normal] > 1e-12 * np.abs(U[True][normal]))),
           "entries": int(normal.sum()), "max_diff_over_max_entry": float(d.max() / np.abs(U[True]).max()),
           "target": f"routed <= {TARGET}x default", "meets target": "yes" if on / off <= TARGET else "no",
           "note": f"median of {a.rounds} interleaved rounds; wall time on this machine (may be loaded)"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
