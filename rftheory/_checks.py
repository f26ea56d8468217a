"""Input validation shared by the library: errors name the argument and what was expected."""
from __future__ import annotations

import math
from typing import Union

import numpy as np

#: what every ``rng`` argument accepts (see :func:`as_generator`)
RngLike = Union[None, int, np.integer, np.random.SeedSequence, np.random.Generator]


def as_data(data, name: str = "data") -> np.ndarray:
    """A training set: finite real float64 array of shape (n, D), n >= 1, D >= 1."""
    _require_real(data, name)
    try:
        arr = np.array(data, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape (n, D)") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, D); got an array of rank {arr.ndim}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: the training set needs at least one point")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has dimension D = 0")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_points(x, D: int, name: str = "x") -> np.ndarray:
    """Query points: finite real float64 of shape (m, D). A single point of shape (D,) becomes (1, D)."""
    _require_real(x, name)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape (m, {D})") from exc
    if arr.ndim == 1 and arr.shape[0] == D:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != D:
        raise ValueError(f"{name} must have shape (m, {D}); got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def per_point_times(t, m: int, schedule, name: str = "t") -> np.ndarray:
    """Times as a validated (m,) float64 array (a scalar is broadcast)."""
    if type(t) is float and math.isfinite(t) and _plain_domain(schedule) and schedule.t_lo < t <= schedule.t_hi:
        return np.full(m, t)   # a Python float inside the domain: what check_t would accept, without its arrays
    tt = schedule.check_t(t, name)
    if tt.ndim == 0:
        return np.full(m, float(tt))
    if tt.shape != (m,):
        raise ValueError(f"{name} must be a scalar or have shape ({m},); got {tt.shape}")
    return tt.astype(np.float64, copy=False)


def _plain_domain(schedule) -> bool:
    """True if the schedule's times are checked by the base class alone (finite, in ``(t_lo, t_hi]``)."""
    return getattr(type(schedule).check_t, "__qualname__", "") == "Schedule.check_t"


def _require_real(arr, name: str) -> None:
    """Complex input would lose its imaginary part silently in a float64 cast: refuse it by name."""
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got complex values")


def check_ridge_dim(d, D: int, name: str = "d") -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer, float, np.floating)) or int(d) != d:
        raise TypeError(f"{name} (ridge dimension) must be an integer; got {d!r}")
    d = int(d)
    if d < 0 or d >= D:
        raise ValueError(f"{name} (ridge dimension) must satisfy 0 <= d < D = {D}; got {d}")
    return d


def as_generator(rng) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``rng``, as numpy's ``default_rng`` reads it.

    Parameters
    ----------
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        A Generator is used as is (its state advances); an int or a SeedSequence seeds a new one (same seed,
        same bits); None gives a fresh generator seeded from the operating system's entropy (a different
        stream on every call; no global state is read or changed).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If ``rng`` is anything else (a bool, a float, a legacy ``RandomState``...).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer, np.random.SeedSequence)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an integer seed, a SeedSequence or a numpy.random.Generator; "
                    f"got {type(rng).__name__}")


def single_query(method):
    """Decorate a score-field method ``f(self, x, t, ...)`` so that a single query point of shape (D,) gives
    results without the leading query axis, as scipy's distributions do: (D,) for a score, (D, D) for a
    Hessian, a float for a log-density (a tuple of results is unbatched item by item). Queries of shape
    (m, D) are passed through unchanged (an (1, D) query keeps its axis)."""
    import functools

    @functools.wraps(method)
    def wrapper(self, x, t, *args, **kwargs):
        out = method(self, x, t, *args, **kwargs)
        if np.ndim(x) != 1:
            return out
        if isinstance(out, tuple):
            return tuple(_unbatch(o) for o in out)
        return _unbatch(out)

    return wrapper


def _unbatch(a):
    a = a[0]
    return a.item() if np.ndim(a) == 0 else a


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools refused); errors name the argument."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {v}")
    return int(v)


def check_real(v, name: str, positive: bool = False) -> float:
    """A finite real number (and > 0 if ``positive``); errors name the argument."""
    ok = isinstance(v, (int, float, np.integer, np.floating)) or (
        isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf")
    if isinstance(v, (bool, np.bool_)) or not ok:
        raise TypeError(f"{name} must be a real number; got {v!r}")
    v = float(v)
    if not np.isfinite(v) or (positive and not v > 0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}; got {v}")
    return v
