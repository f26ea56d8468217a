"""``rftheory analyze`` at scale (issue 14): ``python -m bench.bench_analyze [--quick] [--big N] [--t T]``.

Training set: n points in D = 32 with independent Gaussian coordinates of variance 1/k (k = 1..D, a decaying
spectrum like a PCA latent); samples: m exact draws of p_t (a_t x_i + sqrt(h_t) z), t = 1e-3, OU schedule,
ridge dimension d = 0 (at this t the posterior is one-hot at such samples: the ridge is the set of modes,
which is what ``--d auto`` picks). Each run is a fresh child process; peak memory is the growth of its
``ru_maxrss`` over the run (the data already in memory); times are wall and CPU (user + system, all threads:
the CPU time is the one to compare on a shared, loaded machine; the exponent is fitted to it).

1. the new analyze_samples at growing n (m fixed): time, peak memory, the fitted exponent of time in n;
2. the previous implementation (commit 433ada5, ``bench/_baseline_433ada5.py``) against the new one at
   n = 2e4 (m = 2000): ratio of times and of peak memory (same run, same data);
3. ``--big N``: the new implementation once at n = N, m = 1e4 (the issue's target is N = 1e6).
``--t 0.1``: the same at t = 0.1, where no pool holds and the density is the dense one: part 1 prints the
dense cost per (sample, training point) pair (CPU ns), from which the cost at any n, m follows, and its flop
rate: every posterior-moment pass (``EmpiricalDensity._moments``, counted in the worker) is charged the flops of
its two matrix products per (query, training point) -- logits 2D, moment columns 2(1 + D + D(D+1)/2
[+ D(D+1)(D+2)/6 with the third moments]) -- and the sum over the run divided by its CPU time is compared with
the rate of one matrix product of the same shape timed in the same worker (the machine's attainable rate).
The machine is shared: times are wall times under load; compare ratios within one run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

D = 32
T = 1e-3


def _data(n, m, seed, t=T):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)) / np.sqrt(np.arange(1, D + 1))
    from rftheory.density.schedules import OU

    a, h = (float(v) for v in OU().a_h(t))
    S = a * X[rng.integers(0, n, m)] + np.sqrt(h) * rng.standard_normal((m, D))
    return X, S


def _worker(impl, n, m, seed, d, t=T):
    import resource

    if impl == "new":
        from rftheory.apps.analyze import analyze_samples
    else:
        from bench._baseline_433ada5 import analyze_samples
    X, S = _data(n, m, seed, t)
    count = _count_moment_flops()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    base = ru0.ru_maxrss  # after the imports and the data
    t0 = time.perf_counter()
    if impl == "new":
        res = analyze_samples(X, S, t, d, rng=seed)
        out = {"tube": res.tube.fraction, "counted": res.tube.n_counted, "d": res.d,
               "pools": res.density.get("samples_by_pool"), "memorized": res.memo.fraction}
    else:
        res = analyze_samples(X, S, t, d, rng=seed)
        out = {"converged": int(np.sum(res["status"] == 0)), "memorized": res["memo"][0]}
    took = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = ru1.ru_maxrss
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)  # all threads: robust to a loaded machine
    out.update(impl=impl, n=n, m=m, seconds=took, cpu_seconds=cpu, peak_mb=(peak - base) / 1024.0,
               input_mb=(X.nbytes + S.nbytes) / 2**20)
    if impl == "new":
        out.update(moment_evals_per_pair=count["pairs"] / (n * m), gflop=count["flops"] / 1e9,
                   gflops_per_cpu_s=count["flops"] / 1e9 / cpu, gemm_gflops_per_cpu_s=_gemm_rate())
    print("RESULT " + json.dumps(out), flush=True)


def _count_moment_flops():
    """Wrap EmpiricalDensity._moments (this worker process only) to count (query, training point) pairs and
    the flops of the two products per pair (module doc)."""
    from rftheory.density.empirical import EmpiricalDensity

    count = {"pairs": 0, "flops": 0}
    inner = EmpiricalDensity._moments

    def counted(self, x, tt, cov=False, third=False, eigh=False):
        q, Dq = np.atleast_2d(x).shape
        cols = 1 + Dq + (Dq * (Dq + 1) // 2 if cov or third else 0) + (Dq * (Dq + 1) * (Dq + 2) // 6 if third else 0)
        count["pairs"] += q * self.n
        count["flops"] += q * self.n * (2 * Dq + 2 * cols)
        return inner(self, x, tt, cov, third, eigh)

    EmpiricalDensity._moments = counted
    return count


def _gemm_rate(q=2048, nc=2048, cols=1 + D + D * (D + 1) // 2):
    """GFLOP per CPU-second of one (q, nc) @ (nc, cols) product, the shape of the dense pass (median of 5)."""
    rng = np.random.default_rng(0)
    A, B = rng.random((q, nc)), rng.random((nc, cols))
    rates = []
    for _ in range(5):
        c0 = time.process_time()
        A @ B
        rates.append(2.0 * q * nc * cols / 1e9 / max(time.process_time() - c0, 1e-9))
    return float(np.median(rates))


def _run(impl, n, m, seed=0, d=0, timeout=None, t=T):
    cmd = [sys.executable, "-c",
           f"from bench.bench_analyze import _worker; _worker({impl!r}, {n}, {m}, {seed}, {d}, {t!r})"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "n": n, "m": m, "error": f"timed out after {timeout} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"impl": impl, "n": n, "m": m, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}


def _show(r):
    if "error" in r:
        print(f"  {r['impl']:8s} n={r['n']:>8d} m={r['m']:>6d}  FAILED: {r['error']}")
    else:
        print(f"  {r['impl']:8s} n={r['n']:>8d} m={r['m']:>6d}  {r['seconds']:8.1f} s wall "
              f"{r.get('cpu_seconds', float('nan')):8.1f} s cpu  peak +{r['peak_mb']:8.1f} MB "
              f"(inputs {r['input_mb']:.0f} MB)  " + ", ".join(f"{k}={v}" for k, v in r.items() if k in
                                                              ("tube", "counted", "d", "pools", "memorized",
                                                               "converged")), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_analyze", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    ap.add_argument("--big", type=int, default=0, help="also run the new implementation once at this n (m=1e4)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--ns", type=int, nargs="+", default=None, help="training-set sizes of part 1")
    ap.add_argument("--m", type=int, default=None, help="samples in part 1")
    ap.add_argument("--t", type=float, default=T, help=f"time of the ridge (default {T:g}); at t = 0.1 the pools "
                    "fall back to the dense density: the dense cost, reported per (sample, training point) pair")
    a = ap.parse_args(argv)
    ns, m = ((2000, 6000, 20000), 1000) if a.quick else ((6000, 20000, 60000, 200000), 10000)
    ns, m = a.ns or ns, a.m or m
    print(f"analyze scaling in n (D = {D}, t = {a.t:g}, m = {m}, d = 0), new implementation:")
    rows = []
    for n in ns:
        r = _run("new", n, m, t=a.t)
        _show(r)
        if "error" not in r:
            print(f"    cost per (sample, training point) pair: {1e9 * r['cpu_seconds'] / (n * m):.1f} ns cpu; "
                  f"{r['moment_evals_per_pair']:.1f} moment passes per pair, {r['gflop']:.1f} GFLOP in their "
                  f"products: {r['gflops_per_cpu_s']:.1f} GFLOP per cpu-s (one product of the same shape: "
                  f"{r['gemm_gflops_per_cpu_s']:.1f})")
        rows.append(r)
    ok = [r for r in rows if "error" not in r]
    if len(ok) >= 2:
        ln, lt = np.log([r["n"] for r in ok]), np.log([r["cpu_seconds"] for r in ok])
        lm = np.log([max(r["peak_mb"], 1e-3) for r in ok])
        print(f"  fitted exponent of CPU time in n: {np.polyfit(ln, lt, 1)[0]:.2f}; "
              f"last two sizes: {(lt[-1] - lt[-2]) / (ln[-1] - ln[-2]):.2f}; "
              f"of peak memory: {np.polyfit(ln, lm, 1)[0]:.2f}")
    if not a.skip_baseline:
        nb, mb = (6000, 500) if a.quick else (20000, 2000)
        print(f"previous implementation (433ada5) against the new one at n = {nb}, m = {mb}:")
        old, new = _run("baseline", nb, mb, t=a.t), _run("new", nb, mb, t=a.t)
        _show(old)
        _show(new)
        if "error" not in old and "error" not in new:
            print(f"  time ratio old/new: wall {old['seconds'] / new['seconds']:.1f}, cpu "
                  f"{old['cpu_seconds'] / new['cpu_seconds']:.1f}; peak memory ratio old/new "
                  f"{old['peak_mb'] / max(new['peak_mb'], 1e-3):.1f}")
    if a.big:
        print(f"one large run: n = {a.big}, m = 10000, t = {a.t:g}")
        _show(_run("new", a.big, 10000, t=a.t))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
