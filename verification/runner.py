"""``rftheory verify``: run the selected checks, write ``report.json`` + ``report.md``, exit 1 on failure.

``main(args)`` takes the namespace parsed by ``rftheory.cli`` (quick/full, only, seed, out, scheduler,
no_progress). Sweeps run on a 2-worker dask ``LocalCluster`` started on first use, on the scheduler at
``--scheduler ADDRESS``, or in-process with ``--scheduler serial``; their per-task cache lives in
``OUT/cache`` so a rerun with the same ``--out`` resumes.

Deliberate perturbation (to see checks fail): ``args.perturb`` or the environment variable
``RFTHEORY_VERIFY_PERTURB`` = ``NAME=FACTOR[,NAME=FACTOR...]`` (``*`` for every check) multiplies those
checks' predictions by FACTOR. The report marks perturbed checks.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .protocol import CheckResult, Context, execute
from .registry import discover
from .report import write_reports

__all__ = ["main", "run_checks", "parse_perturb"]

log = logging.getLogger(__name__)
PERTURB_ENV = "RFTHEORY_VERIFY_PERTURB"


def parse_perturb(spec) -> dict:
    """``"P1=1.01,tweedie=0.9"`` (or a dict) -> ``{"P1": 1.01, "tweedie": 0.9}``; ``*`` means every check."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        items = spec.items()
    elif isinstance(spec, str):
        items = []
        for part in spec.split(","):
            if "=" not in part:
                raise ValueError(f"perturb spec must be NAME=FACTOR[,NAME=FACTOR...]; got {part!r}")
            k, v = part.split("=", 1)
            items.append((k.strip(), v))
    else:
        raise TypeError(f"perturb must be a str or dict; got {type(spec).__name__}")
    out = {}
    for k, v in items:
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError) as err:
            raise ValueError(f"perturb factor for {k!r} must be a number; got {v!r}") from err
    return out


def _broken_result(name: str, error: str, profile: str, seed: int) -> CheckResult:
    return CheckResult(name=name, title="(module failed to import)", profile=profile, seed=seed, perturb=1.0,
                       inputs={}, rows=[], verdict="error", elapsed_s=0.0, error=error)


def run_checks(names, ctx: Context, perturb: dict | None = None, progress: bool = False) -> list:
    """Execute the named checks under ``ctx``; unknown names raise ValueError naming ``--only``."""
    checks, broken = discover()
    names = list(names) if names else list(checks) + list(broken)
    unknown = [n for n in names if n not in checks and n not in broken]
    if unknown:
        raise ValueError(f"--only: unknown check(s) {unknown}; available: {list(checks) + list(broken)}")
    perturb = perturb or {}
    bad = [k for k in perturb if k != "*" and k not in checks]
    if bad:
        raise ValueError(f"perturb: unknown check(s) {bad}; available: {list(checks)}")
    results = []
    bar = tqdm(names, desc="verify", disable=not progress, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        if name in broken:
            results.append(_broken_result(name, broken[name], ctx.profile, ctx.seed))
            continue
        factor = perturb.get(name, perturb.get("*", 1.0))
        res = execute(checks[name], ctx, perturb=factor)
        log.info("%s: %s in %.1f s", name, res.verdict, res.elapsed_s)
        results.append(res)
    bar.close()
    return results


def main(args) -> int:
    """Entry point of ``rftheory verify``; returns 0 when every check passes, 1 otherwise."""
    profile = "full" if getattr(args, "full", False) else "quick"
    seed = getattr(args, "seed", 0)
    out = Path(getattr(args, "out", "verify_out"))
    progress = not getattr(args, "no_progress", False)
    spec = getattr(args, "perturb", None)
    perturb = parse_perturb(spec if spec is not None else os.environ.get(PERTURB_ENV))
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # dask logs every worker start/stop at INFO; keep `rftheory verify` quiet unless -v was given
        for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                     "distributed.worker", "distributed.http.proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)
    scheduler = getattr(args, "scheduler", None)
    if isinstance(scheduler, str) and scheduler != "serial":
        from .sweep import check_scheduler

        check_scheduler(scheduler)              # before any check runs: one line, not a 30 s traceback
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with Context(profile=profile, seed=seed, cache_dir=out / "cache", scheduler=getattr(args, "scheduler", None),
                 progress=progress) as ctx:
        results = run_checks(getattr(args, "only", None), ctx, perturb=perturb, progress=progress)
        sweeps = list(ctx.sweeps)
    import numpy

    meta = {"profile": profile, "seed": seed, "started": started, "elapsed_s": time.perf_counter() - t0,
            "scheduler": getattr(args, "scheduler", None) or "local cluster (2 workers)",
            "perturb": perturb, "python": platform.python_version(), "numpy": numpy.__version__,
            "sweeps": sweeps}
    pj, pm = write_reports(out, results, meta)
    n_fail = sum(not r.passed for r in results)
    for r in results:
        extra = f" ({r.error})" if r.error else ""
        print(f"  {r.name:<10} {r.verdict:<5} {r.elapsed_s:6.1f} s{extra}")
    n_info = sum(r.verdict == "info" for r in results)
    reported = f" ({n_info} reported only, not judged)" if n_info else ""
    print(f"rftheory verify ({profile}): {len(results) - n_fail - n_info}/{len(results) - n_info} checks passed"
          f"{reported}; reports: {pj} and {pm}")
    return 0 if n_fail == 0 else 1
