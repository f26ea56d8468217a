"""The house's layout: every sub-package imports only from parts at or below its own layer, and the old flat
module names still import as the same module objects."""
import ast
import importlib
import pathlib
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "rftheory"
# Layer of each part; a module may import a part of a lower or equal layer only (equal: itself).
LAYER = {"_checks": 0, "_io": 0, "_blas": 0, "_results": 0, "_dask": 0, "data": 1, "density": 1, "geometry": 2, "dynamics": 3, "rf": 4,
         "gtv": 4, "fields": 5, "apps": 6, "cli": 7, "__main__": 8}
SIBLINGS_OK = {("rf", "gtv"): False, ("gtv", "rf"): False, ("data", "density"): False, ("density", "data"): False}


def _part(dotted: str) -> str:
    """'rftheory.geometry.ridge' -> 'geometry'; 'rftheory' -> '' (the face)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: pathlib.Path):
    mod = "rftheory." + ".".join(path.relative_to(PKG).with_suffix("").parts)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    pkg = pkg.removesuffix(".__init__")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            for t in names:
                if t.startswith("rftheory"):
                    yield mod, t
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("rftheory"):
                    yield mod, a.name


def _violations():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        if path == PKG / "__init__.py":
            continue  # the face imports everything
        for mod, target in _imports(path):
            src, dst = _part(mod).removesuffix(".py"), _part(target)
            src = src.split(".")[0]
            if not dst or src == dst:
                if not dst:
                    bad.append((mod, target, "imports the package face"))
                continue
            ls, ld = LAYER.get(src), LAYER.get(dst)
            if ls is None or ld is None:
                bad.append((mod, target, "part without a layer"))
            elif ld > ls or (ld == ls and not SIBLINGS_OK.get((src, dst), False)):
                bad.append((mod, target, f"{src} (layer {ls}) imports {dst} (layer {ld})"))
    return bad


def test_parts_import_downward_only():
    assert _violations() == []


def test_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check has power: an upward import (geometry -> rf) planted in a copy of the tree is reported."""
    import shutil
    copy = tmp_path / "rftheory"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    ridge = copy / "geometry" / "ridge.py"
    ridge.write_text(ridge.read_text() + "\nfrom ..rf.model import loss  # planted\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", copy)
    assert any("geometry (layer 2) imports rf (layer 4)" in v[2] for v in _violations())


@pytest.mark.parametrize("part", ["density", "geometry", "dynamics", "rf", "gtv", "data", "apps"])
def test_each_part_has_a_docstring_naming_its_imports(part):
    doc = importlib.import_module(f"rftheory.{part}").__doc__ or ""
    assert len(doc.split()) >= 25, part
    assert "import" in doc, f"rftheory.{part}'s docstring does not say what it may import"


@pytest.mark.parametrize("old,new", [("rf_model", "rf.model"), ("rf_moments", "rf.moments"),
                                     ("sampling", "dynamics.sampling"), ("ridge", "geometry.ridge"),
                                     ("empirical", "density.empirical"), ("feature_ensembles", "gtv.ensembles"),
                                     ("realdata", "data.realdata"), ("analyze", "apps.analyze")])
def test_old_flat_names_are_the_new_modules(old, new):
    assert importlib.import_module(f"rftheory.{old}") is importlib.import_module(f"rftheory.{new}")


def test_face_names():
    import rftheory
    from rftheory import EmpiricalDensity, bounds, datasets, dynamics, ridge, sampling, schedules  # noqa: F401
    assert callable(dynamics.measure) and callable(dynamics.memorization)
    assert rftheory.variance is importlib.import_module("rftheory.gtv.variance")
    with pytest.raises(AttributeError):
        rftheory.no_such_module
