"""Shared behaviour of the library's result dataclasses: a short ``repr`` (shapes and summary numbers, never
whole arrays) and ``to_frame`` (one row per query point, sample or test point) into a pandas DataFrame, pandas
being an optional dependency (``pip install "rftheory[frames]"``)."""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["short_repr", "summarize", "frame", "require_pandas"]

_PANDAS_MISSING = ("to_frame() needs pandas, an optional dependency of rftheory: "
                   "pip install \"rftheory[frames]\" (or pip install pandas)")


def summarize(value) -> str:
    """A few characters for one field: numbers as ``%.4g``, arrays as their shape and range."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, np.ndarray):
        shape = "x".join(str(k) for k in value.shape) or "scalar"
        if value.size == 0:
            return f"<{shape} empty>"
        if value.dtype == bool:
            return f"<{shape} bool, {int(value.sum())} true>"
        if np.issubdtype(value.dtype, np.number):
            if value.ndim == 0:
                return f"{value.item():.4g}"
            fin = value[np.isfinite(value)] if np.issubdtype(value.dtype, np.floating) else value
            if fin.size == 0:
                return f"<{shape} non-finite>"
            return f"<{shape} {fin.min():.3g}..{fin.max():.3g}>"
        return f"<{shape} {value.dtype}>"
    if dataclasses.is_dataclass(value) or hasattr(value, "__dict__"):
        return f"<{type(value).__name__}>"
    if isinstance(value, (list, tuple, dict)):
        return f"<{type(value).__name__} of {len(value)}>"
    return f"<{type(value).__name__}>"


def short_repr(self) -> str:
    """``ClassName(field=summary, ...)`` over the dataclass fields; use as ``__repr__ = short_repr``."""
    parts = [f"{f.name}={summarize(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.repr]
    return f"{type(self).__name__}({', '.join(parts)})"


def require_pandas():
    """The pandas module, or an ImportError that says how to get it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(_PANDAS_MISSING) from None
    return pandas


def frame(columns: dict, index_name: str | None = None):
    """A DataFrame from ``{name: array}``: 1-D arrays are columns; an (N, D) array becomes the columns
    ``name_0 .. name_{D-1}``. All arrays must have the same first axis."""
    pd = require_pandas()
    out = {}
    n = None
    for name, val in columns.items():
        arr = np.asarray(val)
        if arr.ndim == 0:
            continue
        if n is None:
            n = arr.shape[0]
        if arr.shape[0] != n:
            raise ValueError(f"column {name!r} has {arr.shape[0]} rows, expected {n}")
        if arr.ndim == 1:
            out[name] = arr
        elif arr.ndim == 2:
            for k in range(arr.shape[1]):
                out[f"{name}_{k}"] = arr[:, k]
        else:
            raise ValueError(f"column {name!r} has rank {arr.ndim}; only 1-D and 2-D arrays make columns")
    df = pd.DataFrame(out)
    if index_name is not None:
        df.index.name = index_name
    return df
