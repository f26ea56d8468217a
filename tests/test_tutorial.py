"""docs/tutorial.md runs: every ```python block is executed, in order, in one namespace (as a reader would
run them), in a scratch directory so the figures it writes go there and not over the committed ones."""
import os
import pathlib
import re

import pytest

TUTORIAL = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
FIGURES = ["ridge.png", "distance.png", "error_split.png", "gtv_ensemble.png"]


def _blocks(text):
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)


def test_blocks_are_found():
    blocks = _blocks(TUTORIAL.read_text())
    assert len(blocks) == 5
    assert all(b.strip() for b in blocks)


def test_every_block_runs_in_order_and_writes_its_figures(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")  # the tutorial shows to_frame()
    monkeypatch.syspath_prepend(str(TUTORIAL.parents[1]))  # this checkout's rftheory, whatever the cwd
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    ns = {"__name__": "__tutorial__"}
    for k, block in enumerate(_blocks(TUTORIAL.read_text())):
        try:
            exec(compile(block, f"docs/tutorial.md block {k + 1}", "exec"), ns)
        except Exception as exc:  # name the block, so a broken tutorial says where
            raise AssertionError(f"docs/tutorial.md block {k + 1} failed: {exc!r}") from exc
    out = capsys.readouterr().out
    assert "P1 holds: True" in out
    for name in FIGURES:
        f = tmp_path / "docs" / "tutorial" / name
        assert f.is_file() and f.stat().st_size > 5_000, name
        # each figure the text shows is one the code writes
        assert f"](tutorial/{name})" in TUTORIAL.read_text(), name
    # the numbers the prose states: normal parts of the two-mode bias at round-off, tangential ones finite
    bias = ns["bias"]
    assert bias.rms_normal < 1e-6 * bias.rms_tangent
    assert os.path.samefile(os.getcwd(), tmp_path)
