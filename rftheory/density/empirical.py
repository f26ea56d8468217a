"""The smoothed empirical density ``p_t = (1/n) sum_i N(a_t x_i, h_t I)`` (docs/theory.md §1).

Everything is a function of the posterior weights ``w_i(x, t) = softmax_i(-|x - a_t x_i|^2 / (2 h_t))``:

    m_t(x)  = sum_i w_i x_i                       posterior mean (Tweedie)
    S_t(x)  = sum_i w_i (x_i - m)(x_i - m)^T       posterior covariance
    s*(x,t) = (a_t m_t - x) / h_t                  score
    H_t(x)  = -I/h_t + (a_t^2/h_t^2) S_t(x)        Hessian of log p_t (P1; derivations/p1_hessian.py)

Numerics (float64 throughout):

* The data are centred at their mean c once; queries become ``x' = x - a_t c`` (P2's translation law),
  so the inner products below are between vectors of the data's own spread, not its offset.
* The logits are evaluated as ``l~_i = (a x'.x_i - a^2|x_i|^2/2)/h``; the dropped ``-|x'|^2/(2h)`` is the
  same for every i, so softmax is unchanged and the work is one matrix product per chunk.
* One pass over chunks of the training set with a running maximum (the log-sum-exp of pspc's
  ``empirical_pmean``), merging weighted means and scatter matrices exactly (Chan et al.'s pairwise update),
  so memory is bounded by the chunk, not by n * m.
* ``log p`` is recomputed around the heaviest point: ``-|x' - a x_*|^2/(2h) + log sum_i e^{l~_i - l~_*}``, which
  never forms ``|x'|^2/(2h)`` (that would lose all digits at h = 1e-8).
* The scatter matrix is formed by one matrix product of ``e_i`` with ``x_i x_i^T`` (fast path) unless its
  cancellation error would matter: at small h (``a^2 R^2 / h`` > 1e4, R the largest distance of a data
  point from c) or where a query's posterior is nearly one-hot (mass off its top point < 1e-2, so the
  covariance is small against R^2). There the sums are centred per query at its heaviest point (precise
  path), which keeps the covariance's small eigenvalues, and so the ridge frame, to full relative precision.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_points, per_point_times, single_query
from . import _fused_pass
from ._posterior import PosteriorMoments, _require_finite
from ._streaming import _StreamingPass
from .schedules import OU, Schedule, get_schedule

__all__ = ["EmpiricalDensity", "PosteriorMoments"]


class EmpiricalDensity(_StreamingPass):
    """Smoothed empirical density of a finite training set under a forward schedule.

    Parameters
    ----------
    data : (n, D) array_like
        Training points (finite).
    schedule : Schedule or str, default OU()
        Forward process giving a_t and h_t.
    chunk_size : int, default 2048
        Training points per streaming chunk; memory scales with it, not with n.
    precise : {"auto", True, False}
        Scatter-matrix path: "auto" switches to the per-query centred sum at small h (see module doc).
    engine : {"auto", "numpy", "numba"}, default "auto"
        The pass behind :meth:`moments`: "numpy" the streaming pass (matrix products, numpy's exp); "numba" a
        compiled fused pass (``rftheory.density._fused_pass``: its own exp, all sums centred at the exact mean,
        so as precise as ``precise=True``; results agree with the numpy pass to round-off, not to the bit),
        which needs the optional ``numba`` (``pip install "rftheory[fast]"``) and D <= 4; "auto" uses it
        where numba is installed and D <= 2 (where it is measured faster; ``RFTHEORY_NUMBA=0`` turns it off),
        the numpy pass otherwise, whose weights from D = 5 on then come from one compiled sweep per row (the
        maximum and the same exp, ``rftheory.density._fused_exp``; within one ulp of numpy's exp per weight).

    Attributes
    ----------
    data : numpy.ndarray, shape (n, D)
        The training set (a read-only float64 copy).
    n, D : int
        Number of training points and dimension.
    schedule : Schedule
        The forward process.

    Raises
    ------
    ValueError
        If ``data`` is empty, not 2-D or not finite, ``chunk_size`` is not a positive integer,
        ``precise`` or ``engine`` is not one of its values, or ``engine="numba"`` cannot run (D > 4).
    ImportError
        If ``engine="numba"`` and numba is not installed.
    TypeError
        If ``data`` is not numeric.

    Notes
    -----
    It is a score field (docs/design.md §3.1): ``score``, ``hessian``, ``score_and_hessian``,
    ``log_density``, ``posterior_mean``, ``posterior_cov`` take x of shape (m, D) and t a scalar or (m,); a
    single point of shape (D,) returns results without the query axis, as scipy does ((D,), (D, D), a
    float). :meth:`moments` always returns the batch. The formulas are in docs/theory.md §1.

    Examples
    --------
    >>> import numpy as np
    >>> from rftheory import EmpiricalDensity
    >>> p = EmpiricalDensity(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    >>> p.score(np.array([0.0, 0.5]), 0.3).shape
    (2,)
    >>> p.hessian(np.zeros((4, 2)), 0.3).shape
    (4, 2, 2)
    """

    def __init__(self, data: ArrayLike, schedule: Schedule | str | None = None, chunk_size: int = 2048,
                 precise: str | bool = "auto", engine: str = "auto"):
        self.data = as_data(data, "data")
        self.data.setflags(write=False)
        self.n, self.D = self.data.shape
        self.schedule = OU() if schedule is None else get_schedule(schedule)
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
        self.chunk_size = int(chunk_size)
        if precise not in ("auto", True, False):
            raise ValueError(f"precise must be 'auto', True or False; got {precise!r}")
        self.precise = precise
        if engine not in ("auto", "numpy", "numba"):
            raise ValueError(f"engine must be 'auto', 'numpy' or 'numba'; got {engine!r}")
        if engine == "numba":
            if not _fused_pass.installed():
                raise ImportError('engine="numba" needs numba: pip install "rftheory[fast]"')
            if self.D > _fused_pass.MAX_D:
                raise ValueError(f"engine='numba' is for D <= {_fused_pass.MAX_D}; got D = {self.D}")
        self.engine = engine
        self.center = self.data.mean(axis=0)
        self._xc = self.data - self.center
        self._sq = np.einsum("nd,nd->n", self._xc, self._xc)
        self._r2 = float(self._sq.max())
        if not np.isfinite(self._r2):
            raise ValueError("data: squared distances from the data's mean overflow float64 (largest |x_i - mean| "
                             f"~ {np.abs(self._xc).max():.3g}); rescale the data")
        self._radius = float(np.sqrt(self._r2))
        # logits of a chunk as one product: [a x'/h, a^2/h] . [x_i, -|x_i|^2/2]
        self._feat_cache, self._feat_bytes = {}, 0
        self._aug = np.concatenate([self._xc, -0.5 * self._sq[:, None]], axis=1)
        D = self.D
        self._pairs = np.triu_indices(D)
        self._pair_index = np.zeros((D, D), dtype=np.intp)
        self._pair_index[self._pairs] = np.arange(self._pairs[0].size)
        self._pair_index[self._pairs[1], self._pairs[0]] = np.arange(self._pairs[0].size)
        ii, jj, kk = np.meshgrid(np.arange(D), np.arange(D), np.arange(D), indexing="ij")
        keep = (ii <= jj) & (jj <= kk)
        self._triples = (ii[keep], jj[keep], kk[keep])
        # column of the sorted (i, j, k) among the triples, and of (i, j) among the pairs, for every index
        srt = np.sort(np.stack([ii, jj, kk]), axis=0)
        pos = np.zeros((D, D, D), dtype=np.intp)
        pos[self._triples] = np.arange(self._triples[0].size)
        self._triple_index = pos[srt[0], srt[1], srt[2]]
        self._pair_flat = self._pair_index.ravel()

    def __repr__(self):
        return f"EmpiricalDensity(n={self.n}, D={self.D}, schedule={self.schedule.name})"

    # ------------------------------------------------------------------ core pass
    def _use_fused(self) -> bool:
        """True if :meth:`_moments` runs the compiled fused pass (``engine``; see the class doc)."""
        engine = getattr(self, "engine", "auto")
        if engine == "numba":
            return True
        return engine == "auto" and self.D <= _fused_pass.AUTO_MAX_D and _fused_pass.available()

    def _moments(self, x, tt, cov=False, third=False, eigh=False) -> PosteriorMoments:
        """:meth:`moments` on validated input, by the pass that ``engine`` selects. ``eigh`` asks the numpy pass
        to decompose the covariances in its query blocks (``_StreamingPass._moments``); the fused pass leaves
        ``_eigh`` None, and the caller decomposes them."""
        if self._use_fused():
            out = _fused_pass.fused_moments(self, x, tt, cov, third)
            out._eigh = None
            return out
        return _StreamingPass._moments(self, x, tt, cov, third, eigh)

    def _moments_one(self, x1, a, h, third, fixed=None):
        """``_StreamingPass._moments_one`` (the one-point projection's per-step moments) by the pass that
        ``engine`` selects, so that a point projected alone keeps the bits it has in a batch."""
        if self._use_fused():
            return _fused_pass.fused_one(self, x1, a, h, third, fixed)
        return _StreamingPass._moments_one(self, x1, a, h, third, fixed)

    def moments(self, x: ArrayLike, t: ArrayLike, cov: bool = False, third: bool = False) -> PosteriorMoments:
        """Log-density, posterior mean, score (and covariance if ``cov``) in one streaming pass.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (a single point is treated as m = 1; the result keeps its batch axis).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.
        cov : bool, default False
            Also compute the posterior covariance (needed for the Hessian).
        third : bool, default False
            Also compute the posterior third central moment (implies ``cov``).

        Returns
        -------
        PosteriorMoments
            Arrays with a leading query axis of length m (see its docstring for shapes and units).

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).

        Notes
        -----
        ``third`` also returns the posterior third central moment (implies ``cov``), as used by the Newton
        step of the ridge projection. For D <= 4 it comes from the same pass (raw third moments summed with
        the same weights, then centred: absolute error ~ eps R^3, R the data radius); queries where that
        could matter against the moment itself (the precise path: small h or a nearly one-hot posterior),
        and every query for D > 4, get the cancellation-free two-pass :meth:`third_cumulant`.
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._moments(x, tt, cov, third)

    # ------------------------------------------------------------------ score-field interface
    @single_query
    def log_density(self, x: ArrayLike, t: ArrayLike) -> np.ndarray | float:
        """The log-density ``log p_t(x)``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m,), or float
            ``log p_t(x)`` (log of 1/length^D); a float for a single (D,) query.
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, t lies outside the schedule's domain or has the
            wrong shape, or p_t(x) underflows float64 (log p_t would be -inf).
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t)
        _require_finite(mom.log_density, "log p_t", mom.t, mom.h, float(np.sqrt(self._r2)))
        return mom.log_density

    @single_query
    def score(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The exact score ``s*(x, t) = grad log p_t(x) = (a_t m_t(x) - x)/h_t``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            The score (1/length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t).score

    @single_query
    def hessian(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The Hessian of ``log p_t``, ``H = -I/h_t + (a_t^2/h_t^2) Cov[x_0 | x]`` (P1, docs/theory.md §1).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            Symmetric Hessians (1/length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t, cov=True).hessian

    @single_query
    def score_and_hessian(self, x: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The score and the Hessian from one streaming pass (what the ridge code calls).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        score : numpy.ndarray, shape (m, D), or (D,) for a single query
            As :meth:`score` (1/length).
        hessian : numpy.ndarray, shape (m, D, D), or (D, D) for a single query
            As :meth:`hessian` (1/length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t, cov=True)
        return mom.score, mom.hessian

    @single_query
    def posterior_mean(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior mean ``m_t(x) = E[x_0 | x_t = x]`` (Tweedie's denoiser, in data units).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            Posterior means (length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t).mean

    @single_query
    def posterior_cov(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior covariance ``Cov[x_0 | x_t = x]``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D, D), or (D, D) for a single (D,) query
            Symmetric positive semi-definite covariances (length^2).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        return self.moments(x, t, cov=True).cov

    @single_query
    def denoiser(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The target ``a_t m_t(x)`` of the posterior-mean parametrization.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain, one for all queries or one per query.

        Returns
        -------
        numpy.ndarray, shape (m, D), or (D,) for a single (D,) query
            ``a_t`` times the posterior mean (length).
        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite, or t lies outside the schedule's domain or has the
            wrong shape.
        TypeError
            If x is not numeric.
        """
        mom = self.moments(x, t)
        return mom.a[:, None] * mom.mean

    @single_query
    def third_cumulant(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior third central moment ``E[(x_0 - m)^{(x)3} | x]``.

        Two passes: the first fixes the running maximum, normaliser and mean; the second sums the centred cubes
        with the final weights (no merge formula needed, no cancellation).

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            Symmetric tensors (length^3).

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        return self._third_cumulant(x, tt)

    @single_query
    def hessian_derivative(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """``dH_ij/dx_k = (a^3/h^3) kappa3_ijk``: the derivative of P1, the third derivative of log p_t.

        Used by the Newton projection onto the ridge and by the frame-turning rate of T2.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, D, D, D), or (D, D, D) for a single (D,) query
            1/length^3.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        k3 = self._third_cumulant(x, tt)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # handled below
            out = ((a / h) ** 3)[:, None, None, None] * k3
            big = ~np.isfinite((a / h) ** 3)
        if big.any():      # (a/h)^3 overflows below t ~ 1e-103 while c (c (c k3)) may be finite
            c = (a[big] / h[big])[:, None, None, None]
            out[big] = c * (c * (c * k3[big]))
        _require_finite(out, "the Hessian derivative", tt, h, float(np.sqrt(self._r2)))
        return out

    @single_query
    def weights(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The posterior weights ``w_i(x, t)`` over the training set, as a dense matrix (for moderate n).

        The other methods stream over the data; this one holds (m, n) at once.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Query points (finite).
        t : float or array_like, shape (m,)
            Time(s) in the schedule's domain.

        Returns
        -------
        numpy.ndarray, shape (m, n), or (n,) for a single (D,) query
            Non-negative, each row summing to 1.

        Raises
        ------
        ValueError, TypeError
            On a bad ``x`` or ``t`` (the message names the argument).
        """
        x = as_points(x, self.D, "x")
        tt = per_point_times(t, x.shape[0], self.schedule, "t")
        a, h = self.schedule._a(tt), self.schedule._h(tt)
        xq = x - a[:, None] * self.center[None, :]
        lt = ((xq @ self._xc.T) * (a / h)[:, None]
              - np.outer(0.5 * a * a / h, self._sq))
        lt -= lt.max(axis=1, keepdims=True)
        w = np.exp(lt)
        return w / w.sum(axis=1, keepdims=True)

    def sample(self, t: float, size: int, rng: RngLike = None) -> np.ndarray:
        """Exact draws from p_t: pick a training point uniformly, scale by a_t and add N(0, h_t I) noise.

        Parameters
        ----------
        t : float
            Time in the schedule's domain.
        size : int
            Number of draws.
        rng : None, int, SeedSequence or numpy.random.Generator, optional
            Source of randomness; None draws from a fresh generator (docs/design.md §5).

        Returns
        -------
        numpy.ndarray, shape (size, D)
            The draws (length).

        Raises
        ------
        ValueError
            If t is outside the schedule's domain or size is negative.
        TypeError
            If rng is not one of the accepted types.
        """
        from .._checks import as_generator, check_positive_int

        rng = as_generator(rng)
        size = check_positive_int(size, "size", minimum=0)
        tt = self.schedule.check_t(t)
        if tt.ndim:
            raise ValueError(f"t must be a scalar here; got shape {tt.shape}")
        tt = float(tt)
        a, h = float(self.schedule._a(np.float64(tt))), float(self.schedule._h(np.float64(tt)))
        i = rng.integers(0, self.n, size=int(size))
        return a * self.data[i] + np.sqrt(h) * rng.standard_normal((int(size), self.D))
