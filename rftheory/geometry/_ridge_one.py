"""The one-point path of :func:`rftheory.geometry.ridge.project` (issue 17): the iteration of
``_ridge_newton._project_batch`` for m = 1 on an :class:`EmpiricalDensity`, written without the batching
machinery (no masks, gathers or scatters of per-point arrays; scalars as Python floats, vectors as (D,)
arrays). The same steps, the same trust-region rule, the same stopping rule and the same certifying
evaluation, so the point found is the batch path's to round-off (tests/test_ridge_one.py compares them).

Any case outside the plain one (a field other than an EmpiricalDensity, ``(a/h)^k`` or a residual that
overflows float64, a non-finite frame) raises ``_Fallback`` before the first step, or at the step where it
appears; the caller then runs the batch path from the start, which handles (or refuses by name) those cases.
At D <= 2 with one normal direction (the plain ridge of the plane, the modes of the line) the iteration runs
on Python floats (:func:`_project_small`): the batch path writes those products out as the same formulas
(``_ridge_newton._one_normal_small``) and both take the closed-form eigh of ``_eigh_small``, so the bits are
the same; per step that is the moments' pass and a few microseconds of arithmetic.

Private: the public face is ``ridge.project``."""
from __future__ import annotations

import math

import numpy as np

from ..density.empirical import EmpiricalDensity
from ._eigh_small import eigh2, eigh_small
from ._ridge_frame import _EPS
from ._ridge_newton import _one_normal_small

_NAN = float("nan")
_INF = float("inf")


class _Fallback(Exception):
    """The one-point path does not handle this case: run the batch path."""


def _moments_at(field, x1, tt, third, ah):
    """``(score (D,), cov (D, D), third (D, D, D) or None)`` of one point: the one-query pass, else the general
    pass (precise sums, two-pass third moment, or a refusal by name). Both frames' first step."""
    a, h, _, _, fixed = ah
    one = field._moments_one(x1, a, h, third, fixed)
    if one is not None:
        return one
    mom = field._moments(x1, tt, cov=True, third=third)
    return mom.score[0], mom.cov[0], (mom.third[0] if third else None)


def _note_order(hist, tol_eff, orders) -> None:
    """Append the observed convergence order of the last three Newton residuals ``hist`` to ``orders`` where
    they decrease and stay above round-off (the batch path's rule)."""
    h0, h1, h2 = hist
    if (math.isfinite(h0) and math.isfinite(h1) and math.isfinite(h2) and h2 < h1 < h0
            and h2 > 1e3 * tol_eff):
        q = math.log(h2 / h1) / math.log(h1 / h0)
        if math.isfinite(q):
            orders.append(q)


def _result(point, status, iters, res, beta, gap, nsteps, tol_eff) -> dict:
    """The one-point result as ``_project_batch``'s arrays (m = 1); ``point`` a (D,) array or list."""
    return dict(points=np.array([point], dtype=np.float64), converged=np.array([status == 0]),
                status=np.array([status], dtype=np.int64), iterations=np.array([iters], dtype=np.int64),
                residual=np.array([res]), beta=np.array([beta]), eigengap=np.array([gap]),
                newton_steps=np.array([nsteps], dtype=np.int64), tol=np.array([tol_eff]))


def _frame_one(field, x1, tt, d, third, ah):
    """``_frame_at`` for one point of an EmpiricalDensity: (lam (D,), vec (D, D) descending, score (D,),
    beta, gap, gap_floor, dH (D, D, D) or None), the same arithmetic as the batched frame. ``ah`` is
    ``(a, h, c2, c3, fixed)`` at tt (fixed over the iteration): a, h (1,) arrays, c2 = a^2/h^2 and
    c3 = (a/h)^3 as floats (checked finite by the caller), ``fixed`` the moments' per-t factors."""
    _, h, c2, c3, _ = ah
    s, cov, k3 = _moments_at(field, x1, tt, third, ah)
    if cov.shape[0] <= 2:   # the batch path's closed form (``_eigh_blocks``), the same bits
        mu, vec = eigh_small(cov[None])
        mu, vec = mu[0], vec[0]
    else:
        mu, vec = np.linalg.eigh(cov)
    mu = mu[::-1]
    lam = c2 * mu - 1.0 / h[0]
    mul = mu.tolist()
    gap = c2 * (mul[d - 1] - mul[d]) if d > 0 else _INF
    floor = c2 * (8 * _EPS * max(abs(mul[0]), abs(mul[-1])))
    if not math.isfinite(float(np.add.reduce(lam)) + float(np.add.reduce(s))):
        raise _Fallback   # the batch path refuses it by name
    dH = c3 * k3 if third else None
    return lam, vec[:, ::-1], s, -float(lam[d]), gap, floor, dH


def _newton_one(lam, vec, s, dH, g, d):
    """``_ridge_newton._newton_step_impl`` for one point (the same formulas, the same scaling)."""
    D = lam.shape[0]
    lamN = lam[d:]
    E = vec[:, d:]
    J = lamN[:, None] * E.T   # (D-d, D)
    if dH is not None and d > 0:
        T = vec[:, :d]
        c = np.einsum("dl,d->l", T, s)   # tangential score coordinates (d,)
        B = np.einsum("lbk,bj->ljk", np.einsum("al,abk->lbk", T, dH), E)   # v_l^T dH_k v_j
        denom = lamN[None, :] - lam[:d, None]                 # (d, D-d): lambda_j - lambda_l
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.einsum("l,ljk->jk", c, B / denom[..., None])
        J = J + np.where(np.isfinite(G), G, 0.0)
    amax = float(np.max(np.abs(J)))
    _, ex = math.frexp(amax if (math.isfinite(amax) and amax > 0) else 1.0)
    sc = math.ldexp(1.0, -ex)
    J = J * sc
    g = g * sc
    JJt = J @ J.T
    if D - d == 1 and JJt[0, 0] != 0:
        return J[0] * (-g[0] / JJt[0, 0])
    try:
        y = np.linalg.solve(JJt, -g)
    except np.linalg.LinAlgError:
        y = np.linalg.lstsq(JJt, -g, rcond=None)[0]
    return np.einsum("kd,k->d", J, y)


def project_one(field, x0, t, d, tol, max_iter, newton, beta_min, step):
    """``_project_batch`` for one point x0 (1, D) at t (1,) of an EmpiricalDensity; returns its dict of (1,)
    arrays and the observed orders. Raises ``_Fallback`` where the batch path must run instead."""
    if not isinstance(field, EmpiricalDensity):
        raise _Fallback
    D = x0.shape[1]
    if _one_normal_small(D, d):
        return _project_small(field, x0, t, d, tol, max_iter, newton, beta_min, step)
    x = x0[0].copy()
    h, third, ah = _setup(field, x0, t, d, newton, step)
    status, iters, nsteps = 1, 0, 0
    res, beta, gap = _INF, _NAN, _NAN
    tol_eff = tol
    trust = math.sqrt(h)
    prev_x = x
    prev_r = _INF
    prev_scms = np.zeros(D)
    was_newton = False
    hist = (_NAN, _NAN, _NAN)
    orders = []
    c_floor = 64 * _EPS * math.sqrt(D)
    x1 = np.empty((1, D))
    for it in range(max_iter + 1):
        x1[0] = x
        lam, vec, s, fb, fg, ffloor, dH = _frame_one(field, x1, t, d, third, ah)
        E = vec[:, d:]
        g = np.einsum("dk,d->k", E, s)
        r = math.sqrt(float(np.add.reduce(g * g)))
        if not math.isfinite(r):
            raise _Fallback   # |g|^2 overflows (t ~ 1e-300): the batch path's scaled norm
        floor = c_floor * (1.0 + float(np.abs(x).max())) * abs(float(lam[-1]))
        tol_eff = max(tol, floor)
        failed = was_newton and not (r < prev_r)
        if was_newton and not failed:
            trust *= 2.0
        if failed:   # the Newton step did not reduce the residual: back, SCMS step, smaller trust
            trust /= 4.0
            x = prev_x + prev_scms
            was_newton = False
            hist = (_NAN, _NAN, _NAN)
            iters += 1
            if it == max_iter:
                break
            continue
        res, beta, gap = r, fb, fg
        done = r <= tol_eff
        regular = (fb > beta_min) and (fg > beta_min) and not (fg <= 64 * ffloor)
        bad = not math.isfinite(r) or not bool(np.isfinite(x).all())
        if done:
            status = 0 if regular else 2
        if bad:
            status = 3
        if done or bad or it == max_iter:
            break
        scms = h * np.einsum("dk,k->d", E, g)
        use_n = False
        if newton:
            dn = _newton_one(lam, vec, s, dH, g, d)
            use_n = regular and bool(np.isfinite(dn).all()) and math.sqrt(float(np.add.reduce(dn * dn))) <= trust
        hist = (hist[1], hist[2], r) if use_n else (_NAN, _NAN, _NAN)
        _note_order(hist, tol_eff, orders)
        prev_x, prev_r, prev_scms = x, r, scms
        was_newton = use_n
        nsteps += use_n
        iters += 1
        x = x + (dn if use_n else scms)
    return _result(x, status, iters, res, beta, gap, nsteps, tol_eff), orders


def _setup(field, x0, t, d, newton, step):
    """The per-call constants of both loops: ``(h, third, ah)``: h the SCMS step length, third whether the
    Newton steps need the third moment, ``ah = (a, hh, c2, c3, {})`` the frames' tuple (a, hh the schedule's
    (1,) arrays at t, c2 = a^2/h^2 and c3 = (a/h)^3 as floats, checked finite here)."""
    h = float(field.schedule._h(t)[0]) if step is None else float(np.float64(step) if np.ndim(step) == 0
                                                                    else np.asarray(step)[0])
    third = bool(newton and d > 0)
    a, hh = field.schedule._a(t), field.schedule._h(t)   # fixed over the iteration (one t)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # checked just below
        c2 = float((a * a / (hh * hh))[0])
        c3 = float(((a / hh) ** 3)[0]) if third else 1.0
    if not (math.isfinite(c2) and math.isfinite(c3)):
        raise _Fallback   # (a/h)^k overflows float64: the batch path's nested products
    return h, third, (a, hh, c2, c3, {})


def _frame_small(field, x1, tt, d, third, ah):
    """:func:`_frame_one` on Python floats at D <= 2 with d = D - 1: ``(lam_T, lam_N, T, E, s, beta, gap,
    floor, dH)`` with T, E the tangent and normal vectors (tuples; T None at D = 1), s the score (list),
    dH the flat (D^3,) list or None. The batch frame's formulas (``_frame_at``, ``eigh_small``)."""
    _, h, c2, c3, _ = ah
    s, cov, k3 = _moments_at(field, x1, tt, third, ah)
    s = s.tolist()
    cv = cov.tolist()
    ih = 1.0 / float(h[0])
    if len(s) == 2:
        mu_lo, mu_hi, cs, sn = eigh2(cv[0][0], cv[1][0], cv[1][1])
        lam_t = c2 * mu_hi - ih
        lam_n = c2 * mu_lo - ih
        T, E = (cs, sn), (-sn, cs)
        gap = c2 * (mu_hi - mu_lo)
        floor = c2 * (8 * _EPS * max(abs(mu_hi), abs(mu_lo)))
    else:
        mu = cv[0][0]
        lam_t, lam_n = None, c2 * mu - ih
        T, E = None, (1.0,)
        gap = _INF
        floor = c2 * (8 * _EPS * abs(mu))
    if not math.isfinite(lam_n + (lam_t if lam_t is not None else 0.0) + sum(s)):
        raise _Fallback   # the batch path refuses it by name
    dH = [c3 * v for v in k3.ravel().tolist()] if third else None
    return lam_t, lam_n, T, E, s, -lam_n, gap, floor, dH


def _newton_small(lam_t, lam_n, T, E, s, dH, g):
    """``_ridge_newton._newton_step_small`` for one point on Python floats (the same formulas, same order)."""
    J = [lam_n * e for e in E]
    if dH is not None and T is not None:          # D = 2, d = 1: the frame-turning term
        T0, T1 = T
        c = T0 * s[0] + T1 * s[1]
        P00 = T0 * dH[0] + T1 * dH[4]             # P[b, k] = T_0 dH[0, b, k] + T_1 dH[1, b, k]
        P01 = T0 * dH[1] + T1 * dH[5]
        P10 = T0 * dH[2] + T1 * dH[6]
        P11 = T0 * dH[3] + T1 * dH[7]
        B = (P00 * E[0] + P10 * E[1], P01 * E[0] + P11 * E[1])
        den = lam_n - lam_t
        for k in range(2):
            # den = 0: B/den is +-inf or NaN in the batch, never finite: G = 0 there
            G = c * (B[k] / den) if den != 0 else _INF
            J[k] = J[k] + (G if math.isfinite(G) else 0.0)
    amax = max(abs(v) for v in J)
    ok = all(math.isfinite(v) for v in J) and amax > 0
    _, ex = math.frexp(amax if ok else 1.0)
    sc = math.ldexp(1.0, -ex)
    J = [v * sc for v in J]
    gs = g * sc
    JJ = J[0] * J[0]
    if len(J) == 2:
        JJ = JJ + J[1] * J[1]
    y = -gs / JJ if JJ != 0 else 0.0
    return [v * y for v in J]


def _project_small(field, x0, t, d, tol, max_iter, newton, beta_min, step):
    """:func:`project_one` at D <= 2 with one normal direction, on Python floats (see the module doc)."""
    D = x0.shape[1]
    x = x0[0].tolist()
    h, third, ah = _setup(field, x0, t, d, newton, step)
    status, iters, nsteps = 1, 0, 0
    res, beta, gap = _INF, _NAN, _NAN
    tol_eff = tol
    trust = math.sqrt(h)
    prev_x = x
    prev_r = _INF
    prev_scms = [0.0] * D
    was_newton = False
    hist = (_NAN, _NAN, _NAN)
    orders = []
    c_floor = 64 * _EPS * math.sqrt(D)
    x1 = np.empty((1, D))
    isf = math.isfinite
    for it in range(max_iter + 1):
        x1[0] = x
        lam_t, lam_n, T, E, s, fb, fg, ffloor, dH = _frame_small(field, x1, t, d, third, ah)
        g = E[0] * s[0]
        if D == 2:
            g = g + E[1] * s[1]
        r = math.sqrt(g * g)
        if not isf(r):
            raise _Fallback   # |g|^2 overflows (t ~ 1e-300): the batch path's scaled norm
        floor = c_floor * (1.0 + max(abs(v) for v in x)) * abs(lam_n)
        tol_eff = tol if tol >= floor else floor
        failed = was_newton and not (r < prev_r)
        if was_newton and not failed:
            trust *= 2.0
        if failed:   # the Newton step did not reduce the residual: back, SCMS step, smaller trust
            trust /= 4.0
            x = [p + q for p, q in zip(prev_x, prev_scms)]
            was_newton = False
            hist = (_NAN, _NAN, _NAN)
            iters += 1
            if it == max_iter:
                break
            continue
        res, beta, gap = r, fb, fg
        done = r <= tol_eff
        regular = (fb > beta_min) and (fg > beta_min) and not (fg <= 64 * ffloor)
        bad = not isf(r) or not all(isf(v) for v in x)
        if done:
            status = 0 if regular else 2
        if bad:
            status = 3
        if done or bad or it == max_iter:
            break
        scms = [h * (e * g) for e in E]
        use_n = False
        if newton:
            dn = _newton_small(lam_t, lam_n, T, E, s, dH, g)
            use_n = (regular and all(isf(v) for v in dn)
                     and math.sqrt(sum(v * v for v in dn) if D == 1 else dn[0] * dn[0] + dn[1] * dn[1]) <= trust)
        hist = (hist[1], hist[2], r) if use_n else (_NAN, _NAN, _NAN)
        _note_order(hist, tol_eff, orders)
        prev_x, prev_r, prev_scms = x, r, scms
        was_newton = use_n
        nsteps += use_n
        iters += 1
        step_ = dn if use_n else scms
        x = [p + q for p, q in zip(x, step_)]
    return _result(x, status, iters, res, beta, gap, nsteps, tol_eff), orders
