"""P2 (affine hull): with A the affine hull of the data (direction space of dimension k), N its orthogonal
complement and c the common N-component of every x_i (docs/theory.md §2),

    P_N s*(x, t) = -(P_N x - a_t c)/h_t,   N^T H_t(x) N = -I/h_t,   and for d = k:  R_t^d = a_t A.

Data: k+1 random points on an affine k-plane at normal offset c != 0, randomly rotated in R^D.
Rows (per (k, D, t)):

* score identity -- predicted ``-(N^T x - a c)/h``; measured ``N^T`` times the library's score at points
  drawn around p_t; tolerance: backward-error model (spread of the float64 result when x and the data move
  by 64 eps relative, 4 draws) + 64 eps |s|.
* Hessian -- predicted ``-I/h`` on N; measured ``N^T H N``; same tolerance model.
* ridge -- predicted ``a c`` (the normal coordinates of a_t A); measured ``N^T pi(x)`` with pi the library's
  ridge projection (rftheory.geometry.ridge.project, d = k). P2 needs Sigma to have k positive eigenvalues at the
  point: only converged points whose eigengap leaves the normal frame determined are judged, i.e. frame
  angle error ``theta = dH/gap <= 1e-3`` with ``dH = 64 eps (1/h + a^2 R^2/h^2)`` the Hessian's round-off
  bound; the others are counted in a note. Tolerance: ``h |P_T s| theta`` (a frame tilted by theta moves
  the zero of ``E^T s`` by that much) + ``h * residual`` (the projection stops at a nonzero residual;
  ``|y| = h |P_N s|`` exactly) + 64 eps (|pi(x)| + |a c|).
"""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity, ridge
from rftheory.density.schedules import OU

from ..protocol import Comparison

NAME = "P2"
TITLE = "affine hull: P_N s* = -(P_N x - a c)/h, H = -I/h on N, ridge = a_t A when d = k"
PERTURB = 1 + 1e-6

EPS = np.finfo(np.float64).eps
THETA_MAX = 1e-3
_SIZES = {
    "quick": {"hulls": [[1, 2], [1, 3], [2, 3]], "times": [0.1, 0.5, 2.0], "queries": 16, "offset": 0.8},
    "full": {"hulls": [[1, 2], [1, 3], [2, 3], [2, 4], [3, 5]], "times": [0.1, 0.3, 0.5, 2.0, 5.0],
             "queries": 64, "offset": 0.8},
}


def inputs(profile: str) -> dict:
    s = _SIZES[profile]
    return {"dataset": f"k+1 points ~ N(0, 1.5^2) on a k-plane at normal offset {s['offset']}, randomly "
                       "rotated in R^D, for (k, D) in hulls",
            "schedule": "OU", "sizes": s,
            "seeds": "data, rotations and queries from ctx.rng('P2', k, D[, t])"}


def _spread(f, X, x, rng, rel=64 * EPS, draws=4):
    base = f(X, x)
    worst = np.zeros_like(base)
    for _ in range(draws):
        worst = np.maximum(worst, np.abs(f(X * (1 + rel * rng.uniform(-1, 1, X.shape)),
                                           x * (1 + rel * rng.uniform(-1, 1, x.shape))) - base))
    return base, worst


def run(ctx, inputs: dict):
    s = inputs["sizes"]
    rows = []
    for k, D in s["hulls"]:
        rng = ctx.rng(NAME, k, D)
        Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
        pts = np.zeros((k + 1, D))
        pts[:, :k] = 1.5 * rng.standard_normal((k + 1, k))
        pts[:, k:] = s["offset"]
        X = pts @ Q.T
        _, basis, N, c = ridge.affine_hull(X)
        if basis.shape[1] != k:
            raise ValueError(f"P2 data set has hull dimension {basis.shape[1]}, expected {k}")
        dens = EmpiricalDensity(X, OU())
        R2 = float(np.max(np.sum((X - X.mean(0)) ** 2, axis=1)))
        for t in s["times"]:
            r = ctx.rng(NAME, k, D, t)
            a, h = float(dens.schedule.a(t)), float(dens.schedule.h(t))
            x = dens.sample(t, s["queries"], r) + 0.5 * r.standard_normal((s["queries"], D))
            setting = f"k={k}, D={D}, OU t={t:g} (h={h:.3g}), {len(x)} points"
            # score identity
            sN, spread = _spread(lambda XX, xx: EmpiricalDensity(XX, OU()).score(xx, t) @ N, X, x, r)
            rows.append(Comparison(
                setting=setting, quantity="P_N s*: -(N^T x - a c)/h vs library score",
                predicted=-(x @ N - a * c) / h, measured=sN, tolerance=spread + 64 * EPS * np.abs(sN).max(),
                source="backward-error model (64 eps, 4 draws) + 64 eps |s|"))
            # Hessian on N
            HN, spread = _spread(lambda XX, xx: np.einsum("di,mde,ej->mij", N, EmpiricalDensity(XX, OU())
                                                          .hessian(xx, t), N), X, x, r)
            rows.append(Comparison(
                setting=setting, quantity="N^T H N: -I/h vs library Hessian",
                predicted=np.broadcast_to(-np.eye(D - k) / h, HN.shape), measured=HN,
                tolerance=spread + 64 * EPS / h, source="backward-error model (64 eps, 4 draws) + 64 eps/h"))
            # ridge = a_t A
            pr = ridge.project(dens, x, t, k)
            fr = ridge.frame(dens, pr.points, t, k)
            dH = 64 * EPS * (1 / h + a * a * R2 / h**2)
            theta = dH / np.maximum(fr.eigengap, 1e-300)
            ok = pr.converged & (theta <= THETA_MAX)
            if ok.sum() < 2:
                rows.append(f"{setting}: ridge row skipped, only {int(ok.sum())}/{len(x)} projected points "
                            "converged with a determined frame (P2's premise, k positive eigenvalues of Sigma, "
                            "fails: the posterior is one-hot there)")
                continue
            sT = np.linalg.norm(fr.score - fr.project_normal(fr.score), axis=1)
            yN = pr.points @ N
            tol = (h * sT * theta + h * pr.residual
                   + 64 * EPS * (np.linalg.norm(pr.points, axis=1) + np.linalg.norm(a * c)))[:, None]
            rows.append(Comparison(
                setting=f"{setting} ({ok.sum()} judged)", quantity="ridge d=k: a c vs N^T pi(x)",
                predicted=np.broadcast_to(a * c, yN[ok].shape), measured=yN[ok], tolerance=tol[ok],
                source="frame round-off h|P_T s| dH/gap + h*residual + 64 eps |x|"))
            if (~ok).any():
                rows.append(f"{setting}: {int((~ok).sum())} projected points not judged (not converged: "
                            f"{int((~pr.converged).sum())}; frame undetermined, theta > {THETA_MAX:g}: "
                            f"{int((pr.converged & (theta > THETA_MAX)).sum())})")
    if not any(isinstance(r, Comparison) and r.quantity.startswith("ridge") for r in rows):
        raise ValueError("P2: no setting had judged ridge points")
    return rows
