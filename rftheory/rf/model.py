"""Random-feature score models in closed form (docs/theory.md §4, R1-R2).

``f_W(x, t) = W sigma(W_x x + W_t phi(t) + b)`` with fixed ``W_x ~ N(0, 1/D)`` (p x D),
``W_t ~ N(0, 1/(2K+1))`` (p x (2K+1)), ``b ~ N(0, 1)`` (or 0), phi the Fourier embedding
(:func:`rftheory.rf.features.fourier_embedding`), and trained ``W`` (D x p).

Parametrizations and their score (the sign convention):

* ``"posterior_mean"``: f regresses ``a_t x_0`` (so ``f ~ a_t m_t``), score ``s_hat = (f - x)/h_t``.
* ``"score"`` (direct): f regresses ``-z/sqrt(h_t)``, whose conditional mean is ``+grad log p_t``; so
  ``s_hat = f`` (f estimates the score itself, *not* the noise; ``sqrt(h_t) f ~ -E[Z | X_t]``).

Loss ``L(W) = (1/D)[tr(W U W^T) - 2 tr(V W^T)] + c0`` (rf_moments.py assembles U, V, c0). Training time tau
is that of the flow ``dW/dtau = -2 (W U - V)`` (= -D grad L): ``W(tau) = W* + (W0 - W*) e^{-2 tau U}``
(derivations/r2_gradient_flow.py).

The loss, the gradient flow and GD from U, V are in :mod:`rftheory.rf._flow`, the trained score field in
:mod:`rftheory.rf._rf_field` and SGD in :mod:`rftheory.rf._sgd`; this module re-exports them.
"""
from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_data, as_generator, as_points, check_positive_int, check_real
from .embedding import EMBEDDING_ORDERS, fourier_embedding
from .features import get_activation
from .moments import (PARAMETRIZATIONS, WEIGHTS, Moments, QuadratureReport, TimeRule, assemble, cache_key, cache_path,
                      clean_cache_dir, load_moments, save_moments)
from ..density.schedules import OU, get_schedule
from ._flow import GradientFlow, gd, gradient_flow, loss  # re-exported: the loss and its minimisation from U, V
from . import _mehler
from ._mehler_kernels import engine as pair_engine

__all__ = ["RandomFeatureModel", "GradientFlow", "gradient_flow", "gd", "sgd", "RFScoreField", "loss"]

log = logging.getLogger(__name__)


class RandomFeatureModel:
    """Fixed random features of (x, t): ``sigma(W_x x + W_t phi(t) + b)``; see the module docstring.

    Parameters
    ----------
    D : int
        Data dimension (>= 1).
    p : int
        Number of features (>= 1).
    K : int
        Fourier frequencies of the time embedding (>= 0; embedding length 2K + 1).
    T : float
        Period of the time embedding (the horizon; finite, > 0).
    activation : str or Activation, default "relu"
        One of ``features.ACTIVATIONS`` ("relu", "erf", "cos", "tanh") or an Activation object.
    bias : bool, default True
        Draw ``b ~ N(0, 1)`` (True) or use b = 0.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Source of the fixed weights; an int seed reproduces them, None draws fresh ones (docs/design.md §5).
    embedding : {"concat", "interleaved"}, default "concat"
        Order of the Fourier embedding's columns: "concat" (ours) or "interleaved" ([HQT]'s code;
        docs/conventions.md).

    Attributes
    ----------
    W_x : numpy.ndarray, shape (p, D)
        ``N(0, 1/D)`` input weights.
    W_t : numpy.ndarray, shape (p, 2K + 1)
        ``N(0, 1/(2K+1))`` time-embedding weights.
    b : numpy.ndarray, shape (p,)
        Biases (zeros when ``bias`` is False).

    Raises
    ------
    TypeError
        If D or p is not an integer, or rng is not an accepted type.
    ValueError
        If D, p < 1, K < 0, T is not finite and positive, the activation or the embedding order is unknown.

    See Also
    --------
    gradient_flow : train W in closed form from :meth:`moments`.
    RFScoreField : the score field of a trained model (:meth:`score_field`).

    Notes
    -----
    The model and its loss are docs/theory.md §4 (R1, R2).
    """

    def __init__(self, D: int, p: int, K: int, T: float, activation="relu", bias: bool = True, rng: RngLike = None,
                 embedding: str = "concat"):
        self.D = check_positive_int(D, "D")
        self.p = check_positive_int(p, "p")
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 0:
            raise ValueError(f"K must be an integer >= 0; got {K!r}")
        self.K = int(K)
        self.T = check_real(T, "T", positive=True)
        if embedding not in EMBEDDING_ORDERS:
            raise ValueError(f"embedding must be one of {EMBEDDING_ORDERS}; got {embedding!r}")
        self.embedding = embedding
        self.act = get_activation(activation)
        rng = as_generator(rng)
        self.W_x = rng.standard_normal((self.p, self.D)) / np.sqrt(self.D)
        self.W_t = rng.standard_normal((self.p, 2 * self.K + 1)) / np.sqrt(2 * self.K + 1)
        self.b = rng.standard_normal(self.p) if bias else np.zeros(self.p)
        self.bias = bool(bias)

    def __repr__(self):
        return (f"RandomFeatureModel(D={self.D}, p={self.p}, K={self.K}, T={self.T}, "
                f"activation={self.act.name}, bias={self.bias}, embedding={self.embedding!r})")

    def features(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The random features ``sigma(W_x x + W_t phi(t) + b)``.

        Parameters
        ----------
        x : array_like, shape (m, D) or (D,)
            Points (finite).
        t : float or array_like, shape (m,)
            Times.

        Returns
        -------
        numpy.ndarray, shape (m, p)
            Feature values (units of the activation's output; m = 1 for a single point).

        Raises
        ------
        ValueError
            If x has the wrong shape or is not finite.
        """
        x = as_points(x, self.D, "x")
        C, inv = self._time_rows(np.broadcast_to(np.asarray(t, dtype=np.float64), (x.shape[0],)))
        return self._features(x, C, inv)

    def _time_rows(self, tt):
        """``W_t phi(t) + b`` once per distinct time (a sampler passes one t for all points), and the index of
        each point's row."""
        if tt.size and tt.min() == tt.max():       # one time (a sampler's step): what unique gives, without a sort
            tu, inv = tt[:1], np.zeros(tt.size, dtype=np.intp)
        else:
            tu, inv = np.unique(tt, return_inverse=True)
        return fourier_embedding(tu, self.K, self.T, self.embedding) @ self.W_t.T + self.b[None, :], inv.reshape(-1)

    def _features(self, x, C, inv):
        pre = x @ self.W_x.T
        if C.shape[0] == 1:          # one time for all rows (a sampler's step): broadcast, not a gathered copy
            pre += C[0]
        else:
            pre += C[inv]
        if self.act.name == "relu":  # in place: the same values as act(pre), without a new (m, p) array
            return np.maximum(pre, 0.0, out=pre)
        return self.act(pre)

    def moments(self, data: ArrayLike, schedule=None, t0=1e-3, weight="1", method="exact",
                parametrization="posterior_mean", T=None, n_gl=12, panels_per_period=2.0,
                mc_draws=4000, rng=None, report=True, report_units=48, progress=False, cache_dir=None,
                threads=None, batch=32, time_rule="gauss-legendre", n_intervals=4000, scheduler=None):
        """The exact (or Monte Carlo) quadratic loss of the model on ``data``: U, V, c0 (R1, docs/theory.md §4).

        Parameters
        ----------
        data : array_like, shape (n, D)
            Training set.
        schedule : Schedule or str, default OU()
            Forward process.
        t0 : float, default 1e-3
            Lower end of the time integral (T defaults to the embedding period).
        weight : {"1", "1/h", "1/h2"} or tuple of them
            Time weight(s) lambda(t) of the loss.
        method : {"exact", "mc"}
            Closed-form Gaussian moments, or Monte Carlo in z (the [HQT] recipe).
        parametrization : {"posterior_mean", "score"}
            What the network output regresses (module docstring).
        rng : None, int, SeedSequence or Generator, optional
            Noise draws of ``method="mc"`` (unused by "exact").
        cache_dir : path, optional
            Reuse or store exact results there (keyed by a hash of everything they depend on).
        n_gl, panels_per_period, mc_draws, report, report_units, progress, threads, batch
            Quadrature and execution settings (Notes).

        Returns
        -------
        Moments or list of Moments
            ``U`` (p, p), ``V`` (D, p), ``c0`` and the time-quadrature report; a list (one per weight, in
            order) when ``weight`` is a tuple.

        Raises
        ------
        ValueError
            If data has the wrong number of columns or is not finite, a weight, method or parametrization is
            unknown, or t0/T lie outside the schedule's domain.

        Notes
        -----
        ``weight``: one of WEIGHTS (returns Moments) or a tuple of them (returns a list of Moments, one per
        weight, assembled in one pass at the cost of one). method "exact" uses the closed-form Gaussian
        moments; "mc" draws ``mc_draws`` noise vectors per (training point, time node) with ``rng`` (the
        [HQT] recipe, on the same time rule; every weight sees the same draws). ``T`` defaults to
        the embedding period. ``report`` repeats the assembly on ``report_units`` random units (drawn with a
        fixed seed) with twice the nodes per panel and stores the relative differences. ``cache_dir``: reuse
        or store exact results there (one .npz per key, see rf_moments.cache_key); MC results are never
        cached. ``threads`` / ``batch``: the exact ReLU path's thread count (default: the CPUs available, at
        most 8) and (point, time node) steps per batch; the result does not depend on either.
        ``time_rule``: "gauss-legendre" (default; ``n_gl``, ``panels_per_period``) or "simpson" (composite
        Simpson on ``n_intervals`` uniform intervals: [HQT]'s recipe, with ``method="mc"`` their Monte Carlo
        too; its report refines to twice the intervals). docs/conventions.md. Since issue 17 no time panel
        is wider than (T/K)/panels_per_period (the geometric ones near t0 are split too); at the papers' size
        (p = 1000, K = 128, T = 40) ``n_gl=8`` is then more accurate than the former rule with 12 (U 4.9e-6
        against 7.1e-6, V 3.3e-6 against 4.0e-5, relative to 32 nodes per panel) with 2/3 of the nodes
        (bench/bench_rf.py [2]). ``scheduler``: run the exact
        assembly (and its report) as tasks on a dask cluster -- ``"local"`` (a LocalCluster of worker
        processes, one per CPU), a scheduler address (an unreachable one raises ConnectionError naming it at
        once) or a ``distributed.Client``; the result is bit-identical to the serial one (rf/_exact.py).
        """
        data = as_data(data, "data")
        if data.shape[1] != self.D:
            raise ValueError(f"data must have D = {self.D} columns; got {data.shape[1]}")
        schedule = OU() if schedule is None else get_schedule(schedule)
        multi = not isinstance(weight, str)
        weights = tuple(weight) if multi else (weight,)
        if not weights or any(w not in WEIGHTS for w in weights):
            raise ValueError(f"weight must be one of {WEIGHTS} or a tuple of them; got {weight!r}")
        if method not in ("exact", "mc"):
            raise ValueError(f"method must be 'exact' or 'mc'; got {method!r}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}; got {parametrization!r}")
        T = self.T if T is None else check_real(T, "T", positive=True)
        t0 = check_real(t0, "t0", positive=True)
        schedule.check_t(t0, "t0")
        schedule.check_t(T, "T")
        batch = check_positive_int(batch, "batch")
        report_units = check_positive_int(report_units, "report_units")
        if threads is not None:
            threads = check_positive_int(threads, "threads")
        if scheduler is not None and not isinstance(scheduler, str) and not hasattr(scheduler, "submit"):
            raise TypeError(f"scheduler must be None, 'local', an address string or a distributed.Client; "
                            f"got {scheduler!r}")
        if method == "mc":
            mc_draws = check_positive_int(mc_draws, "mc_draws")
            rng = as_generator(rng)
        rule = TimeRule(time_rule, t0, T, self.K, self.T, n_gl, panels_per_period, n_intervals)
        nodes, wts = rule(1)
        out = {w: None for w in weights}
        keys = {}                                  # weight -> (key, path) when cached
        if cache_dir is not None and method == "exact":
            clean_cache_dir(cache_dir)
            for w in out:
                settings = {"schedule": repr(schedule), "t0": float(t0), "T": float(T), "weight": w,
                            "parametrization": parametrization, "n_gl": int(n_gl),
                            "panels_per_period": float(panels_per_period),
                            "report_units": int(report_units) if report else None}
                if time_rule != "gauss-legendre":         # keys of the default rule stay as they were
                    settings.update(time_rule=time_rule, n_intervals=int(n_intervals))
                if self.embedding != "concat":
                    settings["embedding"] = self.embedding
                if self.act.name == "relu" and pair_engine() == "numba":
                    settings["pair_engine"] = "numba"    # its bits differ at round-off (rf/_mehler_kernels.py)
                if self.act.name == "relu" and _mehler.cutoff() != 0.9:
                    settings["rho_c"] = _mehler.cutoff()  # U moves at round-off with it (rf/_mehler.py)
                key = cache_key(self, data, settings)
                keys[w] = (key, cache_path(cache_dir, key))
                out[w] = load_moments(keys[w][1], key, p=self.p, D=self.D)
                if out[w] is not None:
                    log.info("moments (weight %s) from cache %s", w, keys[w][1])
        todo = tuple(w for w, m in out.items() if m is None)
        if todo:
            for w, mom in zip(todo, self._assemble(data, schedule, t0, T, todo, method, parametrization, rule,
                                                   nodes, wts, mc_draws, rng, report,
                                                   report_units, progress, threads, batch, scheduler)):
                out[w] = mom
                if w in keys:
                    save_moments(keys[w][1], mom, keys[w][0])
                    log.info("moments (weight %s) cached at %s", w, keys[w][1])
        return [out[w] for w in weights] if multi else out[weight]

    def _assemble(self, data, schedule, t0, T, weights, method, parametrization, rule,
                  nodes, wts, mc_draws, rng, report, report_units, progress, threads, batch, scheduler=None) -> list:
        if isinstance(scheduler, str) and method == "exact":     # one client for the assembly and its report
            from .._dask import open_client
            from ._distributed import local_workers

            local = scheduler == "local"
            with open_client(None if local else scheduler, n_workers=local_workers() if local else 2) as client:
                return self._assemble(data, schedule, t0, T, weights, method, parametrization, rule, nodes, wts,
                                      mc_draws, rng, report, report_units, progress, threads, batch, client)
        U, V, c0 = assemble(self, data, schedule, t0, T, weights, method, parametrization, nodes, wts,
                            mc_draws=mc_draws, rng=rng, progress=progress, threads=threads, batch=batch,
                            scheduler=scheduler)
        reps = [None] * len(weights)
        if report and method == "exact":
            units = np.sort(np.random.default_rng(12345).choice(self.p, min(self.p, report_units), replace=False))
            n2, w2 = rule(2)
            U2, V2, _ = assemble(self, data, schedule, t0, T, weights, method, parametrization, n2, w2,
                                 units=units, threads=threads, batch=batch, scheduler=scheduler)
            for k in range(len(weights)):
                Us, Vs = U[k][np.ix_(units, units)], V[k][:, units]
                reps[k] = QuadratureReport(
                    rule=rule.description,
                    n_nodes=nodes.size, n_nodes_refined=n2.size, units=units,
                    rel_diff_U=float(np.linalg.norm(Us - U2[k]) / np.linalg.norm(U2[k])),
                    rel_diff_V=float(np.linalg.norm(Vs - V2[k]) / max(np.linalg.norm(V2[k]), 1e-300)))
                log.info("time quadrature (weight %s): %d nodes, refined %d: rel diff U %.2e V %.2e", weights[k],
                         reps[k].n_nodes, reps[k].n_nodes_refined, reps[k].rel_diff_U, reps[k].rel_diff_V)
        return [Moments(U=U[k], V=V[k], c0=float(c0[k]), weight=weights[k], parametrization=parametrization,
                        method=method, t0=float(t0), T=T, n_time_nodes=nodes.size, report=reps[k])
                for k in range(len(weights))]

    def score_field(self, W: ArrayLike, schedule=None, parametrization="posterior_mean") -> "RFScoreField":
        """The score field ``x, t -> s_hat(x, t)`` of this model with output weights ``W`` (D, p).

        Parameters
        ----------
        W : array_like, shape (D, p)
            Trained output weights, e.g. ``gradient_flow(U, V, W0).predict(tau)``.
        schedule : Schedule or str, default OU()
            The forward process the model was trained on (gives h_t in the posterior-mean score).
        parametrization : {"posterior_mean", "score"}
            How the output becomes a score (module docstring).

        Returns
        -------
        RFScoreField

        Raises
        ------
        ValueError
            If W has the wrong shape or the parametrization is unknown.
        """
        return RFScoreField(self, W, schedule, parametrization)


# Re-exported, imported last: they annotate with RandomFeatureModel and import it from here.
from ._rf_field import RFScoreField  # noqa: E402  (the score field of a trained model)
from ._sgd import sgd  # noqa: E402  (the Monte Carlo training run)
