"""Every result held against simulation: one check per result, the runner, the report writer, Dask sweeps.

Run it with ``rftheory verify [--quick | --full] [--only NAME ...] [--seed S] [--out DIR]
[--scheduler ADDRESS|serial] [--no-progress]``: it writes ``DIR/report.json`` and ``DIR/report.md`` (a table
of result, setting, predicted, measured, tolerance, margin, verdict and where the tolerance comes from) and
exits 1 if any check fails.

Writing a check
---------------
Drop one module into ``verification/checks/`` (a name not starting with ``_``; helpers shared by several
checks go in ``_name.py``). It defines::

    NAME = "P2"                              # the result's label; what --only takes
    TITLE = "ridge of collinear data is the affine hull"

    def inputs(profile: str) -> dict:        # profile is "quick" (CI, minutes on 2 cores) or "full"
        return {"dataset": ..., "schedule": ..., "sizes": {...}, "seeds": ...}   # these 4 keys required

    def run(ctx, inputs) -> list[Comparison]:
        rng = ctx.rng(NAME, "data")           # Generators from the run seed; same seed, same bits
        ...                                   # simulate; ctx.sweep(fn, params) for many seeds/sizes
        return [Comparison(setting="OU t=0.1, n=3", predicted=theory, measured=simulated,
                           tolerance=tol, source="round-off: 64 eps |H|", kind="equal")]

``Comparison`` (``verification.protocol``) takes scalars or arrays (the report shows the worst element);
``kind`` is ``"equal"`` (``|pred - meas| <= tol``, optionally as a norm over ``norm_axis``), ``"upper"``
(``meas <= pred + tol``: pred is a bound from above), ``"lower"`` (``meas >= pred - tol``) or ``"info"``
(reported, never judged; a check needs at least one judged row unless it is ``REPORTED_ONLY``).
``source`` is mandatory: every tolerance comes from something -- round-off model, ``z * SE`` with the
draws, dof and z-score stated (``verification.stats.critical_value`` gives Bonferroni-corrected t/normal
quantiles; the SE never from the samples judged: an analytic variance or an independent pilot,
``verification.stats.pilot_se``), quadrature error.
A check may also return plain strings: they become notes in the report.

Perturbation
------------
``execute(module, ctx, perturb=f)`` multiplies every judged prediction by ``f`` before judging; the runner
takes ``RFTHEORY_VERIFY_PERTURB="NAME=f,..."`` (``*`` for all). Every check must come with a test
(``tests/test_verification_checks.py``) showing that it passes at ``perturb=1`` and FAILS under a
perturbation small enough to matter -- declare it as ``PERTURB = 1.05`` (say) in the module; the test is
parametrised over the registry, so a new module is tested as soon as it exists. The power audit there asks
that EVERY judged row fail under the declared factor: at most ``1 + 1e-6`` for exact results and ``1.1``
for Monte Carlo and bound rows. A Monte Carlo row inside an exact check declares its own factor,
``Comparison(..., power=1.1)`` (used by ``CheckResult.reevaluate_declared``; ``--perturb`` still applies
one factor to every row). A row that no such factor can move (a predicted 0, a bound with decades of slack)
is ``kind="info"`` and its source says why. A check whose every row is a report (a first-order bound with
no stated target) declares ``REPORTED_ONLY = True`` instead of ``PERTURB``: its verdict is ``"info"``, never
``"pass"``, and it must return only info rows.

Sweeps
------
``ctx.sweep(fn, params_list, name=..., version=...)`` runs ``fn(params, rng) -> dict of arrays`` for every
params dict on dask.distributed (a 2-worker ``LocalCluster`` started on first use, or ``--scheduler``), or
in-process when ``scheduler="serial"``. ``fn`` must be a module-level function. Each task's seed is a
``SeedSequence`` spawned from ``--seed`` with a spawn key from the task's own parameters, so serial and
distributed runs are bit-identical, and each result is cached in ``OUT/cache`` (one ``.npz`` per task, keyed
by a hash of fn, params, seed and version, written atomically): a rerun computes only what is missing.
Bump ``version`` when ``fn``'s code changes.
"""
from .protocol import Comparison, CheckResult, Context, Row, execute
from .registry import discover, registry

__all__ = ["Comparison", "CheckResult", "Context", "Row", "execute", "registry", "discover"]
