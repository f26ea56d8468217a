"""Training sets: the papers' mode configurations, the project's 13-point set, circles and the GTV sets.

All functions return float64 arrays of shape (n, D). Anything random takes a ``numpy.random.Generator``.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_generator

__all__ = ["MODES", "modes", "THIRTEEN", "thirteen_points", "circle", "GTV_SETS", "gtv_set"]

# [HQT] §6 mode configurations (equal weights). Side 5 for the square family, as in the 3-mode set.
MODES = {
    "one": [(5.0, 0.0)],
    "two": [(0.0, 0.0), (5.0, 0.0)],
    "two_sym": [(-3.0, 0.0), (3.0, 0.0)],
    "three": [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)],
    "square": [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 5.0)],
    "triangle_mid": [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (2.5, 2.5)],
    "square_centre": [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 5.0), (2.5, 2.5)],
    "grid3": [(float(i), float(j)) for i in range(3) for j in range(3)],
}


def modes(name: str) -> np.ndarray:
    """A mode configuration of the [HQT] experiments by name.

    Parameters
    ----------
    name : str
        One of ``MODES``: "one", "two", "two_sym", "three", "square", "triangle_mid", "square_centre", "grid3".

    Returns
    -------
    numpy.ndarray, shape (n, 2)

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in MODES:
        raise ValueError(f"unknown mode configuration {name!r}; choose from {sorted(MODES)}")
    return np.array(MODES[name], dtype=np.float64)


# The [HQT] Fig. 1 analogue. The paper's 13 coordinates are not public; this project fixes its own:
# an upper arc of 7 points, a lower arc of 3 and 3 isolated points, so that the d = 1 ridge has long
# connected stretches (the arcs), short bridges between nearby points and isolated modes.
THIRTEEN = [
    (-3.0, 0.0), (-2.0, 1.0), (-1.0, 1.5), (0.0, 1.7), (1.0, 1.5), (2.0, 1.0), (3.0, 0.0),
    (-1.0, -1.0), (0.0, -1.2), (1.0, -1.0),
    (0.0, -3.0), (-2.5, -2.5), (2.5, -2.5),
]


def thirteen_points() -> np.ndarray:
    """The project's fixed 13-point 2-D training set (see ``THIRTEEN``), the [HQT] Fig. 1 analogue.

    Returns
    -------
    numpy.ndarray, shape (13, 2)
    """
    return np.array(THIRTEEN, dtype=np.float64)


def circle(n: int, rho: float = 1.0, noise: float = 0.0, rng=None, offset: float = 0.0) -> np.ndarray:
    """n points on a circle of radius rho (the P3 setting).

    Evenly spaced (angle offset ``offset``) when ``noise == 0`` and ``rng`` is None; otherwise uniform random
    angles (from ``rng``) plus isotropic N(0, noise^2) noise. Here None is not a fresh generator: it selects the
    deterministic, evenly spaced circle.

    Parameters
    ----------
    n : int
        Number of points.
    rho : float, default 1.0
        Radius.
    noise : float, default 0.0
        Standard deviation of the added noise.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Random angles (and noise) when given.
    offset : float, default 0.0
        Angle of the first point of the even circle (radians).

    Returns
    -------
    numpy.ndarray, shape (n, 2)

    Raises
    ------
    ValueError
        If noise > 0 without an rng, or the arguments are invalid.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n}")
    if not rho > 0:
        raise ValueError(f"rho must be positive; got {rho}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    n = int(n)
    if rng is None:
        if noise > 0:
            raise ValueError("noise > 0 needs rng (a numpy Generator or seed)")
        th = offset + 2 * np.pi * np.arange(n) / n
        return rho * np.column_stack([np.cos(th), np.sin(th)])
    g = as_generator(rng)
    th = g.uniform(0.0, 2 * np.pi, n)
    pts = rho * np.column_stack([np.cos(th), np.sin(th)])
    if noise > 0:
        pts = pts + noise * g.standard_normal((n, 2))
    return pts


_HEX = [(np.cos(k * np.pi / 3), np.sin(k * np.pi / 3)) for k in range(6)]
GTV_SETS = {
    "hexagon": _HEX,
    "line": [(v, v) for v in np.linspace(-1.0, 1.0, 6)],
    "L": [(-1.0, -1.0), (-1.0, 0.0), (-1.0, 1.0), (0.0, -1.0), (0.5, -1.0), (1.0, -1.0)],
    "random": [(-1.0, -1.0), (-0.9, 1.0), (-0.3, 0.2), (0.1, -0.1), (0.2, -0.1), (0.9, 0.7)],
}


def gtv_set(name: str) -> np.ndarray:
    """[GTV] Fig. 1 six-point sets.

    Parameters
    ----------
    name : {"hexagon", "line", "L", "random"}

    Returns
    -------
    numpy.ndarray, shape (6, 2)

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in GTV_SETS:
        raise ValueError(f"unknown GTV set {name!r}; choose from {sorted(GTV_SETS)}")
    return np.array(GTV_SETS[name], dtype=np.float64)


# Real data (scikit-learn digits, MNIST IDX files, the exact PCA latent map) live in realdata.py; re-exported.
from .realdata import (DEFAULT_LATENT_DIM, PCALatent, load_digits, load_idx, load_mnist,  # noqa: E402
                       select_class)

__all__ += ["load_digits", "select_class", "load_idx", "load_mnist", "PCALatent", "DEFAULT_LATENT_DIM"]
