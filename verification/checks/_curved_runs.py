"""Shared simulation for T2 and T3: PF-ODE trajectories of the exact score and of the score plus an injected
normal-only or tangent-only error, on curved ridges (the 13-point set and the 3-mode set), measured against
the d = 1 ridge of p_t by ``rftheory.dynamics.measure`` (module ``rftheory.dynamics.motion``). Computed once per (seed, sizes) in a process."""
from __future__ import annotations

import numpy as np

from rftheory import EmpiricalDensity, datasets, dynamics
from rftheory.dynamics.sampling import PerturbedField, normal_error, sample, tangent_error
from rftheory.density.schedules import geometric_grid

SIZES = {
    "quick": {"samples": 40, "steps": 400, "record": 40, "t_min": 1e-2, "amplitude": [0.5]},
    "full": {"samples": 400, "steps": 2000, "record": 120, "t_min": 1e-3, "amplitude": [0.1, 0.5]},
}
SETS = {"thirteen": (datasets.thirteen_points, 2.0), "three": (lambda: datasets.modes("three"), 4.0)}
U0 = np.array([0.6, 0.8])
_CACHE = {}


def declared(profile):
    s = SIZES[profile]
    return {"dataset": "the 13-point set (rftheory.data.datasets.THIRTEEN, T=2) and 3 modes (0,0),(5,0),(0,5) (T=4)",
            "schedule": f"OU, PF-ODE Heun, {s['steps']} geometric steps to t_min={s['t_min']}",
            "sizes": s, "seeds": "starts drawn from p_T with ctx.rng(NAME, set)",
            "errors": f"normal-only c P_perp u0 and tangent-only c P_par u0, u0 = {U0.tolist()}, c in {s['amplitude']}"}


def runs(ctx, profile):
    """{(set, kind, amplitude): (measurements learned, measurements exact)} for kind in normal/tangent."""
    s = SIZES[profile]
    key = (ctx.seed, profile)
    if key in _CACHE:
        return _CACHE[key]
    out = {}
    for name, (make, T) in SETS.items():
        dens = EmpiricalDensity(make())
        x0 = dens.sample(T, s["samples"], ctx.rng("curved", name))
        g = geometric_grid(T, s["t_min"], s["steps"])
        m0 = dynamics.measure(dens, sample(dens, x0, g, "heun", record=s["record"]), 1)
        for amp in s["amplitude"]:
            for kind, err in (("normal", normal_error(dens, 1, amp * U0)), ("tangent", tangent_error(dens, 1, amp * U0))):
                f = PerturbedField(dens, err)
                m = dynamics.measure(dens, sample(f, x0, g, "heun", record=s["record"]), 1, field=f)
                out[(name, kind, amp)] = (m, m0)
    _CACHE[key] = out
    return out
