"""Bring your own model: any score function as a score field the library accepts.

:class:`ScoreField` wraps a callable ``score(x, t) -> (m, D)`` (numpy in, numpy out) with a named forward
schedule (``"ou"``, ``"vp"``, ``"linear_vp"``, ``"ve"`` or a Schedule) into an object with ``score``,
``hessian``, ``score_and_hessian``, ``schedule`` and ``D``: what the samplers
(:func:`rftheory.dynamics.sampling.sample`), the ridge (:mod:`rftheory.geometry.ridge`),
:func:`rftheory.dynamics.motion.measure` and :mod:`rftheory.rf.decomposition` take.

* The callable is always called with a float ``t`` (points that share a time are passed together; a batch
  with several times is split by time), and its output is checked: shape (m, D), finite, else a ValueError
  naming the callable.
* ``hessian``: the callable's own ``hessian(x, t) -> (m, D, D)`` when given; otherwise central differences of
  the score, ``H[:, :, j] = (s(x + delta e_j) - s(x - delta e_j)) / (2 delta)``, symmetrised, with step
  ``delta = eps^(1/3) sqrt(h_t)`` (sqrt(h_t) is the length on which a score of p_t varies; eps = 2.2e-16):
  truncation error ``delta^2 |d^3 s| / 6`` and rounding error ``eps |s| / delta`` are then both of relative
  size ~ eps^(2/3) ~ 4e-11 for a score that varies on that scale (2 D score calls per Hessian).

:func:`torch_score_field` does the same for a PyTorch module ``module(x, t)`` (torch is imported only there:
never a dependency of the package). :func:`save_rf` / :func:`load_rf` store a trained random-feature score
field (:class:`rftheory.rf.model.RFScoreField`) in an ``.npz`` file of format ``rftheory.rf/1``:

    format "rftheory.rf/1"; W_x (p, D), W_t (p, 2K+1), b (p,), W (D, p) float64; D, p, K int; T float;
    activation str (a name in rftheory.rf.features.ACTIVATIONS); bias bool; schedule str; parametrization str.

Parts: imports rftheory._checks, density (schedules) and rf (model) only (layer 5, below apps).
"""
from __future__ import annotations

import importlib
import sys

import numpy as np

from ._checks import as_points, per_point_times
from .density.schedules import Schedule, get_schedule

__all__ = ["ScoreField", "as_score_field", "torch_score_field", "save_rf", "load_rf", "load_callable", "RF_FORMAT"]

_EPS = np.finfo(np.float64).eps
RF_FORMAT = "rftheory.rf/1"


class ScoreField:
    """A score field from a callable ``score(x, t)`` (see the module doc).

    Parameters
    ----------
    score : callable (m, D) array, float t -> (m, D) array (1/length)
    schedule : schedule name or Schedule (gives a_t, h_t; the samplers' drift)
    D : data dimension (taken from the first call if None)
    hessian : optional callable (m, D) array, float t -> (m, D, D) array (1/length^2)
    name : for messages (default: the callable's name)
    """

    def __init__(self, score, schedule: Schedule | str = "ou", D: int | None = None, hessian=None,
                 name: str | None = None):
        if not callable(score):
            raise TypeError(f"score must be a callable score(x, t); got {type(score).__name__}")
        if hessian is not None and not callable(hessian):
            raise TypeError(f"hessian must be a callable hessian(x, t) or None; got {type(hessian).__name__}")
        self._score, self._hessian = score, hessian
        self.schedule = get_schedule(schedule)
        self.D = None if D is None else int(D)
        self.name = name or getattr(score, "__qualname__", None) or repr(score)

    def __repr__(self):
        return f"ScoreField({self.name}, schedule={self.schedule.name}, D={self.D})"

    def _call(self, fn, x, t, shape_tail, what):
        x = np.asarray(x)  # as_points converts, refusing complex or non-numeric input by name
        if self.D is None and x.ndim == 2:
            self.D = int(x.shape[1])
        x = as_points(x, self.D, "x")
        m = x.shape[0]
        tt = per_point_times(t, m, self.schedule)
        out = np.empty((m, *shape_tail(x.shape[1])))
        for tv in np.unique(tt):
            sel = tt == tv
            y = np.asarray(fn(x[sel].copy(), float(tv)), dtype=np.float64)
            want = (int(sel.sum()), *shape_tail(x.shape[1]))
            if y.shape != want:
                raise ValueError(f"{self.name}: {what} returned shape {y.shape} for x of shape "
                                 f"{x[sel].shape} at t = {tv:g}; expected {want}")
            if not np.all(np.isfinite(y)):
                raise ValueError(f"{self.name}: {what} returned NaN or inf at t = {tv:g}")
            out[sel] = y
        return out

    def score(self, x, t) -> np.ndarray:
        """(m, D) the wrapped score at x (m, D), t scalar or (m,).

        Parameters
        ----------
        x : array_like, shape (m, D)
            Query points (a single (D,) point is taken as (1, D) once D is known).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain; the callable is called once per distinct time.

        Returns
        -------
        numpy.ndarray, shape (m, D)
            The callable's score (1/length), always with the query axis.

        Raises
        ------
        ValueError
            If x is not of shape (m, D) or not finite, t is outside the schedule's domain or not scalar or
            (m,), or the callable returns the wrong shape or NaN/inf.
        TypeError
            If x cannot be converted to float64 (a non-numeric string is a ValueError from numpy).
        """
        return self._call(self._score, x, t, lambda D: (D,), "score")

    def hessian(self, x, t) -> np.ndarray:
        """(m, D, D) the callable's Hessian, or central differences of the score (module doc).

        Parameters
        ----------
        x : array_like, shape (m, D)
            Query points (a single (D,) point is taken as (1, D) once D is known).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D)
            The symmetrised Hessian of log p_t (1/length^2): the ``hessian`` callable's if one was given,
            else central differences of :meth:`score` with step ``eps^(1/3) sqrt(h_t)`` (2 D calls
            of :meth:`score`).

        Raises
        ------
        ValueError
            As :meth:`score`: bad x or t, or a callable returning the wrong shape or NaN/inf.
        TypeError
            If x cannot be converted to float64 (a non-numeric string is a ValueError from numpy).
        """
        if self._hessian is not None:
            H = self._call(self._hessian, x, t, lambda D: (D, D), "hessian")
            return 0.5 * (H + np.swapaxes(H, 1, 2))
        x = np.asarray(x)  # as_points converts, refusing complex or non-numeric input by name
        if self.D is None and x.ndim == 2:
            self.D = int(x.shape[1])
        x = as_points(x, self.D, "x")
        m, D = x.shape
        tt = per_point_times(t, m, self.schedule)
        delta = _EPS ** (1.0 / 3.0) * np.sqrt(self.schedule._h(tt))  # (m,)
        H = np.empty((m, D, D))
        for j in range(D):
            e = np.zeros(D)
            e[j] = 1.0
            step = delta[:, None] * e[None, :]
            H[:, :, j] = (self.score(x + step, tt) - self.score(x - step, tt)) / (2.0 * delta[:, None])
        return 0.5 * (H + np.swapaxes(H, 1, 2))

    def score_and_hessian(self, x, t):
        """The score and the Hessian at the same points: ``(score(x, t), hessian(x, t))``.

        Parameters
        ----------
        x : array_like, shape (m, D)
            Query points.
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        score : numpy.ndarray, shape (m, D)
            As :meth:`score` (1/length).
        hessian : numpy.ndarray, shape (m, D, D)
            As :meth:`hessian` (1/length^2).

        Raises
        ------
        ValueError, TypeError
            As :meth:`score` and :meth:`hessian`.
        """
        return self.score(x, t), self.hessian(x, t)


def load_callable(spec: str):
    """``package.module:function`` -> the function (a ValueError naming the spec when it cannot be found).

    Parameters
    ----------
    spec : str
        ``package.module:name``; ``name`` may be dotted (``module:Class.method``).

    Returns
    -------
    callable
        The object the spec names.

    Raises
    ------
    ValueError
        If the spec has no ``:``, the module cannot be imported, an attribute is missing, or the object is
        not callable (messages worded for the CLI's ``--score``).
    """
    mod_name, sep, attr = str(spec).partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"--score must look like package.module:function; got {spec!r}")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"--score {spec}: cannot import {mod_name!r} ({exc})") from exc
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--score {spec}: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"--score {spec}: {attr!r} is not callable")
    return obj


def as_score_field(obj, schedule: Schedule | str = "ou", name: str | None = None) -> ScoreField:
    """The score field a user's object stands for: a :class:`ScoreField` as it is, a PyTorch module
    (``torch.nn.Module``) through :func:`torch_score_field` (float64, cpu), any other callable
    ``score(x, t)`` on numpy arrays through :class:`ScoreField`. What ``rftheory analyze --score`` uses.

    Parameters
    ----------
    obj : ScoreField, torch.nn.Module or callable
        The model. A plain function on tensors is not recognised (it cannot be told from a numpy function
        without calling it): wrap it in a module or call :func:`torch_score_field` yourself.
    schedule : Schedule or str, default "ou"
        The forward process the model was trained on (ignored for a ScoreField, which has its own).
    name : str, optional
        The field's name in reports (default: the callable's or the module class's name).

    Returns
    -------
    ScoreField

    Raises
    ------
    TypeError
        If ``obj`` is not callable.
    """
    if isinstance(obj, ScoreField):
        return obj
    if not callable(obj):
        raise TypeError(f"obj must be a ScoreField, a torch.nn.Module or a callable score(x, t); got "
                        f"{type(obj).__name__}")
    torch = sys.modules.get("torch")  # a module instance implies torch is imported: never import it here
    if torch is not None and isinstance(obj, getattr(getattr(torch, "nn", None), "Module", ())):
        field = torch_score_field(obj, schedule)
        if name is not None:
            field.name = name
        return field
    return ScoreField(obj, schedule, name=name)


def torch_score_field(module, schedule: Schedule | str = "ou", D: int | None = None, device="cpu",
                      dtype=None) -> ScoreField:
    """A :class:`ScoreField` from a PyTorch module or function ``module(x, t) -> (m, D)`` with x a tensor
    (m, D) and t a tensor (m,) of one repeated time. Evaluated under ``torch.no_grad()`` in ``dtype``
    (default float64) on ``device``; the Hessian by central differences (module doc). Needs torch.

    Parameters
    ----------
    module : callable
        ``module(x, t)`` taking tensors x (m, D) and t (m,) and returning the score (m, D) (1/length).
    schedule : Schedule or str, default "ou"
        The forward process the model was trained on.
    D : int, optional
        Data dimension (taken from the first call if None).
    device : str or torch.device, default "cpu"
        Where x and t are placed.
    dtype : torch.dtype, optional
        Tensor dtype (default ``torch.float64``); the output is returned as float64 numpy.

    Returns
    -------
    ScoreField
        Named after ``module``'s class; its ``score`` checks the output's shape and finiteness.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    ValueError
        If the schedule name is unknown.
    """
    try:
        import torch
    except ImportError as exc:  # optional: never a dependency of the package
        raise ImportError("torch_score_field needs PyTorch (pip install torch)") from exc
    dt = torch.float64 if dtype is None else dtype

    def score(x, t):
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=dt, device=device)
            tt = torch.full((x.shape[0],), float(t), dtype=dt, device=device)
            return module(xt, tt).detach().cpu().double().numpy()

    return ScoreField(score, schedule, D=D, name=getattr(module, "__class__", type(module)).__name__)


def save_rf(path, field) -> None:
    """Write a :class:`rftheory.rf.model.RFScoreField` (a trained RF model and its weights W) to ``path``
    (.npz, format ``rftheory.rf/1``: module doc).

    Parameters
    ----------
    path : str or os.PathLike
        Destination, written as given (no suffix added); its parent directory is created. The file is
        written to a temporary beside it and renamed over it, so a reader never sees a partial file.
    field : RFScoreField
        The field to store: its model's W_x, W_t, b, D, p, K, T, activation and bias, its W, schedule name
        and parametrization.

    Returns
    -------
    None

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    from ._io import atomic_path

    m = field.model
    arrays = dict(format=np.array(RF_FORMAT), W_x=m.W_x, W_t=m.W_t, b=m.b, W=field.W, D=np.array(m.D),
                  p=np.array(m.p), K=np.array(m.K), T=np.array(m.T), activation=np.array(m.act.name),
                  bias=np.array(m.bias), schedule=np.array(field.schedule.name),
                  parametrization=np.array(field.parametrization))
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_rf(path):
    """Read an RF score field written by :func:`save_rf`; every inconsistency is a ValueError naming the
    file and the key.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` file of format ``rftheory.rf/1`` (module doc).

    Returns
    -------
    RFScoreField
        The stored model's field with its weights W, schedule and parametrization.

    Raises
    ------
    ValueError
        If the file cannot be read, a key is missing, the format is not ``rftheory.rf/1``, an array has the
        wrong shape or is not finite, or the stored activation, schedule or parametrization is unknown.
    """
    from .rf.model import RandomFeatureModel

    need = ("format", "W_x", "W_t", "b", "W", "D", "p", "K", "T", "activation", "bias", "schedule",
            "parametrization")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in need if k not in z]
            if missing:
                raise ValueError(f"missing key(s) {missing} (format {RF_FORMAT})")
            v = {k: z[k] for k in need}
    except (OSError, EOFError) as exc:
        raise ValueError(f"--model {path}: cannot read the file ({exc})") from exc
    except ValueError as exc:
        raise ValueError(f"--model {path}: {exc}") from exc
    if str(v["format"]) != RF_FORMAT:
        raise ValueError(f"--model {path}: format {str(v['format'])!r}, expected {RF_FORMAT!r}")
    D, p, K = int(v["D"]), int(v["p"]), int(v["K"])
    model = RandomFeatureModel(D, p, K, float(v["T"]), activation=str(v["activation"]), bias=bool(v["bias"]),
                               rng=0)
    for key, shape in (("W_x", (p, D)), ("W_t", (p, 2 * K + 1)), ("b", (p,)), ("W", (D, p))):
        arr = np.asarray(v[key], dtype=np.float64)
        if arr.shape != shape or not np.all(np.isfinite(arr)):
            raise ValueError(f"--model {path}: {key} must be finite of shape {shape}; got {arr.shape}")
        v[key] = arr
    model.W_x, model.W_t, model.b = v["W_x"], v["W_t"], v["b"]
    return model.score_field(v["W"], schedule=str(v["schedule"]), parametrization=str(v["parametrization"]))
