"""One-BLAS-thread context for small batched linear algebra (threadpoolctl)."""
from __future__ import annotations

import threading

__all__ = ["blas_single"]

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
