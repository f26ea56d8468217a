"""Plain per-fit references for the batched [GTV] ensemble paths (used by test_gtv_batched and
test_feature_ensembles)."""
import numpy as np


def per_fit_pf_ode(ens, grid, x0):
    """The general path, one fit at a time: full feature vectors, x += dt (beta x + g2/2 (a m - x)/h).
    Returns (N, m, D)."""
    sched, out = ens.schedule, []
    for n in range(ens.N):
        x = x0.copy()
        for k in range(grid.size - 1):
            t, dt = grid[k], grid[k] - grid[k + 1]
            m = ens.features(x, t) @ ens.W[n].T
            s = (float(sched.a(t)) * m - x) / float(sched.h(t))
            x = x + dt * (float(sched.beta(t)) * x + 0.5 * float(sched.g2(t)) * s)
        out.append(x)
    return np.stack(out)
