"""GTV figures: render with quick=True into tmp_path; files exist, are non-trivial images, data checks."""
import numpy as np
import pytest
from matplotlib import image as mpimg

from paper_figures import registry


def _check_files(res, tmp_path):
    assert len(res.files) == 2
    for p in res.files:
        assert p.exists() and p.parent == tmp_path
    png = [p for p in res.files if p.suffix == ".png"][0]
    pdf = [p for p in res.files if p.suffix == ".pdf"][0]
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05  # not a blank canvas


@pytest.fixture(scope="module")
def figs():
    return registry.figures()


def test_registered(figs):
    for name in ("gtv1", "gtv2", "gtv3"):
        assert name in figs
        mod = figs[name]
        assert mod.TITLE and len(mod.CAPTION) > 100


def test_gtv1(figs, tmp_path):
    res = figs["gtv1"].render(tmp_path, quick=True, seed=0, progress=False)
    _check_files(res, tmp_path)
    maps = res.data["maps"]
    assert set(maps) == {"hexagon", "line", "L", "random"}
    for v in maps.values():
        assert v.shape == (5, 40, 40) and np.all((v >= 0) & (v <= 1))
    # hexagon at t = 0.2: near the centre (equidistant from all six points) s* ~ 0 by symmetry -> ~1;
    # at t = 0.05 the grid corner (-2, -2) is far from every point on the scale sqrt(h) = 0.22: the weights
    # are one-hot up to exp(-(d_2^2 - d_1^2)/(2h)) ~ 1e-7, so tr C is that small against |s*|^2 ~ (d/h)^2
    g = res.data["grid"]
    i0 = np.argmin(np.abs(g))
    assert maps["hexagon"][2][i0, i0] > 0.9
    assert maps["hexagon"][0][0, 0] < 1e-3


def test_gtv2(figs, tmp_path):
    res = figs["gtv2"].render(tmp_path, quick=True, seed=0, progress=False)
    _check_files(res, tmp_path)
    d = res.data
    assert d["gap_mean"].shape == (3, 5)
    assert np.all(np.isfinite(d["gap_mean"])) and np.all((d["gap_mean"] >= 0) & (d["gap_mean"] <= 1))
    # the exact p(x|eps) has (almost) nothing in the gaps; the learned densities at F/P = 4 have more
    assert np.all(d["gap_exact"] < 1e-4)
    assert np.all(d["gap_mean"][:, 0] > d["gap_exact"])
    # each mean density integrates to the mass inside [-1.5, 1.5] (<= 1)
    mass = (d["density_mean"] * np.diff(d["edges"])).sum(-1)
    assert np.all(mass <= 1 + 1e-12) and np.all(mass > 0.9)
    # the paper's conventions are the default; the JSON carries the band and the exact-score curve
    assert d["grid"] == "uniform" and d["n_steps"] == 30
    assert np.all(d["density_q25"] <= d["density_q75"]) and d["density_q25"].shape == d["density_mean"].shape
    assert np.all(d["gap_se"] > 0) and d["density_exact_pfode"].shape == (3, d["edges"].size - 1)


def test_gtv3(figs, tmp_path):
    res = figs["gtv3"].render(tmp_path, quick=True, seed=0, progress=False)
    _check_files(res, tmp_path)
    d = res.data
    assert d["finite"]
    assert d["density"].shape[:2] == (2, 3)
    mass = d["density"].sum((-1, -2)) * np.diff(d["edges"])[0] ** 2
    assert np.all(mass <= 1 + 1e-12) and np.all(mass > 0.9)
    assert np.all((d["near_mass"] > 0.3) & (d["near_mass"] < 1.0))
    assert d["grid"] == "uniform" and d["fourier_period"] == 1.0
