"""Discovery and the ``rftheory figures`` entry point."""
from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import time
from pathlib import Path

from ._common import render_set, reuse_freed_memory

log = logging.getLogger(__name__)


def figures() -> dict:
    """``NAME -> module`` for every figure module (defines NAME and render), in file order."""
    import paper_figures

    out = {}
    for info in sorted(pkgutil.iter_modules(paper_figures.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "registry":
            continue
        mod = importlib.import_module(f"paper_figures.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "render"):
            out[mod.NAME] = mod
    return out


def main(args) -> int:
    figs = figures()
    if getattr(args, "list", False):
        for name, mod in figs.items():
            print(f"{name:14s} {mod.TITLE}")
        return 0
    if not figs:
        print("rftheory figures: no figure has landed yet in this build.", file=sys.stderr)
        return 2
    names = args.only or list(figs)
    unknown = [n for n in names if n not in figs]
    if unknown:
        print(f"rftheory figures: unknown figure(s) {unknown}; available: {list(figs)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    from . import _hqt

    reuse_freed_memory()

    cache = None if getattr(args, "no_cache", False) else Path(getattr(args, "cache", None) or out / "cache")
    _hqt.set_cache(cache, progress=not args.no_progress)
    for name in names:
        t0 = time.perf_counter()
        res = render_set(figs[name], out, quick=args.quick, seed=args.seed, progress=not args.no_progress)
        files = ", ".join(str(p) for p in res.files)
        print(f"{name}: {files} (+ {name}.json, .caption.txt, .manifest.json; {time.perf_counter() - t0:.1f} s)")
    return 0
