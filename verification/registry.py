"""Discovery of check modules: every module of ``verification.checks`` not starting with ``_``."""
from __future__ import annotations

import importlib
import logging
import pkgutil
import re

__all__ = ["registry", "discover", "sort_key"]

log = logging.getLogger(__name__)

_ORDER = {"P": 0, "T": 1, "R": 2, "V": 3}


def sort_key(name: str):
    """P1 < P2 < ... < T1 < ... < R1 < ... < V4 < anything else (alphabetical)."""
    m = re.fullmatch(r"([PTRV])(\d+)(.*)", name)
    if m:
        return (_ORDER[m.group(1)], int(m.group(2)), m.group(3))
    return (9, 0, name)


def discover():
    """``(checks, broken)``: ``NAME -> module`` for the modules defining NAME, TITLE, inputs and run, and
    ``module name -> error`` for modules that failed to import (reported as errors, never dropped)."""
    import verification.checks as pkg

    checks, broken = {}, {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        except Exception as err:  # noqa: BLE001 - reported by the runner as a failed check
            log.error("check module %s failed to import: %s", info.name, err)
            broken[info.name] = f"{type(err).__name__}: {err}"
            continue
        if all(hasattr(mod, a) for a in ("NAME", "TITLE", "inputs", "run")):
            if mod.NAME in checks:
                broken[info.name] = f"duplicate check name {mod.NAME!r} (also in {checks[mod.NAME].__name__})"
                continue
            checks[mod.NAME] = mod
    return dict(sorted(checks.items(), key=lambda kv: sort_key(kv[0]))), broken


def registry() -> dict:
    """``NAME -> module`` for every importable check, in report order."""
    return discover()[0]
