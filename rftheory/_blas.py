"""One-BLAS-thread context for small batched linear algebra (threadpoolctl)."""
from __future__ import annotations

import contextlib

__all__ = ["blas_single"]

_BLAS_CONTROLLER = []


def blas_single():
    """Context that runs BLAS/LAPACK on one thread (threadpoolctl, a scikit-learn dependency; a no-op without it).

    Used for batched eigh/solve of small matrices and for products with few output columns: there threads
    only add synchronisation, and on a shared machine OpenBLAS's waiting threads made them 4-130x slower
    (measured: 256 eigh of 32x32, 8 s on two threads against 0.06 s on one). It sets a process-wide limit
    for the duration of the call."""
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - optional: any failure means "leave threads alone"
            _BLAS_CONTROLLER.append(None)
    ctl = _BLAS_CONTROLLER[0]
    if ctl is None:
        return contextlib.nullcontext()
    return ctl.limit(limits=1, user_api="blas")
