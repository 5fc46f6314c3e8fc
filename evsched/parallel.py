"""A process pool for independent solves: ``map(fn, args)`` in this process or on a local
``dask.distributed`` cluster (notebook 03's fleets, notebook 06's Monte Carlo).

``Pool(1)`` runs everything in the calling process; ``Pool(n)`` starts a ``LocalCluster`` of
``n`` single-threaded worker processes for the duration of a ``with`` block (no dashboard, a
temporary local directory) and falls back to this process, with one printed line, where
processes cannot be started. Results come back in the order of ``args``, so the numbers do not
depend on the number of workers.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings

import numpy as np

from evsched.errors import InputError


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_workers(n_workers) -> int:
    if not isinstance(n_workers, (int, np.integer)) or isinstance(n_workers, bool) or not 1 <= n_workers <= 64:
        raise InputError(f"n_workers = {n_workers!r}: must be an integer in 1..64")
    return int(n_workers)


class Pool:
    """``map(fn, args)`` in this process (``n_workers = 1``) or on a local
    ``dask.distributed`` cluster of ``n_workers`` single-threaded processes."""

    def __init__(self, n_workers: int = 1):
        self.n_workers = _check_workers(n_workers)
        self._stack = None
        self.client = None

    def __enter__(self):
        if self.n_workers > 1:
            from contextlib import ExitStack

            from dask.distributed import Client, LocalCluster
            self._stack = ExitStack()
            try:
                tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="evsched-dask-"))
                with warnings.catch_warnings():  # "Port 8787 is already in use": no dashboard is wanted
                    warnings.filterwarnings("ignore", message="Port .* is already in use")
                    cluster = self._stack.enter_context(LocalCluster(
                        n_workers=self.n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        local_directory=tmp, silence_logs=logging.ERROR))
                self.client = self._stack.enter_context(Client(cluster))
            except Exception as exc:  # no processes allowed here: the same numbers, in this process
                self._stack.close()
                self._stack, self.client = None, None
                print(f"evsched: could not start {self.n_workers} dask worker processes "
                      f"({type(exc).__name__}: {str(exc)[:120]}); running in this process")
                self.n_workers = 1
        return self

    def __exit__(self, *exc):
        if self._stack is not None:
            self._stack.close()
        return False

    def scatter(self, obj):
        """``obj`` on every worker. ``hash=False``: a fresh key per call. With dask's default
        content-hashed key, scattering an object that an earlier, already released scatter
        held gets the old key and is freed with the old handle ("lost dependencies")."""
        return obj if self.client is None else self.client.scatter(obj, broadcast=True, hash=False)

    def map(self, fn, args: list) -> list:
        if self.client is None:
            return [fn(*a) for a in args]
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        return self.client.gather(futures)
