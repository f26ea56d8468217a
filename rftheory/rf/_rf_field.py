"""The score field of a trained random-feature model (split out of :mod:`rftheory.rf.model`, which re-exports it).

:class:`RFScoreField` evaluates ``f_W(x, t)`` in row blocks and turns it into a score by the model's
parametrization (see :mod:`rftheory.rf.model` for the sign convention).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_points, per_point_times, single_query
from . import _field_kernel
from .moments import PARAMETRIZATIONS
from ..density.schedules import OU, get_schedule

__all__ = ["RFScoreField"]

_BLOCK_FLOATS = 2**18


class RFScoreField:
    """Score field of a trained RF model (docs/design.md §3.1): ``score(x, t)`` and the raw ``output(x, t)``.

    A single (D,) query returns a (D,) result, as scipy does; (m, D) queries return (m, D). It has no Hessian:
    the ridge is always that of a density (``PerturbedField`` or ``decomposition`` pair the two). Usually made
    by :meth:`RandomFeatureModel.score_field`.

    Parameters
    ----------
    model : RandomFeatureModel
    W : array_like, shape (D, p)
        Output weights.
    schedule : Schedule or str, default OU()
    parametrization : {"posterior_mean", "score"}

    Raises
    ------
    ValueError
        If W has the wrong shape or the parametrization is unknown.
    """

    def __init__(self, model: RandomFeatureModel, W, schedule=None, parametrization="posterior_mean"):
        W = np.asarray(W, dtype=np.float64)
        if W.shape != (model.D, model.p):
            raise ValueError(f"W must have shape (D, p) = {(model.D, model.p)}; got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W contains NaN or inf")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}; got {parametrization!r}")
        self.model, self.W = model, W
        self.schedule = OU() if schedule is None else get_schedule(schedule)
        self.parametrization = parametrization
        self.D = model.D
        self._last_time_row = None                  # (t, its embedded row) of the last one-time call

    def _apply(self, x, tt) -> np.ndarray:
        if tt.size and tt.min() == tt.max():        # one time (a sampler's step)
            last = self._last_time_row              # a sampler asks each step's end time again at the next step
            if last is None or last[0] != tt[0]:    # (t, row) replaced whole: safe across threads
                last = self._last_time_row = (float(tt[0]), self.model._time_rows(tt[:1])[0])
            C, inv = last[1], np.zeros(tt.size, dtype=np.intp)
        else:
            C, inv = self.model._time_rows(tt)      # once per call, not once per block
        if _field_kernel.applies(self.model, C.shape[0]):    # ReLU, D <= 2, one time: compiled (its docstring)
            return _field_kernel.relu_field(x, self.model.W_x, C[0], self.W)
        # rows in blocks whose (rows, p) features stay about 2 MiB (cache-resident): 3.5x faster than one
        # (m, p) product at m = 2000, p = 1000
        rows = max(1, _BLOCK_FLOATS // self.model.p)
        out = np.empty((x.shape[0], self.D))
        for i in range(0, x.shape[0], rows):
            out[i:i + rows] = self.model._features(x[i:i + rows], C, inv[i:i + rows]) @ self.W.T
        return out

    @single_query
    def output(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The raw network output ``f_W(x, t)``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query

        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t is outside the schedule's domain.
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._apply(x, tt)

    @single_query
    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The model's score.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            ``(f - x)/h_t`` (posterior-mean parametrization) or ``f`` (direct score); 1/length.

        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t is outside the schedule's domain.
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        f = self._apply(x, tt)
        if self.parametrization == "score":
            return f
        return (f - x) / self.schedule._h(tt)[:, None]


# Last, so that the annotation resolves (typing.get_type_hints): rftheory.rf.model imports this module after
# defining RandomFeatureModel, and every import of this module goes through rftheory.rf, which imports model.
from .model import RandomFeatureModel  # noqa: E402
