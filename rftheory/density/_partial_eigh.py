"""The top k eigenpairs of a stack of symmetric matrices (issue 17): LAPACK ``dsyevr`` with a range by index, one
matrix at a time, for the ridge residual, which needs only the tangent vectors and ``lambda_d``, ``lambda_{d+1}``
(``rftheory.geometry.ridge.residual``). A 32 x 32 covariance costs about half a full ``np.linalg.eigh`` (the
tridiagonal reduction stays; the QR sweeps and the back-transformation of all D vectors go).

``dsyevr`` is reached through the function pointer that ``scipy.linalg.cython_lapack`` exports (scipy's own
LAPACK; a public Cython interface) and called by :mod:`ctypes`, which releases the GIL for the duration of each
call, so a query thread decomposing its block does not stop the other query threads' Python steps (scipy's
``scipy.linalg.lapack.dsyevr`` wrapper holds the GIL for the whole call; the other thread then waits for the
GIL at its next numpy call, up to the 5 ms switch interval).
Where the pointer cannot be had, the scipy wrapper is used (same routine and arguments: the same bits, on one
thread at a time).

Each matrix is decomposed alone, so the bits do not depend on how a stack is cut into blocks or on the thread
count (with one BLAS thread: the callers hold ``rftheory._blas.blas_single``). Only the lower triangle of each
C-ordered matrix is read (numpy's ``eigh`` default). Errors, as LAPACK's (normwise backward stable): eigenvalues
within a small multiple of ``eps |C|`` of the full decomposition's, eigenvectors orthonormal with
``|C v - mu v| <= O(eps |C|)`` (tests/test_partial_eigh.py). Input must be finite (the moments pass refuses a
non-finite covariance by name; here a non-finite matrix gives NaN, never a LAPACK call). Private.
"""
from __future__ import annotations

import ctypes

import numpy as np

_STATE = {"fn": None}


def _dsyevr():
    """ctypes function for scipy's ``dsyevr`` (GIL released during the call), or False where unavailable."""
    if _STATE["fn"] is None:
        try:
            from scipy.linalg import cython_lapack

            cap = cython_lapack.__pyx_capi__["dsyevr"]
            api = ctypes.pythonapi
            api.PyCapsule_GetName.restype = ctypes.c_char_p
            api.PyCapsule_GetName.argtypes = [ctypes.py_object]
            api.PyCapsule_GetPointer.restype = ctypes.c_void_p
            api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
            ptr = api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap))
            # the capsule's signature: 3 char*, then int* (32-bit: scipy's LP64 interface) and double* pointers
            sig = str(cap)
            if not ptr or sig.count("int *") != 11 or sig.count("char *") != 3:
                raise ValueError("unexpected dsyevr signature")
            _STATE["fn"] = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 21))(ptr)
        except Exception:  # noqa: BLE001 - any failure: the scipy wrapper below (same routine, GIL held)
            _STATE["fn"] = False
    return _STATE["fn"]


def top_eigh(C, k: int):
    """The k largest eigenpairs of each symmetric matrix of the stack ``C`` (m, D, D), 1 <= k <= D.

    Returns ``(w, v)``: ``w`` (m, k) eigenvalues ascending (the last k of ``np.linalg.eigh``'s order) and ``v``
    (m, D, k) the eigenvectors as columns, same order. Non-finite matrices give NaN rows."""
    C = np.asarray(C, dtype=np.float64)
    m, D = C.shape[0], C.shape[-1]
    if not (C.ndim == 3 and C.shape[1] == D and 1 <= k <= D):
        raise ValueError(f"C must be a stack (m, D, D) and 1 <= k <= D; got shape {C.shape}, k = {k}")
    w = np.full((m, k), np.nan)
    z = np.full((m, k, D), np.nan)         # eigenvectors as rows (LAPACK's column-major Z, ldz = D)
    ok = np.all(np.isfinite(C.reshape(m, -1)), axis=1)
    idx = np.flatnonzero(ok)
    if not idx.size:
        return w, z.transpose(0, 2, 1)
    A = np.ascontiguousarray(C[idx])       # overwritten by LAPACK; C-ordered A^T = A (lower triangle read: 'U')
    wk = np.empty((idx.size, D))
    zk = np.empty((idx.size, k, D))
    fn = _dsyevr()
    if fn:
        info = _run_ctypes(fn, A, wk, zk, k)
    else:
        info = _run_scipy(A, wk, zk, k)
    bad = np.flatnonzero(info != 0)
    if bad.size:   # LAPACK's rare failure to converge: the full decomposition for those matrices
        wf, vf = np.linalg.eigh(C[idx[bad]])
        wk[bad, :k] = wf[:, D - k:]
        zk[bad] = vf[:, :, D - k:].transpose(0, 2, 1)
    w[idx] = wk[:, :k]
    z[idx] = zk
    return w, z.transpose(0, 2, 1)


def _run_ctypes(fn, A, wk, zk, k):
    n, D = A.shape[0], A.shape[-1]
    lwork, liwork = 26 * D, 10 * D
    work = np.empty(lwork)
    iwork = np.empty(liwork, dtype=np.intc)
    isuppz = np.empty(2 * k, dtype=np.intc)
    ci = ctypes.c_int
    nn, il, iu, mout, lw, liw, info = ci(D), ci(D - k + 1), ci(D), ci(0), ci(lwork), ci(liwork), ci(0)
    vl, vu, abstol = ctypes.c_double(0.0), ctypes.c_double(0.0), ctypes.c_double(0.0)
    jobz, rng, uplo = ctypes.c_char_p(b"V"), ctypes.c_char_p(b"I"), ctypes.c_char_p(b"U")
    r = [ctypes.byref(v) for v in (nn, vl, vu, il, iu, abstol, mout, lw, liw, info)]
    a0, w0, z0 = A.ctypes.data, wk.ctypes.data, zk.ctypes.data
    s0, wp, ip = isuppz.ctypes.data, work.ctypes.data, iwork.ctypes.data
    out = np.zeros(n, dtype=np.intc)
    da, dz = D * D * 8, k * D * 8
    for i in range(n):
        fn(jobz, rng, uplo, r[0], a0 + i * da, r[0], r[1], r[2], r[3], r[4], r[5], r[6], w0 + i * D * 8,
           z0 + i * dz, r[0], s0, wp, r[7], ip, r[8], r[9])
        if info.value != 0 or mout.value != k:
            out[i] = info.value or -1
    return out


def _run_scipy(A, wk, zk, k):
    from scipy.linalg import lapack

    n, D = A.shape[0], A.shape[-1]
    out = np.zeros(n, dtype=np.intc)
    for i in range(n):
        # Fortran sees A[i]^T = A[i]: its upper triangle is the C-ordered lower one
        ww, zz, mm, _, info = lapack.dsyevr(A[i].T, compute_v=1, range="I", il=D - k + 1, iu=D, lower=0)
        if info != 0 or mm != k:
            out[i] = info or -1
            continue
        wk[i, :k] = ww[:k]
        zk[i] = zz[:, :k].T
    return out
