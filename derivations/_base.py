"""Shared plumbing for the sympy derivations: the result type and module discovery."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field


@dataclass
class Derivation:
    """Outcome of one derivation.

    name: the result's label (P1, T1, R2 ...); statement: the derived identity as text;
    latex: the same in LaTeX; checks: check name -> (passed, detail); ok: all checks passed.
    """

    name: str
    title: str
    statement: str
    latex: str
    checks: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(bool(v[0]) for v in self.checks.values())

    def add_check(self, label: str, passed: bool, detail: str = "") -> None:
        self.checks[label] = (bool(passed), detail)


def registry() -> dict:
    """``NAME -> module`` for every module of this package that defines ``NAME`` and ``derive``."""
    import derivations

    out = {}
    for info in pkgutil.iter_modules(derivations.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"derivations.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "derive"):
            out[mod.NAME] = mod
    return dict(sorted(out.items()))
