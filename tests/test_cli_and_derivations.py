import numpy as np
import pytest

from derivations import registry
from rftheory import cli


def test_every_derivation_passes_its_checks():
    mods = registry()
    assert "P1" in mods
    for name, mod in mods.items():
        res = mod.derive()
        assert res.ok, (name, res.checks)


def test_derivation_result_fails_when_a_check_fails():
    from derivations import Derivation

    d = Derivation("X", "x", "s", "l")
    assert not d.ok  # no checks at all is not a pass
    d.add_check("a", True)
    d.add_check("b", False, "perturbed")
    assert not d.ok


def test_cli_derive_p1(capsys):
    assert cli.main(["derive", "P1"]) == 0
    out = capsys.readouterr().out
    assert "[ok] symbolic n=3" in out


def test_cli_derive_unknown(capsys):
    assert cli.main(["derive", "NOPE"]) == 2


def test_cli_requires_a_subcommand():
    with pytest.raises(SystemExit):
        cli.main([])


def test_cli_derive_latex_prints_the_latex(capsys):
    """derive --latex prints the derivation's LaTeX instead of its statement (and without it, the reverse)."""
    res = registry()["P1"].derive()
    assert res.latex != res.statement
    assert cli.main(["derive", "P1", "--latex"]) == 0
    out = capsys.readouterr().out
    assert res.latex in out and res.statement not in out
    assert cli.main(["derive", "P1"]) == 0
    out = capsys.readouterr().out
    assert res.statement in out and res.latex not in out
