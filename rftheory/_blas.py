"""One-BLAS-thread context for small batched linear algebra (threadpoolctl)."""
from __future__ import annotations

import threading

__all__ = ["blas_single", "query_threads", "set_query_threads", "run_blocks"]

_BLAS_CONTROLLER = []
_LOCK = threading.Lock()
# entries currently inside the one-thread context (all threads together) and the thread counts to restore
_STATE = {"depth": 0, "saved": None}


def _blas_libs():
    """The BLAS library controllers of threadpoolctl, found once; [] without threadpoolctl."""
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            libs = [lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"]
        except Exception:  # noqa: BLE001 - optional: any failure means "leave threads alone"
            libs = []
        _BLAS_CONTROLLER.append(libs)
    return _BLAS_CONTROLLER[0]


class _BlasSingle:
    """Re-entrant: only the outermost entry (over all Python threads) sets one thread and the last exit
    restores the previous counts, so an operation that enters it once per call pays for it once, and the
    nested entries of its inner steps cost a lock and a counter (no threadpoolctl ``info()`` scan)."""

    __slots__ = ()

    def __enter__(self):
        libs = _blas_libs()
        if not libs:
            return self
        with _LOCK:
            if _STATE["depth"] == 0:
                saved = [lc.get_num_threads() for lc in libs]
                for lc, k in zip(libs, saved):
                    if k != 1:
                        lc.set_num_threads(1)
                _STATE["saved"] = saved
            _STATE["depth"] += 1
        return self

    def __exit__(self, *exc):
        libs = _blas_libs()
        if not libs:
            return False
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                for lc, k in zip(libs, _STATE["saved"]):
                    if k != 1:
                        lc.set_num_threads(k)
                _STATE["saved"] = None
        return False


_SINGLE = _BlasSingle()


def blas_single():
    """Context that runs BLAS/LAPACK on one thread (threadpoolctl, a scikit-learn dependency; a no-op without it).

    Used for batched eigh/solve of small matrices and for products with few output columns: there threads
    only add synchronisation, and on a shared machine OpenBLAS's waiting threads made them 4-130x slower
    (measured: 256 eigh of 32x32, 8 s on two threads against 0.06 s on one). It sets a process-wide limit
    for the duration of the call. Entries nest: only the outermost one changes the thread count (issue 17:
    64,714 entries of the old threadpoolctl ``limit`` cost 1.9 s of a quick figure run)."""
    return _SINGLE


# ----------------------------------------------------------------------------- query-parallel threads
_POOL = {"size": None, "pool": None}
_POOL_LOCK = threading.Lock()


def usable_cpus(cap: int = 8) -> int:
    """The CPUs this process may run on (its affinity set where the OS has one), between 1 and ``cap``."""
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(int(n), int(cap)))


def _default_threads() -> int:
    import os

    env = os.environ.get("RFTHEORY_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"RFTHEORY_THREADS must be a positive integer; got {env!r}") from None
    return usable_cpus()


def query_threads() -> int:
    """Python threads that the library runs over fixed blocks of queries (numpy releases the GIL in its
    loops and BLAS calls): ``RFTHEORY_THREADS`` or the CPUs this process may use (at most 8); see
    :func:`set_query_threads`."""
    if _POOL["size"] is None:
        _POOL["size"] = _default_threads()
    return _POOL["size"]


def set_query_threads(n: int):
    """Set the number of query-parallel threads; returns the previous value. The blocks of queries are fixed
    by a memory budget, never by the thread count, and each block's arithmetic is the same whichever thread
    runs it, so results are bit-identical for any ``n`` (tests/test_threads.py)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (query threads) must be a positive integer; got {n!r}")
    with _POOL_LOCK:
        old = query_threads()
        if n != old and _POOL["pool"] is not None:
            _POOL["pool"].shutdown(wait=True)
            _POOL["pool"] = None
        _POOL["size"] = n
    return old


def run_blocks(fn, blocks) -> None:
    """Call ``fn(block)`` for every block, on the query-thread pool when it has more than one thread and
    there is more than one block (in order otherwise). ``fn`` writes its own disjoint slice of the outputs."""
    blocks = list(blocks)
    n = min(query_threads(), len(blocks))
    if n <= 1 or threading.current_thread().name.startswith("rftheory-q"):
        for b in blocks:
            fn(b)
        return
    import os

    with _POOL_LOCK:
        if _POOL["pool"] is None or _POOL.get("pid") != os.getpid():   # none yet, or inherited by a fork
            from concurrent.futures import ThreadPoolExecutor

            _POOL["pool"] = ThreadPoolExecutor(max_workers=query_threads(), thread_name_prefix="rftheory-q")
            _POOL["pid"] = os.getpid()
        pool = _POOL["pool"]
    for f in [pool.submit(fn, b) for b in blocks]:
        f.result()
