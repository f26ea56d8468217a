"""``rftheory figures --paper NAME``: paper's value, ours from the figure JSON, the measure."""
import json

import pytest

from rftheory.cli import main


def _two_mode_json(path):
    rows = {w: {"loss_tangent": [0.2, v], "loss_normal": [1e-3, 2e-15], "score_tangent": [150.0, s],
                "loss_se_tangent": 0.003} for w, v, s in (("1", 0.0602, 87.2), ("1/h", 0.101, 7.75),
                                                          ("1/h2", 0.156, 0.644))}
    path.write_text(json.dumps({"p": 160, "K": 4, "T": 4.0, **rows}))


def test_paper_hqt_prints_paper_ours_and_measure(tmp_path, capsys):
    _two_mode_json(tmp_path / "two_mode.json")
    assert main(["figures", "--paper", "hqt", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.25-2" in out and "0.0602 +- 0.003" in out and "0.156" in out and "87.2" in out
    assert "loss-level" in out and "RMS score error" in out
    assert not list(tmp_path.glob("*.png"))                       # renders nothing


def test_paper_gtv_says_what_is_missing(tmp_path, capsys):
    assert main(["figures", "--paper", "gtv", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not rendered (rftheory figures --only gtv2" in out
    (tmp_path / "gtv2.json").write_text("{broken")
    main(["figures", "--paper", "gtv", "--out", str(tmp_path)])
    assert "unreadable JSON" in capsys.readouterr().out


def test_paper_unknown_name_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["figures", "--paper", "xyz", "--out", str(tmp_path)])
