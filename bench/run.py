"""``rftheory bench [NAME ...] [--quick]``: run the benchmark modules ``bench/bench_*.py`` (each has
``main(argv)``); from a source checkout. Every benchmark prints ratios against baselines measured in the
same run; nothing here is a timed assertion."""
from __future__ import annotations

import importlib
import pkgutil
import sys


def benchmarks() -> dict:
    import bench

    return {i.name[len("bench_"):]: f"bench.{i.name}" for i in pkgutil.iter_modules(bench.__path__)
            if i.name.startswith("bench_")}


def main(args) -> int:
    avail = benchmarks()
    names = list(getattr(args, "names", None) or avail)
    unknown = [n for n in names if n not in avail]
    if unknown:
        print(f"rftheory bench: unknown benchmark(s) {unknown}; available: {sorted(avail)}", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        mod = importlib.import_module(avail[name])
        argv = ["--quick"] if getattr(args, "quick", False) else []
        rc = max(rc, int(mod.main(argv) or 0))
    return rc
