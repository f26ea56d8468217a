"""``rftheory verify`` end to end through rftheory.cli.main: reports, exit codes, perturbation, resume."""
import json

import pytest

import verification
from rftheory import cli
from verification.runner import PERTURB_ENV


def test_verify_quick_passes_writes_both_reports_and_resumes(tmp_path, capsys):
    out = tmp_path / "v"
    assert cli.main(["verify", "--quick", "--out", str(out), "--no-progress"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["passed"] is True and rep["profile"] == "quick"
    names = [c["name"] for c in rep["checks"]]
    assert {"P1", "tweedie", "V1"} <= set(names)
    reported = {n for n, m in verification.registry().items() if getattr(m, "REPORTED_ONLY", False)}
    assert all(c["verdict"] == ("info" if c["name"] in reported else "pass") for c in rep["checks"])
    md = (out / "report.md").read_text()
    assert "| result | setting | predicted | measured | tolerance | margin | verdict |" in md
    assert sum(line.startswith("| P1 |") for line in md.splitlines()) == len(rep["checks"][0]["rows"])
    # the sweep ran on the local cluster and was cached; V1 reused tweedie's tasks
    sw = [w for w in rep["sweeps"] if w["name"] == "proxy_mc"]
    assert len(sw) == 2 and sw[0]["computed"] == sw[0]["tasks"] >= 64 and sw[1]["cached"] == sw[1]["tasks"]
    assert not list(out.glob("*.tmp"))
    capsys.readouterr()
    # a perturbed check makes the run fail (and the report says so); the sweep is reused from the cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PERTURB_ENV, "tweedie=1.05")
        assert cli.main(["verify", "--quick", "--only", "tweedie", "--out", str(out), "--no-progress",
                         "--scheduler", "serial"]) == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["passed"] is False and rep["checks"][0]["verdict"] == "fail"
    assert rep["sweeps"][0]["computed"] == 0
    assert "prediction × 1.05" in (out / "report.md").read_text()


def test_verify_only_p1_perturbed_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(PERTURB_ENV, "P1=1.000001")
    assert cli.main(["verify", "--quick", "--only", "P1", "--out", str(tmp_path), "--no-progress"]) == 1
    monkeypatch.setenv(PERTURB_ENV, "")
    assert cli.main(["verify", "--quick", "--only", "P1", "--out", str(tmp_path), "--no-progress"]) == 0


def test_verify_rejects_unknown_names(tmp_path, capsys, monkeypatch):
    assert cli.main(["verify", "--only", "NOPE", "--out", str(tmp_path)]) == 2
    assert "--only" in capsys.readouterr().err
    monkeypatch.setenv(PERTURB_ENV, "NOPE=2")
    assert cli.main(["verify", "--only", "P1", "--out", str(tmp_path)]) == 2


def test_verify_flags_reach_the_runner(tmp_path, monkeypatch):
    """--full, --seed, --perturb and --only through cli.main arrive in the Context and run_checks unchanged
    (a mis-wired flag falling back to its default fails here); without them: quick, seed 0, no perturbation."""
    import verification.runner as runner

    seen = {}

    class _Stop(Exception):
        pass

    def fake(names, ctx, perturb=None, progress=False):
        seen.update(names=names, profile=ctx.profile, seed=ctx.seed, perturb=perturb)
        raise _Stop

    monkeypatch.setattr(runner, "run_checks", fake)
    monkeypatch.delenv(PERTURB_ENV, raising=False)
    with pytest.raises(_Stop):
        cli.main(["verify", "--full", "--seed", "7", "--only", "P1", "R3", "--perturb", "P1=1.000001,R3=0.5",
                  "--out", str(tmp_path), "--no-progress", "--scheduler", "serial"])
    assert seen == {"names": ["P1", "R3"], "profile": "full", "seed": 7, "perturb": {"P1": 1.000001, "R3": 0.5}}
    with pytest.raises(_Stop):
        cli.main(["verify", "--out", str(tmp_path), "--no-progress", "--scheduler", "serial"])
    assert seen == {"names": None, "profile": "quick", "seed": 0, "perturb": {}}


def test_verify_perturb_flag_and_seed_end_to_end(tmp_path):
    """The real run: --perturb P1=1.000001 fails P1 (exit 1) and the report records the factor and --seed."""
    assert cli.main(["verify", "--quick", "--only", "P1", "--seed", "3", "--perturb", "P1=1.000001",
                     "--out", str(tmp_path), "--no-progress", "--scheduler", "serial"]) == 1
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["seed"] == 3 and rep["checks"][0]["verdict"] == "fail" and rep["checks"][0]["perturb"] == 1.000001
