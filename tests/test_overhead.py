"""Issue 17 item 1 (no per-call tax): the fast paths give what the general paths give.

- validation once per public call: a Python float time takes a short path in ``per_point_times``; it must
  accept and refuse exactly what the schedule's ``check_t`` does;
- the one-BLAS-thread context nests: only the outermost entry changes the thread count;
- the Newton step with one normal direction divides instead of calling LAPACK: the same bits;
- ``ridge.trace`` runs both fronts of a piece as one batch and takes the tangent from the projection's own
  frame: its pieces equal those of the step-by-step reference below (public ``project`` and ``frame`` for
  every step, one front after the other, as the code did before) to round-off.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from rftheory import EmpiricalDensity, datasets, ridge
from rftheory import _blas
from rftheory._checks import per_point_times
from rftheory.density.schedules import OU, VE, GTVFig1
from rftheory.geometry import _ridge_trace


@pytest.mark.parametrize("schedule", [OU(), VE(sigma_min=0.01, sigma_max=0.2), GTVFig1()])
@pytest.mark.parametrize("t", [0.3, 1.0, 2.0, 0.0, -1.0, float("inf"), float("nan"), 1e-300])
def test_float_time_path_accepts_and_refuses_as_check_t(schedule, t):
    try:
        ref = np.full(3, float(schedule.check_t(np.float64(t))))
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            per_point_times(t, 3, schedule)
        return
    got = per_point_times(t, 3, schedule)
    assert got.dtype == np.float64 and np.array_equal(got, ref)


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]


def test_blas_single_nests_and_restores():
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with _blas.blas_single():
        assert all(n == 1 for n in _blas_threads())
        with _blas.blas_single():
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())     # the inner exit does not restore early
    assert _blas_threads() == before


def test_one_normal_direction_newton_step_has_lapacks_bits():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(500, 1, 2)) * np.exp(5 * rng.normal(size=(500, 1, 1)))
    g = rng.normal(size=(500, 1))
    JJt = J @ np.swapaxes(J, 1, 2)
    ref = np.einsum("mkd,mk->md", J, np.linalg.solve(JJt, -g[:, :, None])[:, :, 0])
    lam = np.column_stack([np.full(500, -1.0), np.full(500, -2.0)])
    # a frame whose Newton matrix is exactly J: Lambda_N E^T with E^T = J / lambda_N (d = 1, no turning term)
    vec = np.zeros((500, 2, 2))
    vec[:, :, 1] = J[:, 0, :] / lam[:, 1:]
    fr = ridge.Frame(eigenvalues=lam, vectors=vec, normal=vec[:, :, 1:], tangent=vec[:, :, :1], beta=-lam[:, 1],
                     eigengap=lam[:, 0] - lam[:, 1], score=np.zeros((500, 2)), d=1)
    got = ridge._newton_step(fr, None, g)
    assert np.array_equal(got, ref)


def _trace_reference(field, t, tol=1e-9, max_points=5000):
    """The previous trace: one front after the other, public project() and frame() at every step."""
    D = field.D
    lo, hi = _ridge_trace._default_bounds(field, t, D)
    seeds = _ridge_trace._seed_grid(lo, hi, 40 if D == 2 else 12)
    step = min(float(np.linalg.norm(hi - lo)) / 150.0, 0.25 * float(np.sqrt(field.schedule.h(t))))
    pr = ridge.project(field, seeds, t, 1, tol=tol)
    inside = np.all((pr.points >= lo) & (pr.points <= hi), axis=1)
    cand = pr.points[pr.converged & inside]
    visited = np.zeros(len(cand), dtype=bool)
    pieces, total = [], 0

    def tangent_at(p):
        return ridge.frame(field, p[None], t, 1).tangent[0, :, 0]

    def follow(start, v):
        pts, cur, closed = [], start, False
        for _ in range(max_points):
            y = ridge.project(field, (cur + step * v)[None], t, 1, tol=tol, max_iter=60)
            p = y.points[0]
            if not y.converged[0] or np.any(p < lo) or np.any(p > hi) or \
                    np.linalg.norm(p - (cur + step * v)) > step or np.linalg.norm(p - cur) < 0.25 * step:
                break
            if len(pts) > 3 and np.linalg.norm(p - start) < 0.75 * step:
                closed = True
                break
            if len(pts) > 2 and np.min(np.linalg.norm(np.asarray(pts[:-2]) - p, axis=1)) < 0.5 * step:
                break
            w = tangent_at(p)
            v = w if np.dot(w, v) >= 0 else -w
            pts.append(p)
            cur = p
        return pts, closed

    while not np.all(visited) and total < max_points:
        i = int(np.flatnonzero(~visited)[0])
        v0 = tangent_at(cand[i])
        f, closed = follow(cand[i], v0)
        b = [] if closed else follow(cand[i], -v0)[0]
        P = np.array(b[::-1] + [cand[i]] + f)
        pieces.append((P, closed))
        total += len(P)
        dd = np.min(np.linalg.norm(cand[:, None, :] - P[None], axis=-1), axis=1)
        visited |= dd <= 1.5 * step
        visited[i] = True
    return pieces


@pytest.mark.parametrize("case", ["thirteen", "circle"])
def test_batched_trace_equals_the_step_by_step_reference(case):
    if case == "thirteen":
        dens, t = EmpiricalDensity(datasets.thirteen_points()), 0.3
    else:
        dens, t = EmpiricalDensity(datasets.circle(360)), 0.5 * np.log1p(0.2)
    got = ridge.trace(dens, t, 1)
    ref = _trace_reference(dens, t)
    assert len(got) == len(ref)
    scale = max(np.abs(P).max() for P, _ in ref)
    for pc, (P, closed) in zip(got, ref):
        assert pc.closed == closed and pc.points.shape == P.shape
        # round-off of the frame taken from a pass with the third moment (other product columns)
        assert np.abs(pc.points - P).max() <= 1e-12 * scale
