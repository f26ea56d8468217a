"""The benchmark runner (``rftheory bench``): discovery, refusal of unknown names, the verdict summary."""
import io
import types

from bench import run


def test_discovers_every_bench_module():
    names = run.benchmarks()
    assert {"ridge", "rf", "analyze", "figures"} <= set(names)
    assert all(v == f"bench.bench_{k}" for k, v in names.items())


def test_unknown_name_is_refused(capsys):
    assert run.main(types.SimpleNamespace(names=["no_such_bench"], quick=True)) == 2
    assert "no_such_bench" in capsys.readouterr().err


def test_tee_keeps_verdict_lines_across_partial_writes():
    sink = io.StringIO()
    tee = run._Tee(sink)
    tee.write("ratio 3.1x\n  ratio 250x, meets tar")
    tee.write("get: no\ntail without newline")
    assert tee.verdicts == ["ratio 250x, meets target: no"]
    assert sink.getvalue().endswith("tail without newline")


def test_tee_names_what_a_bare_json_verdict_is_about():
    tee = run._Tee(io.StringIO())
    tee.write('{\n "score_m1": {\n  "workload": "score at m = 1",\n  "ratio": 1.5,\n  "meets target": "yes",\n')
    tee.write(' },\n "bench": "gtv_fig2",\n "meets target": "no"\n}\n')
    assert tee.verdicts == ['"workload": "score at m = 1" -> "meets target": "yes"',
                            '"bench": "gtv_fig2" -> "meets target": "no"']
