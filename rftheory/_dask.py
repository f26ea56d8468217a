"""Dask clients shared by the moment assembly (rf/_distributed.py) and the verification sweeps.

:func:`check_scheduler` fails fast, in one line, when a scheduler address does not answer;
:func:`open_client` yields a ``distributed.Client`` for None (a new ``LocalCluster`` of worker processes),
an address string, or a Client (used as is). dask is imported only when a client is opened.
"""
from __future__ import annotations

import contextlib

__all__ = ["check_scheduler", "open_client"]


def check_scheduler(address: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when a TCP scheduler address does not answer: ConnectionError naming it
    (dask's own connect retries for 30 s and ends in a traceback). Other protocols are left to dask."""
    import socket
    from urllib.parse import urlsplit

    if not isinstance(address, str) or not address:
        raise TypeError(f"scheduler must be an address string; got {address!r}")
    url = urlsplit(address if "://" in address else f"tcp://{address}")
    if url.scheme != "tcp":
        return
    try:
        host, port = url.hostname, url.port
    except ValueError as err:
        raise ValueError(f"scheduler address {address!r} is malformed ({err})") from None
    if not host or port is None:
        raise ValueError(f"scheduler address {address!r} needs a host and a port (tcp://HOST:PORT)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"no dask scheduler answers at {address} ({err.strerror or err}); start one "
                              "(dask scheduler) or use --scheduler serial") from None


@contextlib.contextmanager
def open_client(scheduler=None, n_workers: int = 2, processes: bool = True, threads_per_worker: int = 1):
    """Yield a ``distributed.Client``; close whatever this call created.

    scheduler: None -> a new ``LocalCluster`` (``n_workers`` workers, processes or threads);
    a string -> connect to the running scheduler at that address; a Client -> used as is (not closed).
    """
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is None:
        if isinstance(n_workers, bool) or int(n_workers) != n_workers or n_workers < 1:
            raise ValueError(f"n_workers must be a positive integer; got {n_workers!r}")
        cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=int(threads_per_worker),
                               processes=bool(processes), dashboard_address=":0")
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if not isinstance(scheduler, str) or not scheduler:
        raise TypeError(f"scheduler must be None, an address string or a distributed.Client; got {scheduler!r}")
    check_scheduler(scheduler)
    client = Client(scheduler, timeout="10s")
    try:
        yield client
    finally:
        client.close()
