"""The figure cache (paper_figures/_stage.py): a figure's computed arrays are stored with a key and a checksum;
a second run reads them instead of computing, the same numbers come out either way, and a damaged, foreign or
out-of-date entry is recomputed, never trusted."""
import json
import logging

import numpy as np
import pytest

from paper_figures import _hqt, _stage, registry


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setitem(_hqt._CACHE, "dir", str(tmp_path))
    return tmp_path


def _value():
    return {"a": np.arange(6.0).reshape(2, 3), "n": 3, "x": 0.1 + 0.2, "nan": float("nan"), "flag": True,
            "s": "text", "nested": {"1/h": np.array([1.5, np.inf]), "b": np.array([True, False])}}


def _counting(calls):
    def compute():
        calls.append(1)
        return _value()
    return compute


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        if isinstance(a[k], dict):
            _same(a[k], b[k])
        elif isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert type(a[k]) is type(b[k]) and (a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]))


def test_second_call_reads_the_entry_and_returns_the_same_values(cache):
    calls = []
    first = _stage.cached("fig", {"seed": 0}, _counting(calls))
    second = _stage.cached("fig", {"seed": 0}, _counting(calls))
    assert len(calls) == 1 and len(list(cache.glob("stage-fig-*.npz"))) == 1
    _same(first, second)
    # scalars come back as Python scalars (the figure's JSON has the same bytes computed or read)
    assert type(second["n"]) is int and type(second["x"]) is float and second["x"] == 0.1 + 0.2
    assert type(second["flag"]) is bool and second["s"] == "text"


def test_without_a_cache_directory_nothing_is_stored_and_values_are_normalised(tmp_path, monkeypatch):
    monkeypatch.setitem(_hqt._CACHE, "dir", None)
    calls = []
    a = _stage.cached("fig", {}, _counting(calls))
    b = _stage.cached("fig", {}, _counting(calls))
    assert len(calls) == 2 and not list(tmp_path.iterdir())
    _same(a, b)


def test_other_settings_or_other_code_recompute(cache, monkeypatch):
    calls = []
    _stage.cached("fig", {"seed": 0}, _counting(calls))
    _stage.cached("fig", {"seed": 1}, _counting(calls))
    assert len(calls) == 2
    monkeypatch.setitem(_stage._CODE, "sha", "0" * 64)          # the code changed
    _stage.cached("fig", {"seed": 0}, _counting(calls))
    assert len(calls) == 3


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_damaged_or_foreign_entries_are_recomputed_with_a_warning(cache, caplog, damage):
    calls = []
    _stage.cached("fig", {"seed": 0}, _counting(calls))
    [path] = cache.glob("stage-fig-*.npz")
    if damage == "flip":                      # one number changed, the archive still valid
        with np.load(path, allow_pickle=False) as z:
            entries = {k: z[k] for k in z.files}
        entries["a"] = entries["a"].copy()
        entries["a"][0, 0] += 1e-12
        np.savez(path, **entries)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:                                     # a valid entry of another key under this name
        key = _stage.stage_key("fig", {"seed": 5})
        flat = _stage._flatten(_value())
        _stage.save_stage(path, flat, key)
    with caplog.at_level(logging.WARNING):
        got = _stage.cached("fig", {"seed": 0}, _counting(calls))
    assert len(calls) == 2 and str(path) in caplog.text
    _same(got, _stage._normal(_value()))
    caplog.clear()
    _stage.cached("fig", {"seed": 0}, _counting(calls))        # rewritten: read again without a warning
    assert len(calls) == 2 and not caplog.text


def test_object_values_are_refused(cache):
    with pytest.raises(TypeError, match="bad"):
        _stage.cached("fig", {}, lambda: {"bad": [None, 1]})


def test_a_figure_from_its_cache_writes_the_same_json(tmp_path, monkeypatch):
    """Quick residual rendered twice into one folder: the second run reads its computed arrays (the compute step
    is never entered) and writes byte-identical JSON."""
    from argparse import Namespace

    from paper_figures import hqt5_residual_map as mod

    monkeypatch.setattr(_hqt, "_CACHE", dict(_hqt._CACHE))
    monkeypatch.setattr(_hqt, "_MEMO", {})
    monkeypatch.setattr(_hqt, "_POINT_MEMO", {})
    monkeypatch.setattr(_hqt, "_SAMPLES", {})
    args = Namespace(only=["residual"], out=str(tmp_path / "o"), quick=True, seed=0, no_progress=True, list=False,
                     cache=None, no_cache=False)
    assert registry.main(args) == 0
    first = (tmp_path / "o" / "residual.json").read_bytes()

    def boom(*a, **k):
        raise AssertionError("computed although cached")

    monkeypatch.setattr(mod, "_compute", boom)
    assert registry.main(args) == 0
    assert (tmp_path / "o" / "residual.json").read_bytes() == first
    assert json.loads(first)["3 modes"]["on_ridge_fraction"] > 0


def test_a_figures_parallel_parts_give_the_same_bits_on_one_and_two_threads(monkeypatch):
    """The residual figure's two sets run over the query-thread pool (_hqt.run_parallel): its computed arrays are
    bit-identical with one thread and with two (each part's arithmetic is that of a serial run)."""
    from rftheory._blas import set_query_threads

    from paper_figures import hqt5_residual_map as mod

    monkeypatch.setitem(_hqt._CACHE, "dir", None)
    s = _hqt.sizes(True)
    outs = []
    for n in (1, 2):
        old = set_query_threads(n)
        try:
            monkeypatch.setattr(_hqt, "_SAMPLES", {})
            outs.append(_stage._normal(mod._compute(s, 0)))
        finally:
            set_query_threads(old)
    _same(outs[0], outs[1])
