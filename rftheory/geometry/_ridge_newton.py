"""The projection core of :func:`rftheory.geometry.ridge.project`: SCMS steps and the trust-region Newton
steps on ``E^T s = 0`` with the frame-turning term (the formulas are in the docstring of ``ridge``), for one
batch of validated points. Private: the public face is ``ridge.project`` (and ``ridge.trace``)."""
from __future__ import annotations

import numpy as np

from .._blas import blas_single as _blas_single
from ..density.empirical import EmpiricalDensity
from ._ridge_frame import _EPS, _frame_at, _row_norms


def _step_size(field, t, m):
    sch = getattr(field, "schedule", None)
    if sch is None:
        return None
    if isinstance(field, EmpiricalDensity):   # t is the (m,) array validated by the public call (``_times``)
        return np.array(sch._h(t), dtype=np.float64)
    return np.broadcast_to(np.asarray(sch.h(t), dtype=np.float64), (m,)).copy()


def _one_normal_small(D, d):
    """True where the iteration's small products are written out (D <= 2, one normal direction): the
    one-point path (``_ridge_one``) computes the same formulas on Python floats, so its bits are these."""
    return D <= 2 and D - d == 1


def _normal_coords_small(fr):
    """``g = E^T s`` (m, 1) for :func:`_one_normal_small` (written out: E_0 s_0 + E_1 s_1)."""
    E, s = fr.normal[:, :, 0], fr.score
    g = E[:, 0] * s[:, 0]
    if E.shape[1] == 2:
        g = g + E[:, 1] * s[:, 1]
    return g[:, None]


def _newton_step_small(fr, dH, g):
    """:func:`_newton_step_impl` for :func:`_one_normal_small`, written out (the same formulas and the same
    power-of-two scaling; no einsum or matmul, whose kernels may fuse multiply-adds)."""
    lam = fr.eigenvalues
    E = fr.normal[:, :, 0]
    lamN = lam[:, -1]
    J = lamN[:, None] * E                              # (m, D): lambda_N E^T
    if dH is not None and fr.d > 0:                   # D = 2, d = 1
        T, s = fr.tangent[:, :, 0], fr.score
        c = T[:, 0] * s[:, 0] + T[:, 1] * s[:, 1]      # tangential score coordinate
        P = T[:, 0, None, None] * dH[:, 0] + T[:, 1, None, None] * dH[:, 1]    # P[b, k] = sum_a T_a dH_abk
        B = P[:, 0, :] * E[:, 0, None] + P[:, 1, :] * E[:, 1, None]            # B_k = v_T^T dH_k v_N
        den = lamN - lam[:, 0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            G = c[:, None] * (B / den[:, None])
        J = J + np.where(np.isfinite(G), G, 0.0)
    amax = np.max(np.abs(J), axis=1)
    _, ex = np.frexp(np.where(np.isfinite(amax) & (amax > 0), amax, 1.0))
    sc = np.ldexp(1.0, -ex)
    J = J * sc[:, None]
    gs = g[:, 0] * sc
    JJ = J[:, 0] * J[:, 0]
    if J.shape[1] == 2:
        JJ = JJ + J[:, 1] * J[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(JJ != 0, -gs / JJ, 0.0)          # J = 0: the minimal-norm step of 0 = g is 0
    return J * y[:, None]


def _newton_step(fr, dH, g):
    """Minimal-norm Newton step for E^T s = 0 with the frame-turning term (see module doc)."""
    if _one_normal_small(fr.vectors.shape[1], fr.d):
        return _newton_step_small(fr, dH, g)
    with _blas_single():  # batched products and solves of small matrices
        return _newton_step_impl(fr, dH, g)


def _newton_step_impl(fr, dH, g):
    m, D, _ = fr.vectors.shape
    d = fr.d
    lamN = fr.eigenvalues[:, d:]
    E = fr.normal
    J = lamN[:, :, None] * np.swapaxes(E, 1, 2)  # (m, D-d, D)
    if dH is not None and d > 0:
        T = fr.tangent
        c = np.einsum("mdl,md->ml", T, fr.score)  # tangential score coordinates
        # B[m, l, j, k] = v_l^T dH_k v_j
        # (a fixed order of contraction: T^T dH first, then E; no einsum path search per step)
        B = np.einsum("mlbk,mbj->mljk", np.einsum("mal,mabk->mlbk", T, dH), E)
        denom = lamN[:, None, :] - fr.eigenvalues[:, :d, None]  # (m, d, D-d): lambda_j - lambda_l
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.einsum("ml,mljk->mjk", c, B / denom[..., None])
        J = J + np.where(np.isfinite(G), G, 0.0)
    # Scale each point's system by the power of two nearest below max|J|: exact in floating point (the step's
    # bits are unchanged), and J J^T cannot overflow at tiny t, where |J| ~ 1/h_t reaches 1e300.
    # step = J^T (J J^T)^{-1} (-g) = Js^T (Js Js^T)^{-1} (-g sc) with Js = J sc.
    amax = np.max(np.abs(J), axis=(1, 2))
    _, ex = np.frexp(np.where(np.isfinite(amax) & (amax > 0), amax, 1.0))
    sc = np.ldexp(1.0, -ex)
    J = J * sc[:, None, None]
    g = g * sc[:, None]
    JJt = J @ np.swapaxes(J, 1, 2)
    if JJt.shape[1] == 1 and np.all(JJt[:, 0, 0] != 0):   # one normal direction: LAPACK's 1x1 solve is a division
        return J[:, 0, :] * (-g / JJt[:, 0])
    try:
        y = np.linalg.solve(JJt, -g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        y = np.linalg.lstsq(JJt.reshape(-1, JJt.shape[-1]), -g.reshape(-1), rcond=None)[0]
    return np.einsum("mkd,mk->md", J, y)


def _project_batch(field, x0, t, d, tol, max_iter, newton, beta_min, step, want_tangent=False):
    """Trust-region hybrid: a Newton step is taken when it is within the point's trust radius; if the
    residual then fails to decrease, the point returns to where it was, takes the SCMS step instead and
    its trust radius shrinks (x4); each successful Newton step doubles it (start: sqrt(h)).
    ``want_tangent`` also returns ``tangent`` (m, D, d), the tangent basis of the frame at each returned
    point (the frame that judged it; for tracing, which then needs no second frame evaluation)."""
    m, D = x0.shape
    x = x0.copy()
    h = _step_size(field, t, m) if step is None else np.broadcast_to(np.float64(step), (m,)).copy()
    if h is None:
        raise ValueError("step must be given for a field without a schedule (SCMS step length)")
    has_dH = newton and hasattr(field, "hessian_derivative")
    status = np.full(m, 1, dtype=np.int64)
    iters = np.zeros(m, dtype=np.int64)
    nsteps = np.zeros(m, dtype=np.int64)
    res = np.full(m, np.inf)
    beta = np.full(m, np.nan)
    gap = np.full(m, np.nan)
    tol_eff = np.full(m, tol)
    trust = np.sqrt(h)
    prev_x = x.copy()
    prev_r = np.full(m, np.inf)
    prev_scms = np.zeros_like(x)
    was_newton = np.zeros(m, dtype=bool)
    hist = np.full((m, 3), np.nan)  # last three residuals of consecutive Newton steps (observed order)
    orders = []
    tang = np.full((m, D, d), np.nan) if want_tangent else None
    active = np.arange(m)
    third = bool(has_dH and d > 0)
    c_floor = 64 * _EPS * np.sqrt(D)      # the round-off floor's constant (the same bits as written out in line)
    small = _one_normal_small(D, d)       # the small products written out (the one-point path's bits)
    for it in range(max_iter + 1):
        na = active.size
        if na == 0:
            break
        # While every point is active (always so for one point) the per-point arrays are indexed by a full slice
        # (views, no gathers) and a mask selects rows directly; afterwards by the active indices. The same
        # arithmetic either way, so the same bits; it only saves the small-batch cost of the gathers.
        full = na == m
        ix = slice(None) if full else active
        sub = (lambda mask: mask) if full else (lambda mask: active[mask])
        xa, ta = x[ix], t[ix]
        fr = _frame_at(field, xa, ta, d, third=third)
        g = _normal_coords_small(fr) if small else np.einsum("mdk,md->mk", fr.normal, fr.score)
        r = _row_norms(g)
        floor = c_floor * (1.0 + np.abs(xa).max(axis=1)) * np.abs(fr.eigenvalues[:, -1])
        tol_eff[ix] = np.maximum(tol, floor)
        # a Newton step that did not reduce the residual is undone: back, SCMS step, smaller trust
        wn = was_newton[ix]
        failed = wn & ~(r < prev_r[ix])
        any_failed = bool(failed.any())
        if wn.any():
            trust[sub(wn & ~failed)] *= 2.0
        if any_failed:
            if full:
                xa = xa.copy()   # x changes below; xa keeps this iteration's points (as the gather did)
            fa = sub(failed)
            trust[fa] /= 4.0
            x[fa] = prev_x[fa] + prev_scms[fa]
            was_newton[fa] = False
            hist[fa] = np.nan
            iters[fa] += 1
            ev = ~failed
            ie = sub(ev)
            res[ie], beta[ie], gap[ie] = r[ev], fr.beta[ev], fr.eigengap[ev]
            if want_tangent:
                tang[ie] = fr.tangent[ev]
            done = ev & (r <= tol_eff[ix])
        else:
            ev = None
            res[ix], beta[ix], gap[ix] = r, fr.beta, fr.eigengap
            if want_tangent:
                tang[ix] = fr.tangent
            done = r <= tol_eff[ix]
        degenerate = fr.eigengap <= 64 * fr.gap_floor
        regular = fr.regular(beta_min) & ~degenerate
        bad = ~np.isfinite(r) | ~np.isfinite(xa).all(axis=1)
        if ev is not None:
            bad &= ev
        if done.any():
            status[sub(done & regular)] = 0
            status[sub(done & ~regular)] = 2
        if bad.any():
            status[sub(bad)] = 3
        keep = ~done & ~bad
        if ev is not None:
            keep &= ev
        if it == max_iter:
            break
        if not keep.any():   # no point takes a step (all converged, stopped, or undone): nothing to compute
            active = active[failed] if any_failed else active[:0]
            continue
        # h P_perp s (g = E^T s)
        scms = h[ix][:, None] * (fr.normal[:, :, 0] * g if small else np.einsum("mdk,mk->md", fr.normal, g))
        if newton:
            dH = None
            if third:  # G (frame turning) is used only for d > 0
                dH = fr.dH if fr.dH is not None else field.hessian_derivative(xa, ta)
            dn = _newton_step(fr, dH, g)
            # |dn| as np.linalg.norm computes it (sqrt of the summed squares), without its wrapper
            use_n = keep & regular & np.isfinite(dn).all(axis=1) & \
                (np.sqrt(np.add.reduce(dn * dn, axis=1)) <= trust[ix])
        else:
            dn, use_n = scms, np.zeros(na, dtype=bool)
        delta = np.where(use_n[:, None], dn, scms)
        # observed order from consecutive Newton-phase residuals well above the round-off floor
        ha = hist[ix]
        hn = np.empty((na, 3))   # the history shifted by one: (r_{k-2}, r_{k-1}, r_k)
        hn[:, :2] = ha[:, 1:]
        hn[:, 2] = r
        ha = np.where(use_n[:, None], hn, np.nan)
        hist[sub(keep)] = ha[keep]
        okq = np.isfinite(ha).all(axis=1) & (ha[:, 2] < ha[:, 1]) & (ha[:, 1] < ha[:, 0]) & \
            (ha[:, 2] > 1e3 * tol_eff[ix])
        if okq.any():
            q = np.log(ha[okq, 2] / ha[okq, 1]) / np.log(ha[okq, 1] / ha[okq, 0])
            orders.extend(q[np.isfinite(q)].tolist())
        ka = sub(keep)
        prev_x[ka], prev_r[ka], prev_scms[ka] = xa[keep], r[keep], scms[keep]
        was_newton[ka] = use_n[keep]
        nsteps[sub(keep & use_n)] += 1
        iters[ka] += 1
        x[ka] = xa[keep] + delta[keep]
        active = active[keep | failed]
    out = dict(points=x, converged=status == 0, status=status, iterations=iters, residual=res, beta=beta,
               eigengap=gap, newton_steps=nsteps, tol=tol_eff)
    if want_tangent:
        out["tangent"] = tang
    return out, orders
