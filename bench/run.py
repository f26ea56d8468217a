"""``rftheory bench [NAME ...] [--quick]``: run the benchmark modules ``bench/bench_*.py`` (each has
``main(argv)``); from a source checkout. Every benchmark prints ratios against baselines measured in the
same run; nothing here is a timed assertion. At the end a summary lists each benchmark's wall time, its exit
status and every line it printed that says whether a target is met ("meets target ...")."""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
import time


def benchmarks() -> dict:
    import bench

    return {i.name[len("bench_"):]: f"bench.{i.name}" for i in pkgutil.iter_modules(bench.__path__)
            if i.name.startswith("bench_")}


class _Tee:
    """Writes through to ``stream`` and keeps the lines that state a target verdict."""

    def __init__(self, stream):
        self.stream, self.buf, self.verdicts, self.context = stream, "", [], ""

    def write(self, s):
        self.stream.write(s)
        self.buf += s
        *done, self.buf = self.buf.split("\n")
        for ln in done:
            ln = ln.strip()
            if ln.startswith(('"bench":', '"workload":')):     # what a multi-line JSON verdict is about
                self.context = ln.rstrip(",")
            if "meets target" in ln:
                bare = ln.startswith('"meets target"')
                self.verdicts.append(f"{self.context} -> {ln.rstrip(',')}" if bare and self.context else ln)
        return len(s)

    def flush(self):
        self.stream.flush()


def main(args) -> int:
    avail = benchmarks()
    names = list(getattr(args, "names", None) or avail)
    unknown = [n for n in names if n not in avail]
    if unknown:
        print(f"rftheory bench: unknown benchmark(s) {unknown}; available: {sorted(avail)}", file=sys.stderr)
        return 2
    rc, summary = 0, []
    for name in names:
        print(f"== bench {name} ==", flush=True)
        mod = importlib.import_module(avail[name])
        argv = ["--quick"] if getattr(args, "quick", False) else []
        tee = _Tee(sys.stdout)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(tee):
            code = int(mod.main(argv) or 0)
        summary.append((name, time.perf_counter() - t0, code, tee.verdicts))
        rc = max(rc, code)
    print("== summary ==")
    for name, sec, code, verdicts in summary:
        print(f"  {name:12s} {sec:8.1f} s  exit {code}")
        for v in verdicts:
            print(f"      {v}")
    return rc
