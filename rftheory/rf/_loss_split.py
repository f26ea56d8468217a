"""R3's loss-level split ([HQT]'s measure, docs/theory.md §4): the irreducible loss ``L*`` and the excess loss of
a random-feature model split into a normal and a tangent part. :mod:`rftheory.rf.decomposition` re-exports
every public name here.

The excess ``L(W) - L*`` over the irreducible loss ``L*`` (:func:`irreducible_loss`, the DSM loss of the exact
empirical denoiser) is ``(1/D) int lambda(t) E_{x~p_t} |r|^2 dt`` with ``r = f_W - a_t m_t = h_t (s_W - s*)``
(posterior-mean units; ``r = s_W - s*`` for the direct-score parametrization), and splits into ``|P r|^2`` and
``|(I - P) r|^2`` for a normal projector P, fixed or point-dependent. For a fixed P each part is
``L_P(W) - L*_P``, and Pythagoras holds part by part (``P (W_inf U - V) = 0``):
``L_P(W(tau)) - L_P(W_inf) = (1/D) tr(P dW U dW^T P)``. This is not the RMS score error of
:func:`rftheory.rf.decomposition.average_split` (score units, unweighted in t), which near t0 is larger by
``1/h_t``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._checks import RngLike, as_generator
from .model import loss

__all__ = ["IrreducibleLoss", "LossSplit", "irreducible_loss", "loss_split", "ridge_normal"]


# ----------------------------------------------------------------------------- loss-level split ([HQT]'s measure)
@dataclass
class IrreducibleLoss:
    """``L*`` = the DSM loss of the exact empirical denoiser, and its part along a normal basis.

    Units: those of :func:`rftheory.rf.model.loss`; standard errors are those of the Monte Carlo
    x-expectation (see :func:`irreducible_loss`).

    Attributes
    ----------
    value : float
        The total L*.
    se : float
    normal, tangent : float
        The parts along the given normal directions and their complement (``normal`` = 0 when no basis was
        given).
    se_normal, se_tangent : float
    n_time_nodes : int
        Nodes of the time rule.
    n_draws : int
        Monte Carlo draws per node.
    """

    value: float
    se: float
    normal: float
    se_normal: float
    tangent: float
    se_tangent: float
    n_time_nodes: int
    n_draws: int


@dataclass
class LossSplit:
    """The excess DSM loss ``L(W) - L*`` of an RF model split into a normal and a tangent part.

    ``method``: "moments" (fixed frame: each part is ``L_P(W) - L*_P`` with ``L_P`` the loss of the projected
    output, exact from U, V) or "monte carlo" (point-dependent frame: the parts are sample means of
    ``lambda |P r|^2``; then ``normal + tangent - excess`` is a check of both, zero in expectation).

    Attributes
    ----------
    normal, tangent : float
        ``(1/D) int lambda(t) E_{x~p_t} |P r(x, t)|^2 dt`` with P the normal (resp. tangent) projector and r the
        residual in the loss's target units: ``r = f_W - a_t m_t = h_t (s_W - s*)`` for the posterior-mean
        parametrization (so the integrand is ``lambda h_t^2 |P e|^2``, e the score error), ``r = s_W - s*``
        for the direct-score one.
    se_normal, se_tangent : float
        Their Monte Carlo standard errors.
    loss : float
        L(W) from the moments.
    L_star : IrreducibleLoss
        ``L_star.value`` the total.
    excess : float
        ``loss - L_star.value`` (its SE is ``L_star.se``).
    method, weight, parametrization : str
    """

    normal: float
    tangent: float
    se_normal: float
    se_tangent: float
    loss: float
    L_star: IrreducibleLoss
    excess: float
    method: str
    weight: str
    parametrization: str


def _time_nodes(model, mom, data, n_gl, panels_per_period, schedule, time_rule="gauss-legendre", n_intervals=4000):
    """The moments' time rule (nodes, weights, a, h, lambda); refuses a rule other than the one ``mom`` was
    assembled on, checked through its node count and the loss constant c0 (a time integral of the schedule:
    equal to round-off on the same nodes and schedule)."""
    from .moments import TimeRule, weight_fn

    nodes, wts = TimeRule(time_rule, mom.t0, mom.T, model.K, model.T, n_gl, panels_per_period, n_intervals)()
    a, h = schedule.a_h(nodes)
    lam = weight_fn(mom.weight)(h)
    D = data.shape[1]
    pm = mom.parametrization == "posterior_mean"
    c0 = float(wts @ (lam * (a * a * np.mean(np.sum(data * data, 1)) / D if pm else 1.0 / h)))
    if nodes.size != mom.n_time_nodes or abs(c0 - mom.c0) > 1e-10 * abs(mom.c0):
        raise ValueError(f"n_gl={n_gl}, panels_per_period={panels_per_period} (or the schedule) is not the time "
                         f"rule mom was assembled on (its c0 {mom.c0!r} vs {c0!r} here)")
    return nodes, wts, a, h, lam


def _normal_basis(normal, D):
    B = np.asarray(normal, dtype=np.float64)
    if B.ndim == 1:
        B = B[:, None]
    if B.ndim != 2 or B.shape[0] != D or B.shape[1] > D or not np.all(np.isfinite(B)):
        raise ValueError(f"normal must be a (D, k) orthonormal basis with D = {D}, k <= D; got shape {B.shape}")
    if not np.allclose(B.T @ B, np.eye(B.shape[1]), rtol=0, atol=64 * D * _EPS_):
        raise ValueError("normal must have orthonormal columns (B^T B = I)")
    return B @ B.T


_EPS_ = np.finfo(np.float64).eps


def _node_draws(data, a, h, n_draws, rng):
    """x = a x_i + sqrt(h) z with i stratified over the training points (i = k mod n) and z ~ N(0, I)."""
    n, D = data.shape
    idx = np.arange(n_draws) % n
    return a * data[idx] + np.sqrt(h) * rng.standard_normal((n_draws, D))


def _mc_total(vals, wq):
    """Time-weighted sum of per-node sample means and its standard error: vals (Q, N), wq (Q,)."""
    mean = vals.mean(axis=1)
    var = vals.var(axis=1, ddof=1) / vals.shape[1]
    return float(wq @ mean), float(np.sqrt((wq * wq) @ var))


def irreducible_loss(model, data: ArrayLike, mom, schedule=None, normal=None, n_draws: int = 2000, rng: RngLike = None, n_gl=12,
                     panels_per_period=2.0, time_rule="gauss-legendre", n_intervals=4000) -> IrreducibleLoss:
    """``L* = (1/D) int lambda(t) c(t) E_{x~p_t} tr Cov[a_t x_0 | x] dt``, the loss of the exact denoiser.

    c = 1 for the posterior-mean parametrization, 1/h_t^2 for the direct score, on ``mom``'s settings.
    Quadrature: the moments' time rule and, at each time node, ``n_draws`` Monte Carlo draws of x ~ p_t
    (training point stratified, z ~ N(0, I) from ``rng``); the reported ``se`` is that of the draws.

    Parameters
    ----------
    model : RandomFeatureModel
    data : array_like, shape (n, D)
    mom : Moments
        The model's moments (weight and parametrization are read from it).
    schedule : Schedule or str, optional
    normal : array_like, shape (D, k), optional
        Orthonormal basis of a fixed normal space; then the trace is split into ``tr(P Cov P)`` and the rest.
    n_draws : int, default 2000
        Draws per time node (>= 2).
    rng : None, int, SeedSequence or numpy.random.Generator, optional
    n_gl, panels_per_period, time_rule, n_intervals
        Must be those ``mom`` was assembled with (its convergence is ``mom.report``).

    Returns
    -------
    IrreducibleLoss

    Raises
    ------
    ValueError
        If n_draws < 2 or the time rule does not match ``mom``.
    """
    from ..density.empirical import EmpiricalDensity
    from ..density.schedules import OU, get_schedule

    schedule = OU() if schedule is None else get_schedule(schedule)
    rng = as_generator(rng)
    data = np.asarray(data, dtype=np.float64)
    D = data.shape[1]
    P = np.zeros((D, D)) if normal is None else _normal_basis(normal, D)
    n_draws = int(n_draws)
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2; got {n_draws}")
    nodes, wts, a, h, lam = _time_nodes(model, mom, data, n_gl, panels_per_period, schedule, time_rule,
                                        n_intervals)
    scale = np.ones_like(h) if mom.parametrization == "posterior_mean" else 1.0 / (h * h)
    wq = wts * lam * scale * a * a / D
    dens = EmpiricalDensity(data, schedule)
    tot = np.empty((nodes.size, n_draws))
    nrm = np.empty((nodes.size, n_draws))
    for q, t in enumerate(nodes):
        x = _node_draws(data, a[q], h[q], n_draws, rng)
        cov = dens.posterior_cov(x, t)
        tot[q] = np.einsum("mdd->m", cov)
        nrm[q] = np.einsum("de,med->m", P, cov)
    v, se = _mc_total(tot, wq)
    vn, sen = _mc_total(nrm, wq)
    vt, set_ = _mc_total(tot - nrm, wq)
    return IrreducibleLoss(value=v, se=se, normal=vn, se_normal=sen, tangent=vt, se_tangent=set_,
                           n_time_nodes=nodes.size, n_draws=n_draws)


def ridge_normal(density, d, fallback=None):
    """A point-dependent normal frame for :func:`loss_split`.

    Where the eigengap is at its round-off floor the frame is undetermined (e.g. far from the midpoint of two
    modes, where H = -I/h_t to the last bit and eigh may return either axis as "normal"): there the projector
    of ``fallback`` is used; without one, a ValueError says at how many points the frame was undetermined.

    Parameters
    ----------
    density : EmpiricalDensity
    d : int
        Ridge dimension.
    fallback : array_like, shape (D, k), optional
        A fixed orthonormal normal basis.

    Returns
    -------
    callable
        ``(x, t) -> (m, D, D)`` projectors onto the normal space of the d-dimensional ridge frame.
    """
    from ..geometry.ridge import frame

    Pf = None if fallback is None else _normal_basis(fallback, density.D)

    def fn(x, t):
        fr = frame(density, x, t, d)
        P = np.einsum("mdk,mek->mde", fr.normal, fr.normal)
        bad = ~(fr.eigengap > fr.gap_floor)
        if np.any(bad):
            if Pf is None:
                raise ValueError(f"the ridge frame is undetermined (eigengap at round-off) at {int(bad.sum())} "
                                 f"of {bad.size} points at t = {float(np.max(t)):.3g}: give fallback= a fixed "
                                 f"normal basis for them")
            P[bad] = Pf
        return P
    return fn


def loss_split(model, W: ArrayLike, data: ArrayLike, mom, normal, schedule=None, n_draws: int = 2000, rng: RngLike = None, n_gl=12,
               panels_per_period=2.0, L_star=None, time_rule="gauss-legendre", n_intervals=4000) -> LossSplit:
    """[HQT]'s loss-level measure: ``L(W) - L*`` split into normal and tangent parts (see :class:`LossSplit`).

    Parameters
    ----------
    model : RandomFeatureModel
    W : array_like, shape (D, p)
        Output weights.
    data : array_like, shape (n, D)
    mom : Moments
        The Moments of ``model`` on ``data`` for the weight and parametrization wanted, assembled with
        ``time_rule``, ``n_gl``, ``panels_per_period``, ``n_intervals`` (the same time rule is used here).
    normal : array_like of shape (D, k), or callable
        A fixed orthonormal basis of the normal space (method "moments": the parts are exact from U, V up to
        the Monte Carlo error of L*), or ``(x (m, D), t) -> (m, D, D)`` normal projectors (point-dependent;
        method "monte carlo", e.g. :func:`ridge_normal`).
    schedule : Schedule or str, optional
    n_draws : int, default 2000
        Monte Carlo draws per time node (>= 2).
    rng : None, int, SeedSequence or numpy.random.Generator, optional
    n_gl, panels_per_period, time_rule, n_intervals
        The moments' time rule.
    L_star : IrreducibleLoss, optional
        A precomputed :func:`irreducible_loss` for the same fixed basis (reused across W; ignored for a
        callable frame).

    Returns
    -------
    LossSplit

    Raises
    ------
    ValueError
        If W has the wrong shape, n_draws < 2, or the normal projectors are not finite (m, D, D).
    """
    from .model import RFScoreField
    from ..density.empirical import EmpiricalDensity
    from ..density.schedules import OU, get_schedule

    schedule = OU() if schedule is None else get_schedule(schedule)
    W = np.asarray(W, dtype=np.float64)
    D = model.D
    if W.shape != (D, model.p):
        raise ValueError(f"W must have shape (D, p) = {(D, model.p)}; got {W.shape}")
    data = np.asarray(data, dtype=np.float64)
    Lw = loss(W, mom)
    nodes, wts, a, h, lam = _time_nodes(model, mom, data, n_gl, panels_per_period, schedule, time_rule,
                                        n_intervals)
    pm = mom.parametrization == "posterior_mean"
    if not callable(normal):
        P = _normal_basis(normal, D)
        if L_star is None:
            L_star = irreducible_loss(model, data, mom, schedule, normal, n_draws, rng, n_gl, panels_per_period,
                                      time_rule, n_intervals)
        k = np.trace(P)
        c0n = float(wts @ (lam * (a * a * np.mean(np.einsum("id,de,ie->i", data, P, data)) / D if pm
                                  else k / (D * h))))
        WP = P @ W
        Ln = float((np.einsum("dj,jk,dk->", WP, mom.U, WP) - 2 * np.sum(mom.V * WP)) / D + c0n)
        nrm = Ln - L_star.normal
        tan = (Lw - Ln) - L_star.tangent
        return LossSplit(normal=nrm, tangent=tan, se_normal=L_star.se_normal, se_tangent=L_star.se_tangent,
                         loss=Lw, L_star=L_star, excess=Lw - L_star.value, method="moments",
                         weight=mom.weight, parametrization=mom.parametrization)
    rng = as_generator(rng)
    n_draws = int(n_draws)
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2; got {n_draws}")
    dens = EmpiricalDensity(data, schedule)
    field = RFScoreField(model, W, schedule, mom.parametrization)
    scale = np.ones_like(h) if pm else 1.0 / (h * h)
    wq = wts * lam / D
    vn, vt, vs, vsn = (np.empty((nodes.size, n_draws)) for _ in range(4))
    for q, t in enumerate(nodes):
        x = _node_draws(data, a[q], h[q], n_draws, rng)
        mo = dens.moments(x, t, cov=True)
        r = field.output(x, t) - (a[q] * mo.mean if pm else mo.score)
        Pn = np.asarray(normal(x, t), dtype=np.float64)
        if Pn.shape != (n_draws, D, D) or not np.all(np.isfinite(Pn)):
            raise ValueError(f"normal(x, t) must return finite (m, D, D) projectors; got shape {Pn.shape}")
        rn = np.einsum("mde,me->md", Pn, r)
        vn[q] = np.sum(rn * rn, 1)
        vt[q] = np.sum((r - rn) ** 2, 1)
        vs[q] = scale[q] * a[q] ** 2 * np.einsum("mdd->m", mo.cov)
        vsn[q] = scale[q] * a[q] ** 2 * np.einsum("mde,med->m", Pn, mo.cov)
    nrm, se_n = _mc_total(vn, wq)
    tan, se_t = _mc_total(vt, wq)
    ls, se_s = _mc_total(vs, wq)
    lsn, se_sn = _mc_total(vsn, wq)
    lst, se_st = _mc_total(vs - vsn, wq)
    Ls = IrreducibleLoss(value=ls, se=se_s, normal=lsn, se_normal=se_sn, tangent=lst, se_tangent=se_st,
                         n_time_nodes=nodes.size, n_draws=n_draws)
    return LossSplit(normal=nrm, tangent=tan, se_normal=se_n, se_tangent=se_t, loss=Lw, L_star=Ls,
                     excess=Lw - ls, method="monte carlo", weight=mom.weight, parametrization=mom.parametrization)
