"""``rftheory figures`` end to end (issue 17, row "figures from scratch / from cache"):
``python -m bench.bench_figures [--quick] [--only NAME ...]``.

Runs the figure job twice in fresh child processes into one new output folder: first from scratch (an empty
cache: no RF moments, no figure's computed arrays), then again with the cache the first run wrote (it then only
renders: paper_figures/_stage.py). Reports wall time and CPU time (user + system of the child, all threads: the
one to compare on a shared machine) of each run, the seconds the job prints per figure, and the ratio
scratch / cache. The issue's targets are for the full sizes (default): <= 15 min from scratch,
<= 3 min from cache; ``--quick`` times the quick profile (CI's sizes), whose numbers the README quotes, and
prints the targets only for reference. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

TARGET_SCRATCH_S = 15 * 60
TARGET_CACHE_S = 3 * 60


def _run_figures(out: str, quick: bool, only) -> dict:
    cmd = [sys.executable, "-m", "rftheory", "figures", "--out", out, "--no-progress"]
    if quick:
        cmd.append("--quick")
    if only:
        cmd += ["--only", *only]
    env = dict(os.environ, MPLBACKEND="Agg")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {p.returncode}: {tail}", "seconds": wall}
    per = {}
    for line in p.stdout.splitlines():            # "NAME: files (+ ...; 12.3 s)", one line per figure
        m = re.match(r"^(\w+): .*; ([0-9.]+) s\)$", line.strip())
        if m:
            per[m.group(1)] = float(m.group(2))
    return {"seconds": wall, "cpu_seconds": cpu, "per_figure_s": per}


def _verdict(sec, target):
    return "yes" if sec <= target else "no"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_figures", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick profile (about 2 + 1 minutes)")
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME", help="figures to render (default: all)")
    a = ap.parse_args(argv)
    profile = "quick" if a.quick else "full"
    with tempfile.TemporaryDirectory(prefix="bench_figures_") as tmp:
        out = os.path.join(tmp, "out")
        scratch = _run_figures(out, a.quick, a.only)
        cached = _run_figures(out, a.quick, a.only) if "error" not in scratch else {"error": "not run"}
    res = {"profile": profile, "only": a.only or "all", "scratch": scratch, "cache": cached,
           "target_scratch_s": TARGET_SCRATCH_S, "target_cache_s": TARGET_CACHE_S}
    print(f"rftheory figures ({profile} profile, {res['only']}), two runs into one folder:")
    for name, r in (("from scratch", scratch), ("from cache", cached)):
        if "error" in r:
            print(f"  {name:13s} FAILED: {r['error']}")
        else:
            print(f"  {name:13s} {r['seconds']:8.1f} s wall {r['cpu_seconds']:8.1f} s cpu")
    names = list((scratch.get("per_figure_s") or {}))
    if names:
        print("  per figure (s)   " + " ".join(f"{n:>10s}" for n in names))
        for label, r in (("from scratch", scratch), ("from cache", cached)):
            pf = r.get("per_figure_s") or {}
            print(f"  {label:15s} " + " ".join(f"{pf.get(n, float('nan')):10.1f}" for n in names))
    if "error" not in scratch and "error" not in cached:
        ratio = scratch["seconds"] / cached["seconds"]
        res["ratio_scratch_over_cache"] = ratio
        print(f"  ratio scratch / cache (wall): {ratio:.2f}")
        if profile == "full":
            print(f"  meets target (<= {TARGET_SCRATCH_S / 60:.0f} min scratch, <= {TARGET_CACHE_S / 60:.0f} min "
                  f"cache): scratch {_verdict(scratch['seconds'], TARGET_SCRATCH_S)}, cache "
                  f"{_verdict(cached['seconds'], TARGET_CACHE_S)}")
        else:
            print(f"  (the targets, {TARGET_SCRATCH_S / 60:.0f} / {TARGET_CACHE_S / 60:.0f} min, are for the "
                  f"full profile: run without --quick)")
    print("RESULT " + json.dumps(res), flush=True)
    return 0 if "error" not in scratch and "error" not in cached else 1


if __name__ == "__main__":
    raise SystemExit(main())
