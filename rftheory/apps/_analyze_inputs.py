"""Input files of ``rftheory analyze``: .npy / .npz / .csv tables (images are flattened; a CSV's first line is a
header only when ``header=True``, otherwise a malformed line is an error naming it) and the ``--trajectories``
.npz. :mod:`rftheory.apps.analyze_report` re-exports :func:`load_table`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_table"]


# ----------------------------------------------------------------------------- input files
def load_table(path, name: str = "input", header: bool = False) -> np.ndarray:
    """Rows of a .npy, .npz (one array, or one named like ``name``) or .csv file as a float64 (n, D) array;
    images (n, h, w[, c]) are flattened, a 1-d array is one column.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its suffix (.npy, .npz, .csv) chooses the reader.
    name : str, default "input"
        Name used in error messages and to pick the array of a multi-array .npz.
    header : bool, default False
        A CSV's first line is a header (skipped).

    Returns
    -------
    numpy.ndarray, shape (n, D)
        float64, finite.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        Naming ``name`` and the path: empty file, unreadable format, ambiguous .npz, non-numeric data (the
        CSV line), no data, a single number, NaN/inf rows.
    """
    p = Path(path)
    what = f"{name} ({p})"
    if not p.is_file():
        raise FileNotFoundError(f"{what}: no such file")
    if p.stat().st_size == 0:
        raise ValueError(f"{what}: file is empty")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key = keys[0] if len(keys) == 1 else (name if name in keys else None)
                if key is None:
                    raise ValueError(f"holds arrays {keys}; keep one, or name it {name!r}")
                arr = z[key]
        elif suffix == ".csv":
            arr = _load_csv(p, header)
        else:
            raise ValueError(f"unreadable format {suffix or '(no suffix)'!r}: expected .npy, .npz or .csv")
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: cannot read the file ({exc})") from exc
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: data must be numeric; got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what}: holds no data (shape {arr.shape})")
    if arr.ndim == 0:
        raise ValueError(f"{what}: holds a single number, not rows of points")
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 1 else arr[:, None]
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
    if bad.size:
        raise ValueError(f"{what}: {bad.size} row(s) contain NaN or inf (first: {bad[:5].tolist()})")
    return arr


def _load_csv(p, header):
    with open(p) as fh:
        lines = fh.read().splitlines()
    first = 1 if header else 0
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if i >= first and ln.strip()]
    if not rows:
        raise ValueError("file is empty" if not any(ln.strip() for ln in lines) else "holds a header but no rows")
    try:  # fast path; on failure the rows are scanned to name the bad line
        return np.loadtxt(p, delimiter=",", ndmin=2, skiprows=first)
    except ValueError:
        pass
    width = None
    for lineno, ln in rows:
        cells = ln.split(",")
        try:
            [float(c) for c in cells]
        except ValueError:
            hint = "; if it is a header, pass --header" if lineno == 1 and not header else ""
            raise ValueError(f"line {lineno} is not a row of numbers: {ln[:60]!r}{hint}") from None
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise ValueError(f"line {lineno} has {len(cells)} columns but the first row has {width}")
    raise ValueError("not a numeric CSV table")


def _load_trajectories(path):
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--trajectories {p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "states" not in z or "times" not in z:
                raise ValueError(f"holds {list(z.keys())}; needs 'states' (k, m, D) and 'times' (k,)")
            return {"states": z["states"], "times": z["times"]}
    except ValueError as exc:
        raise ValueError(f"--trajectories {p}: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"--trajectories {p}: cannot read the file ({exc})") from exc
