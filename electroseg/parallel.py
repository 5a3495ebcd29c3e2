"""Dask plumbing shared by block-wise analysis and block-wise prediction: a client, and compute on it.

NumPy/Dask only (never torch), so :mod:`electroseg.analysis` and :mod:`electroseg.inference`
both use it without the analysis side importing torch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["compute", "dask_client"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_client(*, scheduler_address: str | None = None, n_workers: int = 2,
                threads_per_worker: int = 1, memory_limit: str | int = "4GB",
                processes: bool = True) -> Iterator[Any]:
    """A ``distributed.Client`` for the block-wise functions, closed on exit.

    Parameters
    ----------
    scheduler_address : str, optional
        Connect to this running scheduler (e.g. ``"tcp://head:8786"``); the cluster options
        below are then ignored.
    n_workers, threads_per_worker, memory_limit, processes
        Options of the ``distributed.LocalCluster`` started otherwise; ``memory_limit`` is per
        worker (the nanny pauses and restarts a worker that exceeds it).
    """
    from distributed import Client, LocalCluster

    if scheduler_address is not None:
        with Client(scheduler_address) as client:
            yield client
        return
    with LocalCluster(n_workers=int(n_workers), threads_per_worker=int(threads_per_worker),
                      memory_limit=memory_limit, processes=bool(processes),
                      dashboard_address=None) as cluster, Client(cluster) as client:
        logger.info("dask: local cluster of %d workers x %d threads, %s each", n_workers,
                    threads_per_worker, memory_limit)
        yield client


def compute(*collections: Any, client: Any = None, scheduler_address: str | None = None):
    """``dask.compute`` on ``client``, on a scheduler at ``scheduler_address``, or else on the
    current default scheduler (a default distributed client if one exists, else threads)."""
    import dask

    if client is None and scheduler_address is not None:
        with dask_client(scheduler_address=scheduler_address) as remote:
            return dask.compute(*collections, scheduler=remote)
    if client is not None:
        return dask.compute(*collections, scheduler=client)
    return dask.compute(*collections)
