"""Symbolic derivations (sympy), one module per result.

Each module defines ``NAME`` (e.g. ``"P1"``), ``TITLE`` and ``derive() -> Derivation``; the result carries
the derived statement, its LaTeX, and the checks that tie it to the numeric code (``ok`` is their
conjunction). ``rftheory derive`` runs them through :func:`registry`.
"""
from ._base import Derivation, registry

__all__ = ["Derivation", "registry"]
