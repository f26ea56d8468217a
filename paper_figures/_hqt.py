"""Shared pieces of the [HQT] figures: sizes, RF training (cached per process), sampling and ridge drawing."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from rftheory import EmpiricalDensity, ridge
from rftheory.rf.model import RandomFeatureModel, gradient_flow
from rftheory.dynamics.sampling import sample
from rftheory.density.schedules import OU, geometric_grid

from ._common import RIDGE, SAMPLES, TRAIN

log = logging.getLogger(__name__)

#: [HQT] uses p in 500..10000, K = 128 (64), T = 40 or 10, 2000 samples, 2000-4000 EM steps, t_min 1e-3;
#: "full" is that (p = 1000, K = 128, T = 40), "quick" a reduced model for a run of minutes. n_gl: Gauss-Legendre
#: nodes per panel of the moments' time rule; 6 at full size halves the cost of 12 (the relative change of U
#: from 6 to 24 nodes was 6e-5 at p = 60, K = 128, T = 40; each run's quadrature report is logged).
SIZES = {
    "quick": {"p": 160, "K": 4, "T": 4.0, "t0": 1e-3, "samples": 300, "steps": 300, "t_min": 1e-2,
              "weight": "1/h", "tau": np.inf, "n_gl": 12},
    "full": {"p": 1000, "K": 128, "T": 40.0, "t0": 1e-3, "samples": 2000, "steps": 2000, "t_min": 1e-3,
             "weight": "1/h", "tau": np.inf, "n_gl": 6},
}

#: where exact RF moments are cached on disk (None: only in memory); set by ``rftheory figures --cache``
_CACHE = {"dir": None, "progress": False, "scheduler": None}


def set_scheduler(scheduler=None) -> None:
    """Assemble exact RF moments on a dask cluster (``rftheory figures --scheduler``): None (in-process),
    "local" or a scheduler address; the moments are bit-identical either way (rf/_exact.py)."""
    _CACHE["scheduler"] = scheduler


def set_cache(cache_dir=None, progress: bool = False) -> None:
    """Cache exact RF moments -- and each figure's computed arrays (paper_figures/_stage.py) -- under
    ``cache_dir`` (None: in memory only, nothing stored) and show a progress bar while assembling the moments
    (a paper-size assembly takes minutes)."""
    _CACHE["dir"] = None if cache_dir is None else str(cache_dir)
    _CACHE["progress"] = bool(progress)


def sizes(quick: bool) -> dict:
    return dict(SIZES["quick" if quick else "full"])


#: the loss weights of the two-mode figure (hqt3); the phase figure (hqt2) trains on the same two modes and asks
#: for its moments with all of them, so that the two figures share one assembly (weights added to an assembly
#: cost one p x p sum per node; a second assembly costs a whole pass over the time nodes)
TWO_MODE_WEIGHTS = ("1", "1/h", "1/h2")

_MEMO: dict = {}
#: (one point's model key, weight) -> that point's Moments (``moments`` averages them)
_POINT_MEMO: dict = {}
_FLOWS: dict = {}
#: exact assemblies run in this process, per one-point model key (a point assembled twice for a weight is wasted
#: work: tested)
ASSEMBLIES: dict = {}
_SAMPLES: dict = {}


def _model_key(data, s: dict, seed: int):
    return (np.asarray(data, dtype=np.float64).tobytes(), np.shape(data), s["p"], s["K"], s["T"], s["t0"],
            s.get("n_gl", 12), seed)


def average_moments(parts):
    """The Moments of a data set from its points' (``parts``, one per training point, in order): U, V and c0 are
    averages over the points (R1), summed in order. The quadrature report, where every part has one on the same
    units, bounds the set's relative differences by the triangle inequality, ``sum_i r_i |U_i| / |sum_i U_i|``
    (Frobenius norms on the report's units), which is at least the set's own report's value."""
    n = len(parts)
    U, V = parts[0].U.copy(), parts[0].V.copy()
    c0 = parts[0].c0
    for m in parts[1:]:
        U += m.U
        V += m.V
        c0 += m.c0
    U /= n
    V /= n
    reps = [m.report for m in parts]
    report = None
    if all(r is not None for r in reps) and all(np.array_equal(r.units, reps[0].units) for r in reps):
        u = reps[0].units
        uu = np.ix_(u, u)

        def bound(mats, rel):
            num = sum(r * np.linalg.norm(M) for r, M in zip(rel, mats))
            den = np.linalg.norm(sum(mats))
            return float(num / den) if den > 0 else float("inf")

        report = dataclasses.replace(reps[0],
                                     rel_diff_U=bound([m.U[uu] for m in parts], [r.rel_diff_U for r in reps]),
                                     rel_diff_V=bound([m.V[:, u] for m in parts], [r.rel_diff_V for r in reps]))
    return dataclasses.replace(parts[0], U=U, V=V, c0=c0 / n, report=report)


def moments(data, s: dict, seed: int, weights):
    """(model, [Moments per weight]) of the RF model for ``data`` at sizes ``s``. U, V and c0 are averages over
    the training points (R1) and the figures' data sets share points (the structured configurations, the 13-point
    set and the two modes), so each distinct point's moments are assembled once per weight for all figures -- from
    this process's memo, else the disk cache, else one exact assembly of that point for the weights asked for and
    not yet there -- and averaged (:func:`average_moments`; equal to one assembly of the set at round-off, 1e-15
    of max |U|). A weight's bits do not depend on the weights assembled beside it (rf/_exact.py), so neither do
    the figures' numbers on which figure asked for a point first."""
    data = np.asarray(data, dtype=np.float64)
    mk = _model_key(data, s, seed)
    todo = [w for w in dict.fromkeys(weights) if (mk, w) not in _MEMO]
    model = RandomFeatureModel(data.shape[1], s["p"], s["K"], s["T"], rng=np.random.default_rng(seed))
    if todo:
        keys = [_model_key(x[None], s, seed) for x in data]
        for i, pk in enumerate(keys):
            need = [w for w in todo if (pk, w) not in _POINT_MEMO]
            if not need:
                continue
            got = model.moments(data[i:i + 1], OU(), t0=s["t0"], weight=tuple(need), n_gl=s.get("n_gl", 12),
                                cache_dir=_CACHE["dir"], progress=_CACHE["progress"], scheduler=_CACHE["scheduler"])
            _POINT_MEMO.update({(pk, w): m for w, m in zip(need, got)})
            ASSEMBLIES[pk] = ASSEMBLIES.get(pk, 0) + 1
        for w in todo:
            _MEMO[(mk, w)] = average_moments([_POINT_MEMO[(pk, w)] for pk in keys])
    return model, [_MEMO[(mk, w)] for w in weights]


def train_rf(data, s: dict, seed: int, weight=None, tau=None, init: str = "zero"):
    """(score field at training time tau, model, moments, flow) for an RF model trained on ``data`` in closed
    form (exact Gaussian moments, gradient flow); ``init`` "zero" (W(0) = 0) or "random" (W(0) = A/sqrt(p),
    A ~ N(0, 1), as in [HQT]: its part in U's null space stays frozen). Moments via :func:`moments`."""
    w = s["weight"] if weight is None else weight
    if init not in ("zero", "random"):
        raise ValueError(f"init must be 'zero' or 'random'; got {init!r}")
    model, (mom,) = moments(data, s, seed, (w,))
    fk = (_model_key(data, s, seed), w, init)
    flow = _FLOWS.get(fk)
    if flow is None:                  # one eigendecomposition of U per (model, weight, init), not one per tau
        D = model.D
        if init == "zero":
            W0 = np.zeros((D, s["p"]))
        else:
            W0 = np.random.default_rng([seed, 7]).standard_normal((D, s["p"])) / np.sqrt(s["p"])
        flow = _FLOWS[fk] = gradient_flow(mom.U, mom.V, W0)
    W = flow.predict(s["tau"] if tau is None else tau)
    return model.score_field(W, OU()), model, mom, flow


def reverse_samples(field, dens, s: dict, seed: int, record=None, method="em"):
    """Reverse-time samples of ``field`` from exact draws of p_T (Euler-Maruyama by default)."""
    key = _samples_key(field, dens, s, seed, method)
    got = _SAMPLES.get(key)
    if got is not None and (record is None or got[0] == _record_spec(record)):
        return got[1]                     # the same run (same field, starts, noise); ``final`` is all a None asks
    rng = np.random.default_rng(seed)
    x0 = dens.sample(s["T"], s["samples"], rng)
    grid = geometric_grid(s["T"], s["t_min"], s["steps"])
    tr = sample(field, x0, grid, method, rng=rng, record=record)
    _SAMPLES[key] = (_record_spec(record), tr)
    return tr


def _record_spec(record):
    return None if record is None else tuple(np.atleast_1d(np.asarray(record, dtype=np.float64)).tolist())


def _samples_key(field, dens, s: dict, seed: int, method: str):
    """What a reverse run depends on: the field's model and weights, the data and schedule, sizes, seed."""
    import hashlib

    h = hashlib.sha256()
    for a in (field.W, field.model.W_x, field.model.W_t, field.model.b, dens.data):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update(repr((type(field).__name__, field.model.act.name, field.parametrization, repr(field.schedule),
                   repr(dens.schedule), s["T"], s["t_min"], s["steps"], s["samples"], seed, method)).encode())
    return h.hexdigest()


#: a sample "escaped" when it is farther than ESCAPE * (R + 3) from the centre of the a_t x_i (R their radius;
#: 3 = the reach of p_T ~ N(0, I) under OU)
ESCAPE = 5.0


def escaped(x, data, a: float) -> np.ndarray:
    """(m,) mask of samples that left the data's region. An RF field extrapolates linearly far from its
    training mass; where that expands (output slope > 1/2 under OU), a tail sample of p_T is carried away
    exponentially over a long horizon (seen at the papers' sizes, T = 40: 4 of 2000 samples on the square
    reached |x| ~ 1e2..1e8). Figures draw and measure the others and report how many escaped."""
    ax = a * np.asarray(data, dtype=np.float64)
    c = ax.mean(axis=0)
    R = float(np.max(np.linalg.norm(ax - c, axis=1)))
    with np.errstate(invalid="ignore"):
        far = np.linalg.norm(x - c, axis=1) > ESCAPE * (R + 3.0)
    return far | ~np.all(np.isfinite(x), axis=1)


def draw_ridge(ax, dens: EmpiricalDensity, t: float, label=True):
    """Trace the d = 1 ridge of p_t and draw it (green); return the pieces."""
    pcs = ridge.trace(dens, t, 1)
    draw_pieces(ax, pieces_arrays(pcs), label)
    return pcs


def pieces_arrays(pcs) -> dict:
    """Traced ridge pieces as arrays (for the figure cache, paper_figures/_stage.py): ``{"p0": points, ...,
    "closed": (k,) bool}``."""
    out = {f"p{k}": np.asarray(pc.points, dtype=np.float64) for k, pc in enumerate(pcs)}
    out["closed"] = np.array([bool(pc.closed) for pc in pcs], dtype=bool)
    return out


def draw_pieces(ax, pieces: dict, label=True) -> None:
    """Draw ridge pieces given as :func:`pieces_arrays` (green)."""
    for k, closed in enumerate(np.atleast_1d(pieces["closed"])):
        pts = pieces[f"p{k}"]
        pts = np.vstack([pts, pts[:1]]) if closed else pts
        ax.plot(pts[:, 0], pts[:, 1], "-", color=RIDGE, lw=1.5, label="ridge of $p_t$" if (label and k == 0) else None)


def run_parallel(fn, n: int) -> list:
    """``[fn(0), ..., fn(n - 1)]``, the calls spread over the query-thread pool (rftheory._blas) with BLAS on one
    thread meanwhile. For a figure's independent parts (each call's arithmetic is that of a serial one, so the
    results do not depend on the thread count)."""
    from rftheory._blas import blas_single, run_blocks

    out = [None] * n

    def one(k):
        out[k] = fn(k)

    with blas_single():
        run_blocks(one, range(n))
    return out


def draw_training(ax, data, a: float, label=True):
    ax.plot(a * data[:, 0], a * data[:, 1], "o", color=TRAIN, ms=4, label="$a_t x_i$" if label else None, zorder=5)


def draw_samples(ax, x, label=True, **kw):
    kw = {"s": 4, "alpha": 0.5, "color": SAMPLES, **kw}
    ax.scatter(x[:, 0], x[:, 1], label="samples" if label else None, **kw)
