"""Benchmark of the ridge geometry (issue 9): projection speed, residual+frame throughput, memory.

    python -m bench.bench_ridge [--quick] [--out bench_out/ridge.json] [--repeats R]

Every number is a RATIO against a baseline measured in the same run (the machine is shared and noisy);
times are medians over repeats. Three parts:

1. Workload W (2000 noisy circle points, a = 1, h = 0.04, 10^4 uniform queries, d = 1, residual <= 1e-10):
   ``ridge.project`` against (a) a straightforward per-point SCMS loop in numpy (written below, run on a
   subsample of the queries, its per-query time extrapolated) and (b) ``sconce-scms``'s ``SCMSLog`` at
   ``eps = 1e-10`` (kernel standard deviation 0.2 = sqrt(h); subsample, extrapolated; skipped when the package
   is missing). All three outputs are judged by ONE checker: ``ridge.residual`` (|P_perp s*| from rftheory).
   Where numba is installed the density runs the compiled fused pass (``EmpiricalDensity(engine="auto")``,
   issue 17); the numpy pass is then timed too, interleaved, and the ratio of the two printed.
2. Residual + frame at m = 4096, n = 10^4, D = 32: useful GFLOP/s of the dominant products against a plain
   matrix multiply of the dominant product's shape, timed in the same run; and, in the same rounds, the
   residual as computed before issue 17's partial-eigh and compiled-weights levers (the levers' gain). Each
   timing starts after a pause (``SETTLE_S``) that lets the GEMM's spinning OpenBLAS threads sleep; with two
   threads the residual timed right after the GEMM (the measurement before session 18) is printed beside it,
   and so is the residual's fraction of the same product cut into its own query blocks and data chunks on
   one BLAS thread each (``blocked_gemm``: the ceiling of the threading policy, not the row's baseline).
3. Peak memory of projecting many 3-D queries (in a subprocess: tracemalloc peak and max RSS) against the
   size of the input and output arrays.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from rftheory import EmpiricalDensity, ridge
from rftheory.density.schedules import VE

from ._ridge_flops import (SETTLE_S, _blas_limit, _query_threads, _settle, bench_flops,  # noqa: F401 - part 2
                           blocked_gemm, flop_workload, residual_before_levers)

# W: VE with sigma(1) = 0.2, so a = 1 and h = 0.04 at t = 1
W_SCHEDULE = VE(sigma_min=0.01, sigma_max=0.2)
W_T = 1.0
TOL = 1e-10


# ----------------------------------------------------------------------------- workloads
def circle_workload(n: int = 2000, m: int = 10_000):
    """Workload W: ``(density, queries, t)``; data seed 0, queries seed 1."""
    rng = np.random.default_rng(0)
    th = rng.uniform(0.0, 2.0 * np.pi, n)
    X = np.column_stack([np.cos(th), np.sin(th)]) + 0.05 * rng.normal(size=(n, 2))
    q = np.random.default_rng(1).uniform(-1.5, 1.5, size=(m, 2))
    return EmpiricalDensity(X, W_SCHEDULE), q, W_T


def shared_residual(dens, points, t, d=1):
    """The one checker for every method's output: |P_perp s*| at the returned points, from rftheory."""
    return ridge.residual(dens, points, t, d).residual


# ----------------------------------------------------------------------------- baseline (a)
def scms_point(x, X, h, d=1, tol=TOL, max_iter=1000):
    """Per-point SCMS as a researcher would write it: weights, mean, covariance, eigh, constrained step.
    Returns ``(point, iterations, converged)``; converged when |E^T s| <= tol (E: the D-d normal vectors)."""
    x = np.array(x, dtype=np.float64)
    D = x.size
    for it in range(max_iter):
        diff = X - x
        lg = -0.5 * np.sum(diff * diff, axis=1) / h
        w = np.exp(lg - lg.max())
        w /= w.sum()
        dm = w @ diff  # posterior mean - x  (= h s)
        C = (diff * w[:, None]).T @ diff - np.outer(dm, dm)  # posterior covariance
        lam, V = np.linalg.eigh(C / h**2 - np.eye(D) / h)  # Hessian of log p, ascending
        E = V[:, :D - d]
        if np.linalg.norm(E.T @ dm) / h <= tol:
            return x, it, True
        x = x + E @ (E.T @ dm)
    return x, max_iter, False


def run_baseline(X, queries, h, d=1):
    pts = np.empty_like(queries)
    its = np.empty(len(queries), dtype=np.int64)
    conv = np.empty(len(queries), dtype=bool)
    for i, x in enumerate(queries):
        pts[i], its[i], conv[i] = scms_point(x, X, h, d)
    return pts, its, conv


def run_sconce(X, queries, h, d=1, max_iter=1000):
    """sconce-scms SCMSLog (kernel sd sqrt(h)); None if the package is missing."""
    try:
        from sconce.EucSCMS import SCMSLog
    except Exception:  # noqa: BLE001 - optional package, any import failure means "skip"
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        path = SCMSLog(np.array(queries), X, d=d, h=float(np.sqrt(h)), eps=TOL, max_iter=max_iter)
    pts = path[:, :, -1]
    # iterations per point: steps until the path stops moving (it copies converged points forward)
    moved = np.any(np.diff(path, axis=2) != 0, axis=1)
    its = np.where(moved.any(axis=1), moved.shape[1] - np.argmax(moved[:, ::-1], axis=1), 0)
    return pts, its, path.shape[2]


def _median_time(fn, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), ts, out


def bench_projection(m=10_000, k_base=200, k_sconce=20, repeats=3, blas_threads=(None, 1), log=print):
    """Part 1. Returns a dict of times, iteration counts, converged fractions, residuals and ratios."""
    dens, q, t = circle_workload(m=m)
    X, h = dens.data, float(W_SCHEDULE.h(t))
    out = {"workload": dict(n=dens.n, m=m, D=2, d=1, a=1.0, h=h, tol=TOL)}
    # the pass behind the density: the compiled fused pass where numba is installed (engine="auto"); then the
    # numpy pass is timed too, interleaved, for the in-run ratio of the two
    fused = dens._use_fused()
    dens_np = EmpiricalDensity(X, W_SCHEDULE, engine="numpy") if fused else None
    if fused:   # compile (or load numba's cache) outside the timings
        ridge.project(dens, q[:2], t, 1, tol=TOL)
    tnp = []
    runs = {("default" if nt is None else str(nt)): dict(times_s=[]) for nt in blas_threads}
    sub = np.linspace(0, m - 1, k_base).astype(int)  # the per-point methods' subsample (evenly spaced)
    tbs, tss, sconce_res = [], [], None
    ss = sub[np.linspace(0, k_base - 1, k_sconce).astype(int)] if k_sconce else None
    for _ in range(repeats):  # interleaved with the baselines, so all see the same machine load
        for nt in blas_threads:
            with _blas_limit(nt), _query_threads(nt):
                t0 = time.perf_counter()
                pr = ridge.project(dens, q, t, 1, tol=TOL)
                runs["default" if nt is None else str(nt)]["times_s"].append(time.perf_counter() - t0)
        if fused:
            t0 = time.perf_counter()
            ridge.project(dens_np, q, t, 1, tol=TOL)
            tnp.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pb, ib, cb = run_baseline(X, q[sub], h)
        tbs.append(time.perf_counter() - t0)
        if k_sconce:
            t0 = time.perf_counter()
            sconce_res = run_sconce(X, q[ss], h)
            tss.append(time.perf_counter() - t0)
            if sconce_res is None:
                tss = []
                k_sconce = -1   # not installed: stop trying, report below
    for v in runs.values():
        v["time_s"] = float(np.median(v["times_s"]))
    tb = float(np.median(tbs))
    best_key = min(runs, key=lambda k_: runs[k_]["time_s"])
    r_all = pr.residual
    out["rftheory"] = dict(
        runs_by_blas_threads=runs, time_s=runs[best_key]["time_s"], blas_threads=best_key,
        iterations_mean=float(pr.iterations.mean()), iterations_median=float(np.median(pr.iterations)),
        iterations_max=int(pr.iterations.max()), newton_steps_mean=float(pr.newton_steps.mean()),
        observed_order=pr.order, converged_fraction=float(pr.converged.mean()),
        status_counts={ridge.STATUS[int(s)]: int(c) for s, c in zip(*np.unique(pr.status, return_counts=True))},
        residual_max_converged=float(r_all[pr.converged].max()) if pr.converged.any() else None,
        engine="numba (fused pass)" if fused else "numpy")
    if fused:
        out["rftheory"]["numpy_engine_time_s"] = float(np.median(tnp))
        out["rftheory"]["numpy_engine_times_s"] = tnp
        out["rftheory"]["fused_over_numpy_speedup"] = float(np.median(tnp)) / out["rftheory"]["time_s"]
    chk_b = shared_residual(dens, pb, t)
    chk_r = shared_residual(dens, pr.points[sub], t)
    per_q = tb / k_base
    out["baseline_scms_loop"] = dict(
        subsample=k_base, time_subsample_s=tb, times_subsample_s=tbs, time_per_query_s=per_q, time_extrapolated_s=per_q * m,
        iterations_mean=float(ib.mean()), iterations_max=int(ib.max()), converged_fraction=float(cb.mean()),
        shared_residual_max=float(chk_b.max()), shared_residual_median=float(np.median(chk_b)))
    out["rftheory"]["shared_residual_on_subsample_max"] = float(chk_r.max())
    out["rftheory"]["shared_residual_on_subsample_median"] = float(np.median(chk_r))
    both = cb & pr.converged[sub]
    out["baseline_scms_loop"]["same_point_fraction"] = float(np.mean(
        np.linalg.norm(pb[both] - pr.points[sub][both], axis=1) < 1e-6)) if both.any() else None
    out["ratio_vs_baseline"] = per_q * m / out["rftheory"]["time_s"]
    log(f"  baseline loop: {per_q * 1e3:.3f} ms/query on {k_base} queries")
    if k_sconce:
        res = sconce_res
        ts_ = float(np.median(tss)) if tss else None
        k_sconce = len(ss)
        if res is None:
            out["sconce"] = dict(skipped="sconce-scms is not installed (pip install sconce-scms)")
        else:
            ps, its, n_cols = res
            chk_s = shared_residual(dens, ps, t)
            per_s = ts_ / k_sconce
            conv_s = chk_s <= TOL
            out["sconce"] = dict(
                subsample=k_sconce, time_subsample_s=ts_, time_per_query_s=per_s, time_extrapolated_s=per_s * m,
                iterations_mean=float(its.mean()), iterations_max=int(its.max()), path_columns=int(n_cols),
                converged_fraction_by_shared_checker=float(conv_s.mean()),
                shared_residual_max=float(chk_s.max()), shared_residual_median=float(np.median(chk_s)),
                path_bytes=int(k_sconce * 2 * n_cols * 8), times_subsample_s=tss,
                note="median over the interleaved repeats; time extrapolated per query")
            out["ratio_vs_sconce"] = per_s * m / out["rftheory"]["time_s"]
            out["sconce_target"] = ">= 300x (issue 17)"
            out["sconce_meets_target"] = "yes" if out["ratio_vs_sconce"] >= 300 else "no"
    return out


# ----------------------------------------------------------------------------- part 3: memory
def _memory_child(m, n):
    import resource
    import tracemalloc

    rng = np.random.default_rng(4)
    th = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([np.cos(th), np.sin(th), 0.3 * np.sin(2 * th)]) + 0.05 * rng.normal(size=(n, 3))
    dens = EmpiricalDensity(X, W_SCHEDULE)
    q = np.random.default_rng(5).uniform(-1.5, 1.5, size=(m, 3))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    pr = ridge.project(dens, q, W_T, 1, tol=TOL)
    el = time.perf_counter() - t0
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    io_bytes = q.nbytes + sum(getattr(pr, f).nbytes for f in
                              ("points", "converged", "status", "iterations", "residual", "beta", "eigengap",
                               "newton_steps", "tol"))
    print(json.dumps(dict(m=m, n=n, D=3, time_s=el, tracemalloc_peak_bytes=peak, maxrss_before_bytes=rss0,
                          maxrss_after_bytes=rss1, input_bytes=q.nbytes, input_output_bytes=io_bytes,
                          converged_fraction=float(pr.converged.mean()),
                          iterations_mean=float(pr.iterations.mean()),
                          per_iteration_path_bytes_if_stored=int(q.nbytes * (pr.iterations.max() + 1)))))


def bench_memory(m=1_000_000, n=500):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cp = subprocess.run([sys.executable, "-m", "bench.bench_ridge", "--memory-child", str(m), str(n)],
                        capture_output=True, text=True, env=env, cwd=root, check=True)
    out = json.loads(cp.stdout.strip().splitlines()[-1])
    out["peak_over_input_output"] = out["tracemalloc_peak_bytes"] / out["input_output_bytes"]
    return out


# ----------------------------------------------------------------------------- driver
def _blas_info():
    try:
        from threadpoolctl import threadpool_info

        return [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # noqa: BLE001
        return []


def _write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, default=float)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (stated in the output)")
    ap.add_argument("--out", default=os.path.join("bench_out", "ridge.json"))
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: projection,flops,memory,sconce")
    ap.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.memory_child:
        _memory_child(*a.memory_child)
        return 0
    skip = set(filter(None, a.skip.split(",")))
    q = a.quick
    reps = a.repeats or 3
    res = dict(quick=q, blas=_blas_info(), openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"),
               cpu_count=os.cpu_count(), loadavg_start=os.getloadavg())
    if "projection" not in skip:
        print("[1] workload W projection ...", flush=True)
        res["projection"] = bench_projection(m=2000 if q else 10_000, k_base=40 if q else 200,
                                             k_sconce=0 if "sconce" in skip else (4 if q else 20), repeats=reps)
    if "flops" not in skip:
        print("[2] residual + frame GFLOP/s ...", flush=True)
        res["flops"] = bench_flops(m=1024 if q else 4096, n=10_000, D=32, repeats=reps, blas_threads=(2, 1))
    if "memory" not in skip:
        print("[3] memory ...", flush=True)
        res["memory"] = bench_memory(m=100_000 if q else 1_000_000, n=500)
    res["loadavg_end"] = os.getloadavg()
    _write_json(a.out, res)
    _print_table(res)
    print(f"wrote {a.out}")
    return 0


def _print_table(res):
    rows = []
    p = res.get("projection")
    if p:
        r, b = p["rftheory"], p["baseline_scms_loop"]
        rows.append((f"W: rftheory project [{r.get('engine', 'numpy')}]",
                     f"{r['time_s']:.3f} s (BLAS threads {r['blas_threads']})",
                     f"it mean {r['iterations_mean']:.2f} max {r['iterations_max']}",
                     f"conv {r['converged_fraction']:.4f}", f"res<= {r['shared_residual_on_subsample_max']:.1e}",
                     "1"))
        if "numpy_engine_time_s" in r:
            rows.append(("W: rftheory project [numpy pass]", f"{r['numpy_engine_time_s']:.3f} s", "", "", "",
                         f"fused pass {r['fused_over_numpy_speedup']:.2f}x faster"))
        rows.append(("W: per-point SCMS loop", f"{b['time_extrapolated_s']:.2f} s (extrap. from {b['subsample']})",
                     f"it mean {b['iterations_mean']:.2f} max {b['iterations_max']}",
                     f"conv {b['converged_fraction']:.4f}", f"res<= {b['shared_residual_max']:.1e}",
                     f"{p['ratio_vs_baseline']:.1f}x (target 20x)"))
        s = p.get("sconce")
        if s and "skipped" not in s:
            rows.append(("W: sconce SCMSLog", f"{s['time_extrapolated_s']:.1f} s (extrap. from {s['subsample']})",
                         f"it mean {s['iterations_mean']:.2f} max {s['iterations_max']}",
                         f"conv {s['converged_fraction_by_shared_checker']:.4f}",
                         f"res<= {s['shared_residual_max']:.1e}", f"{p['ratio_vs_sconce']:.1f}x (target >= 300x: {p['sconce_meets_target']})"))
        elif s:
            rows.append(("W: sconce SCMSLog", s["skipped"], "", "", "", ""))
    f = res.get("flops")
    if f:
        rows.append((f"residual+frame m={f['m']} n={f['n']} D={f['D']}",
                     f"{f['residual_frame_time_s']:.3f} s (BLAS threads {f['blas_threads']})",
                     f"{f['residual_frame_gflops']:.1f} GFLOP/s",
                     f"matmul {f['matmul_gflops']:.1f} GFLOP/s", "",
                     f"{100 * f.get('fraction_of_matmul_2_threads', f['fraction_of_matmul']):.0f}% on 2 threads "
                     f"(target >= 60%: {f.get('meets target', 'n/a')})"))
        for k_, o_ in f["by_blas_threads"].items():
            now = o_.get("fraction_of_matmul_right_after_gemm")
            rows.append((f"  {k_} thread(s): residual {o_['fraction_of_matmul']:.0%} of the GEMM",
                         f"before the levers {o_['before_levers_fraction_of_matmul']:.0%}",
                         f"levers {o_['levers_speedup']:.2f}x",
                         "" if now is None else f"timed right after the GEMM {now:.0%}",
                         f"blocked GEMM {o_['blocked_gemm_gflops']:.1f} GFLOP/s: residual {o_['fraction_of_blocked_gemm']:.0%} of it",
                         f"|r - r_before| <= {o_['max_residual_difference_vs_before']:.1e}"))
    mm = res.get("memory")
    if mm:
        rows.append((f"memory: project {mm['m']} 3-D queries", f"{mm['time_s']:.1f} s",
                     f"peak {mm['tracemalloc_peak_bytes'] / 2**20:.0f} MiB",
                     f"in+out {mm['input_output_bytes'] / 2**20:.0f} MiB",
                     f"maxRSS {mm['maxrss_after_bytes'] / 2**20:.0f} MiB",
                     f"{mm['peak_over_input_output']:.2f}x in+out"))
    for row in rows:
        print(" | ".join(str(c) for c in row))


if __name__ == "__main__":
    sys.exit(main())
