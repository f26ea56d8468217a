"""The ridge benchmark in its smallest mode, for correctness only (no timing assertions)."""
import numpy as np

from bench import bench_ridge as br
from rftheory import ridge


def test_baseline_scms_and_project_agree_by_the_shared_checker():
    dens, q, t = br.circle_workload(m=200)
    h = float(br.W_SCHEDULE.h(t))
    assert abs(h - 0.04) < 1e-15 and float(br.W_SCHEDULE.a(t)) == 1.0
    sub = q[::20]
    pb, its, conv = br.run_baseline(dens.data, sub, h)
    pr = ridge.project(dens, sub, t, 1, tol=br.TOL)
    assert conv.all() and pr.converged.all()
    # one checker for both outputs: |P_perp s*| from rftheory
    rb, rr = br.shared_residual(dens, pb, t), br.shared_residual(dens, pr.points, t)
    assert rb.max() <= 1e-9 and rr.max() <= 1e-9
    # both land on the ridge of the blurred circle (P3 radius ~ 0.94 for rho ~ 1, h = 0.04)
    rad_b, rad_r = np.linalg.norm(pb, axis=1), np.linalg.norm(pr.points, axis=1)
    assert np.all(np.abs(rad_b - rad_r) < 0.05)


def test_bench_main_smallest_mode_writes_json(tmp_path):
    out = tmp_path / "ridge.json"
    br.bench_projection(m=50, k_base=5, k_sconce=0, repeats=1, blas_threads=(None,), log=lambda *a: None)
    res = br.bench_flops(m=16, n=300, D=4, repeats=1, blas_threads=(None,))
    assert res["useful_gflop"] > 0 and 0 < res["fraction_of_matmul"]
    assert br.main(["--quick", "--skip", "projection,flops,memory", "--out", str(out)]) == 0
    assert out.exists()


def test_blocked_gemm_is_the_product(monkeypatch):
    # the bench's blocked reference product (query blocks x data chunks) is A @ B, to round-off
    from rftheory.density import _streaming

    monkeypatch.setattr(_streaming, "_BLOCK_BYTES", 2**16)   # several query blocks
    rng = np.random.default_rng(0)
    dens = br.EmpiricalDensity(rng.normal(size=(700, 3)), chunk_size=256)
    A, B = rng.random((90, 700)), rng.random((700, 10))
    got, ref = br.blocked_gemm(A, B, dens, 3), A @ B
    assert np.max(np.abs(got - ref)) <= 64 * np.finfo(float).eps * np.max(np.abs(A).sum(1)[:, None] * np.abs(B).max(0))
