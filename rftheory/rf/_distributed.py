"""The exact moment assembly's blocks as tasks on a ``dask.distributed`` cluster (rf/_exact.py).

``scheduler``: an address string (``tcp://HOST:PORT``; an unreachable one fails at once with a
ConnectionError naming it), a ``distributed.Client`` (used as is), or ``"local"``: a ``LocalCluster`` of
worker *processes* (one per available CPU, one thread each), closed afterwards. The spec (weights, data,
time rule) is scattered once to every worker; each worker builds the hoisted pair kernel once and computes
whole blocks; the partials are gathered and added in block order, so U, V, c0 are bit-identical to the
serial assembly whatever the number of workers.
"""
from __future__ import annotations

from .._blas import usable_cpus
from .._dask import open_client
from . import _exact


def local_workers() -> int:
    """Worker processes of ``scheduler="local"``: the CPUs available to this process (at most 8)."""
    return usable_cpus()


def run_blocks(spec: _exact.ExactSpec, scheduler, threads: int = 1, progress: bool = False):
    """Yield the partials of every block of ``spec``, in block order, computed on ``scheduler``'s workers.

    Parameters
    ----------
    spec : ExactSpec
    scheduler : str or distributed.Client
        ``"local"``, an address, or a Client.
    threads : int, default 1
        Threads per task inside the pair kernel (the result does not depend on it).
    progress : bool, default False

    Yields
    ------
    tuple
        ``(U_diag, U_off, V, c0)`` of each block, in block order (each task is released once read).
    """
    blocks = spec.blocks()
    if scheduler == "local":
        cm = open_client(None, n_workers=local_workers(), processes=True, threads_per_worker=1)
    else:
        cm = open_client(scheduler)
    with cm as client:
        [fut_spec] = client.scatter([spec], broadcast=True, hash=False)
        futs = [client.submit(_exact.task, fut_spec, lo, hi, threads, pure=False) for lo, hi in blocks]
        it = range(len(futs))
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="U, V (dask)", leave=False)
        for k in it:
            yield futs[k].result()
            futs[k].release()
        client.cancel([fut_spec])
