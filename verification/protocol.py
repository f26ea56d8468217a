"""The check protocol: comparisons, their verdicts, the run context, and executing one check module.

See the package docstring (``verification/__init__.py``) for how to write a check.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rftheory._io import json_safe

from . import sweep as _sweep

__all__ = ["Comparison", "Row", "CheckResult", "Context", "execute", "PROFILES", "KINDS", "REQUIRED_INPUTS"]

log = logging.getLogger(__name__)

PROFILES = ("quick", "full")
#: equal: |pred - meas| <= tol;  upper: meas <= pred + tol (pred bounds meas from above);
#: lower: meas >= pred - tol;  info: reported only, no verdict, never perturbed
KINDS = ("equal", "upper", "lower", "info")
REQUIRED_INPUTS = ("dataset", "schedule", "sizes", "seeds")


def _num(v):
    """JSON-safe float (non-finite values as strings)."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else repr(f)


@dataclass
class Row:
    """One evaluated comparison, as it appears in the report.

    predicted, measured, tolerance, deviation, margin: values at the worst element (the one with the
    smallest margin relative to its tolerance); margin = tolerance - deviation (>= 0 passes);
    n: number of elements compared; n_failed: how many failed; verdict: pass | fail | info.
    """

    result: str
    quantity: str
    setting: str
    kind: str
    predicted: float | str | None
    measured: float | str | None
    tolerance: float | str | None
    deviation: float | str | None
    margin: float | str | None
    n: int
    n_failed: int
    verdict: str
    source: str
    perturb: float

    @property
    def passed(self) -> bool:
        return self.verdict in ("pass", "info")


@dataclass
class Comparison:
    """Prediction vs measurement for one setting.

    Parameters
    ----------
    setting : str
        What was run (e.g. ``"OU t=0.01, n=20, D=3, 12 points"``).
    predicted, measured : float or array
        The theory's value and the simulation's (broadcastable). The runner multiplies ``predicted`` by
        the perturbation factor (never for ``kind="info"``).
    tolerance : float or array, >= 0
        Allowed deviation, elementwise (or per reduced element with ``norm_axis``).
    source : str
        Where the tolerance comes from: round-off model, standard error with draws and z-score, quadrature
        error... Required and non-empty.
    kind : "equal" | "upper" | "lower" | "info"
        ``upper``: predicted is an upper bound on measured; ``lower``: a lower bound.
    quantity : str
        What is compared (e.g. ``"Hessian vs finite differences of the score"``).
    norm_axis : int or tuple, optional
        For ``equal``: compare Euclidean/Frobenius norms of ``predicted - measured`` over these axes.
    power : float, optional
        The perturbation factor this row declares it FAILS under, when it differs from its check's
        ``PERTURB`` (a Monte Carlo row in a check whose other rows are exact: e.g. ``1.1`` beside the check's
        ``1 + 1e-6``). Used by :meth:`CheckResult.reevaluate_declared` (the power audit); ``--perturb``
        still applies one factor to every row.
    """

    setting: str
    predicted: object
    measured: object
    tolerance: object
    source: str
    kind: str = "equal"
    quantity: str = ""
    norm_axis: object = None
    power: float | None = None

    def __post_init__(self):
        if not isinstance(self.setting, str) or not self.setting:
            raise TypeError("setting must be a non-empty string")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError("source (where the tolerance comes from) must be a non-empty string")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        if self.norm_axis is not None and self.kind != "equal":
            raise ValueError("norm_axis only applies to kind='equal'")
        if self.power is not None:
            if self.kind == "info":
                raise ValueError("power (a declared perturbation) only applies to judged rows, not kind='info'")
            if not (isinstance(self.power, (int, float, np.floating)) and math.isfinite(self.power)
                    and self.power > 0 and self.power != 1.0):
                raise ValueError(f"power must be a finite factor > 0 and != 1; got {self.power!r}")
        tol = np.asarray(self.tolerance, dtype=np.float64)
        if self.kind != "info" and (np.any(np.isnan(tol)) or np.any(tol < 0)):
            raise ValueError(f"tolerance must be >= 0 (setting {self.setting!r})")

    def evaluate(self, result: str = "", perturb: float = 1.0) -> Row:
        """Apply the perturbation to the prediction and judge every element."""
        if not (isinstance(perturb, (int, float, np.floating)) and math.isfinite(perturb)):
            raise TypeError(f"perturb must be a finite number; got {perturb!r}")
        p = np.asarray(self.predicted, dtype=np.float64)
        m = np.asarray(self.measured, dtype=np.float64)
        tol = np.asarray(self.tolerance, dtype=np.float64)
        if self.kind == "info":
            p, m = np.broadcast_arrays(p, m)
            return Row(result, self.quantity, self.setting, "info", _num(p.ravel()[0]) if p.size else None,
                       _num(m.ravel()[0]) if m.size else None, None, None, None, int(p.size), 0, "info",
                       self.source, 1.0)
        p = p * float(perturb)
        if self.kind == "equal":
            diff = p - m
            if self.norm_axis is not None:
                ax = self.norm_axis
                dev = np.sqrt(np.sum(diff * diff, axis=ax))
                p_show = np.sqrt(np.sum(p * p, axis=ax))
                m_show = np.sqrt(np.sum(m * m, axis=ax))
            else:
                dev, p_show, m_show = np.abs(diff), p, m
        elif self.kind == "upper":
            dev, p_show, m_show = m - p, p, m
        else:  # lower
            dev, p_show, m_show = p - m, p, m
        dev, p_show, m_show, tol = np.broadcast_arrays(dev, p_show, m_show, tol)
        if dev.size == 0:
            raise ValueError(f"comparison {self.setting!r} compares no elements")
        ok = dev <= tol  # NaN deviation fails
        margin = tol - dev
        with np.errstate(over="ignore"):  # a zero tolerance: the relative margin is +-inf by design
            rel = np.where(np.isnan(margin), -np.inf, margin / np.where(tol > 0, tol, 1e-300))
        w = np.unravel_index(int(np.argmin(rel)), rel.shape)
        n_failed = int(np.sum(~ok))
        return Row(result, self.quantity, self.setting, self.kind, _num(p_show[w]), _num(m_show[w]),
                   _num(tol[w]), _num(dev[w]), _num(margin[w]), int(dev.size), n_failed,
                   "pass" if n_failed == 0 else "fail", self.source, float(perturb))


@dataclass
class CheckResult:
    """Outcome of one check: its declared inputs, every evaluated row, and the verdict.

    verdict: "pass" (every row passes), "fail" (some row fails), "info" (a reported-only check: every
    row is kind "info", nothing judged -- module attribute ``REPORTED_ONLY = True``) or "error" (the check
    raised, or broke the protocol; ``error`` says why). elapsed_s: wall time in seconds.
    """

    name: str
    title: str
    profile: str
    seed: int
    perturb: float
    inputs: dict
    rows: list
    verdict: str
    elapsed_s: float
    error: str | None = None
    notes: list = field(default_factory=list)
    comparisons: list = field(default_factory=list, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """True for "pass" and for a reported-only check ("info"): neither fails the run."""
        return self.verdict in ("pass", "info")

    def reevaluate(self, perturb: float) -> "CheckResult":
        """The same comparisons judged with the predictions multiplied by ``perturb``.

        Identical to ``execute(mod, ctx, perturb)`` (the perturbation never reaches the check's code, and
        its randomness depends only on the seed) without rerunning the simulation.
        """
        if self.verdict == "error":
            return self
        return self._judged([c.evaluate(self.name, perturb) for c in self.comparisons], float(perturb))

    def reevaluate_declared(self, perturb: float) -> "CheckResult":
        """Every row judged under its own declared perturbation: ``Comparison.power`` where a row declares
        one, else ``perturb`` (the check's ``PERTURB``). The power audit: each judged row must fail."""
        if self.verdict == "error":
            return self
        rows = [c.evaluate(self.name, perturb if c.power is None else c.power) for c in self.comparisons]
        return self._judged(rows, float(perturb))

    def _judged(self, rows, perturb):
        verdict = _verdict(rows)
        return CheckResult(name=self.name, title=self.title, profile=self.profile, seed=self.seed,
                           perturb=perturb, inputs=self.inputs, rows=rows, verdict=verdict,
                           elapsed_s=self.elapsed_s, error=None, notes=list(self.notes),
                           comparisons=self.comparisons)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "comparisons"}
        d["rows"] = [asdict(r) if isinstance(r, Row) else r for r in self.rows]
        return d


class Context:
    """What a check may use while it runs: the profile, the root seed, Generators, and sweeps.

    profile: "quick" or "full"; seed: the run's root seed (``--seed``); cache_dir: where sweeps cache
    their tasks (None: no cache); scheduler: None (a 2-worker LocalCluster, started on first use),
    a scheduler address, a ``distributed.Client``, or "serial" (compute sweeps in this process);
    progress: show progress bars. Use as a context manager (or call ``close``) to stop the cluster.
    """

    def __init__(self, profile: str = "quick", seed: int = 0, cache_dir=None, scheduler=None,
                 progress: bool = False, n_workers: int = 2):
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}; got {profile!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TypeError(f"seed must be a non-negative integer; got {seed!r}")
        self.profile = profile
        self.seed = int(seed)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.scheduler = scheduler
        self.progress = bool(progress)
        self.n_workers = n_workers
        self._client_cm = None
        self._client = None
        self.sweeps = []  # (name, n_tasks, n_computed, n_cached) for the report

    # randomness ---------------------------------------------------------------------------
    def seed_sequence(self, *key) -> np.random.SeedSequence:
        """A SeedSequence spawned from the root seed with a spawn key derived from ``key`` (strings/ints)."""
        d = hashlib.sha256(repr(tuple(key)).encode("utf-8")).hexdigest()
        return np.random.SeedSequence(entropy=self.seed, spawn_key=tuple(int(d[i:i + 8], 16) for i in range(0, 32, 8)))

    def rng(self, *key) -> np.random.Generator:
        """A Generator for the named purpose; same seed and key, same bits."""
        return np.random.default_rng(self.seed_sequence(*key))

    # sweeps -------------------------------------------------------------------------------
    def client(self):
        """The dask client sweeps run on (None when ``scheduler == "serial"``); started on first use."""
        if self.scheduler == "serial":
            return None
        if self._client is None:
            self._client_cm = _sweep.open_client(self.scheduler, n_workers=self.n_workers)
            self._client = self._client_cm.__enter__()
        return self._client

    def sweep(self, fn, params_list, *, name: str | None = None, version: str = "1") -> _sweep.SweepResult:
        """Run a sweep with the context's seed, cache and cluster (see :func:`verification.sweep.run_sweep`)."""
        res = _sweep.run_sweep(fn, params_list, root_seed=self.seed, cache_dir=self.cache_dir,
                               client=self.client(), version=version, progress=self.progress, desc=name)
        self.sweeps.append({"name": name or fn.__name__, "tasks": len(res.keys), "computed": res.n_computed,
                            "cached": res.n_cached})
        return res

    def close(self):
        if self._client_cm is not None:
            cm, self._client_cm, self._client = self._client_cm, None, None
            cm.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _verdict(rows) -> str:
    if all(r.verdict == "info" for r in rows):
        return "info"
    return "pass" if all(r.passed for r in rows) else "fail"


def _check_module(mod):
    for attr in ("NAME", "TITLE", "inputs", "run"):
        if not hasattr(mod, attr):
            raise TypeError(f"check module {mod.__name__} lacks {attr}")


def execute(mod, ctx: Context, perturb: float = 1.0) -> CheckResult:
    """Run one check module under ``ctx``; its predictions are multiplied by ``perturb``.

    Never raises for a failing or broken check: exceptions become ``verdict="error"`` with the reason.
    """
    _check_module(mod)
    t0 = time.perf_counter()
    inputs, rows, error, notes, comps = {}, [], None, [], []
    try:
        inputs = mod.inputs(ctx.profile)
        if not isinstance(inputs, dict):
            raise TypeError(f"{mod.NAME}.inputs must return a dict; got {type(inputs).__name__}")
        missing = [k for k in REQUIRED_INPUTS if k not in inputs]
        if missing:
            raise TypeError(f"{mod.NAME}.inputs must declare {list(REQUIRED_INPUTS)}; missing {missing}")
        out = mod.run(ctx, inputs)
        comps = list(out) if out is not None else []
        for c in comps:
            if isinstance(c, str):
                notes.append(c)
            elif not isinstance(c, Comparison):
                raise TypeError(f"{mod.NAME}.run must return Comparisons (or str notes); got {type(c).__name__}")
        comps = [c for c in comps if isinstance(c, Comparison)]
        judged = any(c.kind != "info" for c in comps)
        if getattr(mod, "REPORTED_ONLY", False):
            if judged or not comps:
                raise ValueError(f"{mod.NAME} is REPORTED_ONLY: it must return only kind='info' rows (and some)")
        elif not judged:
            raise ValueError(f"{mod.NAME}.run returned no judged comparison: a check must be able to fail "
                             "(or declare REPORTED_ONLY = True)")
        rows = [c.evaluate(mod.NAME, perturb) for c in comps]
        verdict = _verdict(rows)
    except Exception as err:  # noqa: BLE001 - a broken check is reported, never hidden
        log.error("check %s raised:\n%s", getattr(mod, "NAME", mod), traceback.format_exc())
        error = f"{type(err).__name__}: {err}"
        verdict = "error"
    return CheckResult(name=mod.NAME, title=mod.TITLE, profile=ctx.profile, seed=ctx.seed, perturb=float(perturb),
                       inputs=json_safe(inputs), rows=rows, verdict=verdict,
                       elapsed_s=time.perf_counter() - t0, error=error, notes=notes,
                       comparisons=comps if error is None else [])
