"""Parameter sweeps on dask.distributed with a per-task disk cache (resume by construction).

A sweep is a list of tasks ``fn(params, rng) -> dict[str, array]``. ``fn`` is a module-level function
(importable by the workers); ``params`` a dict of JSON-like values and numpy arrays. Each task has

* a **key**: SHA-256 of (fn's import path, canonical params, root seed, version). Arrays enter the key by
  dtype, shape and the SHA-256 of their bytes, floats by their exact repr; dict order does not matter.
* a **seed**: ``SeedSequence(entropy=root_seed, spawn_key=digest(fn, params))`` -- a spawned child
  sequence whose spawn key is the task's own digest, so a task's random stream depends on what it is, not
  on its position in the list or on which worker runs it. Serial and distributed runs are bit-identical.
* a **cache file** ``<cache_dir>/<fn>/<key>.npz``, written atomically by the client as each result
  arrives, with a SHA-256 of its arrays and the task key inside. A rerun loads what exists and computes
  only what is missing; a file that is unreadable, altered (its arrays no longer match the checksum),
  filed under another key or empty is discarded with a warning and recomputed. Temporary
  files left by a killed run are removed.

``run_sweep(..., client=None)`` computes serially in-process; with a ``distributed.Client`` the missing
tasks are mapped onto the cluster. :func:`open_client` gives a 2-worker ``LocalCluster`` by default, or
connects to a running scheduler given its address. Bump ``version`` when a task's code changes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rftheory._dask import check_scheduler, open_client  # noqa: F401 (shared with rf; re-exported)
from rftheory._io import remove_stale_temps

from ._io import load_npz, save_npz_atomic

__all__ = ["run_sweep", "SweepResult", "task_key", "task_seed", "canonical", "open_client", "check_scheduler"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- keys and seeds
def canonical(obj, name: str = "params"):
    """A JSON-serialisable canonical form of ``obj`` (for hashing); TypeError names the offending entry."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{name} keys must be strings; got {k!r}")
            out[k] = canonical(v, f"{name}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [canonical(v, f"{name}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"{name} is an object array; use numeric arrays")
        arr = np.ascontiguousarray(obj)
        return {"__ndarray__": [arr.dtype.str, list(arr.shape), hashlib.sha256(arr.tobytes()).hexdigest()]}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"{name} has unsupported type {type(obj).__name__} (use numbers, strings, lists, "
                    "dicts or numpy arrays)")


def _fn_path(fn) -> str:
    if not callable(fn):
        raise TypeError(f"fn must be a callable; got {type(fn).__name__}")
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or "<" in qual or mod == "__main__":
        raise TypeError(f"fn must be a module-level function importable by workers; got {fn!r}")
    return f"{mod}:{qual}"


def _digest(payload) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_root(root_seed) -> int:
    if isinstance(root_seed, bool) or not isinstance(root_seed, (int, np.integer)) or root_seed < 0:
        raise TypeError(f"root_seed must be a non-negative integer; got {root_seed!r}")
    return int(root_seed)


def task_key(fn, params: dict, root_seed: int, version: str = "1") -> str:
    """Hex SHA-256 naming the task's cache file."""
    return _digest({"fn": _fn_path(fn), "params": canonical(params), "root": _check_root(root_seed),
                    "version": str(version)})


def task_seed(fn, params: dict, root_seed: int) -> np.random.SeedSequence:
    """The task's SeedSequence: child of ``root_seed`` with a spawn key taken from the task's digest."""
    d = _digest({"fn": _fn_path(fn), "params": canonical(params)})
    spawn_key = tuple(int(d[i:i + 8], 16) for i in range(0, 32, 8))
    return np.random.SeedSequence(entropy=_check_root(root_seed), spawn_key=spawn_key)


def _normalise(result, fn_path: str) -> dict:
    if not isinstance(result, dict) or not result:
        raise TypeError(f"sweep task {fn_path} must return a non-empty dict of arrays; got {type(result).__name__}")
    out = {}
    for k, v in result.items():
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("__"):
            raise TypeError(f"sweep task {fn_path}: result keys must be identifiers not starting with '__' "
                            f"(reserved for the cache's checksum and key); got {k!r}")
        arr = np.asarray(v)
        if arr.dtype.hasobject:
            raise TypeError(f"sweep task {fn_path}: result {k!r} is not numeric")
        out[k] = arr
    return out


_KEY = "__key__"


def _load_cached(f: Path, key: str) -> dict:
    """A cached result, checked: checksum (load_npz), the key it was stored under, a non-empty result."""
    arrays = load_npz(f)
    stored = arrays.pop(_KEY, None)
    if stored is None or str(stored) != key:
        raise ValueError(f"filed under key {key[:12]}... but records {str(stored)[:12]}...")
    if not arrays:
        raise ValueError("holds no result arrays")
    return arrays


def _run_task(fn, params, seed_seq):
    """Executed on a worker (or in-process): one task with its own Generator."""
    return _normalise(fn(params, np.random.default_rng(seed_seq)), _fn_path(fn))


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    """Results in the order of the input params.

    results: one dict of arrays per task; keys: their cache keys; n_computed: tasks computed by this call;
    n_cached: tasks loaded from disk; cache_dir: where they live.
    """

    results: list
    keys: list
    n_computed: int
    n_cached: int
    cache_dir: Path | None = None
    computed_keys: list = field(default_factory=list)


def run_sweep(fn, params_list, *, root_seed: int, cache_dir=None, client=None, version: str = "1",
              progress: bool = False, desc: str | None = None) -> SweepResult:
    """Run ``fn(params, rng)`` for every params dict, reusing cached results.

    Parameters
    ----------
    fn : module-level function ``(params: dict, rng: numpy.random.Generator) -> dict[str, array]``.
    params_list : sequence of dicts (JSON-like values and numpy arrays).
    root_seed : int, the sweep's root entropy (per-task seeds are spawned from it, see module doc).
    cache_dir : directory for the per-task ``.npz`` files; None disables caching.
    client : ``distributed.Client`` to compute missing tasks on, or None to compute serially.
    version : part of every key; bump it when ``fn``'s code changes.
    progress : show a tqdm bar over the tasks being computed.
    """
    fn_path = _fn_path(fn)
    params_list = list(params_list)
    for i, p in enumerate(params_list):
        if not isinstance(p, dict):
            raise TypeError(f"params_list[{i}] must be a dict; got {type(p).__name__}")
    keys = [task_key(fn, p, root_seed, version) for p in params_list]
    cdir = None
    if cache_dir is not None:
        cdir = Path(cache_dir) / fn_path.replace(":", ".").replace("<", "_").replace(">", "_")
        cdir.mkdir(parents=True, exist_ok=True)

    done: dict = {}
    if cdir is not None:
        remove_stale_temps(cdir, ".*.npz.*")
        for k in dict.fromkeys(keys):
            f = cdir / f"{k}.npz"
            if f.exists():
                try:
                    done[k] = _load_cached(f, k)
                except Exception as err:  # noqa: BLE001 - a damaged file is recomputed, not trusted
                    log.warning("sweep cache file %s discarded (%s); recomputing", f, err)
    n_cached = len(done)
    todo = {}
    for k, p in zip(keys, params_list):
        if k not in done and k not in todo:
            todo[k] = p
    log.info("sweep %s: %d tasks, %d cached, %d to compute on %s", fn_path, len(dict.fromkeys(keys)),
             n_cached, len(todo), "dask" if client is not None else "this process")

    def _store(k, res):
        if cdir is not None:
            save_npz_atomic(cdir / f"{k}.npz", {**res, _KEY: np.array(k)})
        done[k] = res

    bar = tqdm(total=len(todo), desc=desc or fn_path.split(":")[-1], disable=not progress or not todo,
               leave=False)
    computed = []
    try:
        if client is None:
            for k, p in todo.items():
                try:
                    res = _run_task(fn, p, task_seed(fn, p, root_seed))
                except Exception as err:
                    raise RuntimeError(f"sweep task of {fn_path} failed: params {canonical(p)!r}: "
                                       f"{type(err).__name__}: {err}") from err
                _store(k, res)
                computed.append(k)
                bar.update()
        elif todo:
            from distributed import as_completed

            ks = list(todo)
            futures = client.map(_run_task, [fn] * len(ks), [todo[k] for k in ks],
                                 [task_seed(fn, todo[k], root_seed) for k in ks],
                                 key=[f"sweep-{k}" for k in ks], pure=False)
            by_key = {f.key: k for f, k in zip(futures, ks)}
            errors = []
            for fut, res in as_completed(futures, with_results=True, raise_errors=False):
                k = by_key[fut.key]
                if fut.status == "error":
                    errors.append((k, fut.exception()))
                    continue
                _store(k, res)
                computed.append(k)
                bar.update()
            if errors:
                k, err = errors[0]
                raise RuntimeError(f"{len(errors)} sweep task(s) of {fn_path} failed; first: params "
                                   f"{canonical(todo[k])!r}: {type(err).__name__}: {err}") from err
    finally:
        bar.close()
    return SweepResult(results=[done[k] for k in keys], keys=keys, n_computed=len(computed),
                       n_cached=n_cached, cache_dir=cdir, computed_keys=computed)

