"""The Dask engine: partition functions as tasks on a Dask cluster (``postkit[dask]``).

Why Dask: researchers run on laptops (a LocalCluster), on HPC (dask-jobqueue on Slurm
or PBS) and in the cloud (Kubernetes); one ``--scheduler ADDRESS`` covers all three,
so postkit needs no scheduler of its own.

How: shared inputs (the consent policy, the pseudonym key) are scattered to every
worker once. Partitions are read by postkit's own reader, so every cell is parsed
exactly as the local run parses it (Dask's CSV and JSON readers type and fill cells
differently), and sent to a worker as they are read; at most ``window`` partitions are
in flight, so memory stays flat however large the input is. Results are taken in
partition order, and reductions run as a tree of Dask tasks. Workers must see the
folder of the outputs (true for a LocalCluster and for HPC file systems): each writes
its part of the audit log there.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from ..errors import PostkitError
from .base import SPLIT_EVERY, TreeReducer

R = TypeVar("R")

INSTALL_HINT = "pip install 'postkit[dask]'"


def require_dask() -> None:
    """Fail with one clear line when the optional extra is missing."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise PostkitError("the Dask engine needs the optional extra, which is not installed",
                           fix=f"{INSTALL_HINT}, or use --engine local") from None


class DaskEngine:
    """Runs partition functions on a Dask cluster: ``scheduler`` (an address such as
    ``tcp://host:8786``), or a new LocalCluster of ``workers`` × ``threads_per_worker``."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, workers: int | None = None,
                 threads_per_worker: int | None = None, processes: bool = True, window: int | None = None) -> None:
        require_dask()
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="15s")
            except (OSError, TimeoutError, ValueError):
                raise PostkitError("cannot reach the Dask scheduler given by --scheduler",
                                   fix="check the address (e.g. tcp://HOST:8786) and that the scheduler runs") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                                        processes=processes, dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        nthreads = self.client.nthreads()
        self._workers = sorted(nthreads)
        self.window = window or max(2, 2 * (sum(nthreads.values()) or 1))

    # -- the Engine interface
    def _shared(self, shared: Mapping[str, Any] | None) -> dict[str, Any]:
        return {name: self.client.scatter(value, broadcast=True, hash=False)
                for name, value in (shared or {}).items()}

    def _submit(self, fn: Callable[..., Any], partition: Any, part: int, common: Mapping[str, Any]) -> Any:
        """One partition's task. Its data goes straight to a worker (not through the scheduler);
        on a LocalCluster the workers take partitions in turn and run them where the data is."""
        if not hasattr(partition, "columns"):
            return self.client.submit(fn, partition, part=part, pure=False, **common)
        workers = self._workers if self.cluster is not None else []  # a remote cluster may grow and shrink
        target = [workers[part % len(workers)]] if workers else None
        data = self.client.scatter(partition, hash=False, workers=target)
        return self.client.submit(fn, data, part=part, pure=False, workers=target, allow_other_workers=True,
                                  **common)

    def map_partitions(self, fn: Callable[..., R], partitions: Iterable[Any], *,
                       shared: Mapping[str, Any] | None = None) -> Iterator[R]:
        common = self._shared(shared)
        pending: deque = deque()
        try:
            for part, partition in enumerate(partitions):
                pending.append(self._submit(fn, partition, part, common))
                while len(pending) >= self.window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def map_reduce(self, fn: Callable[..., R], combine: Callable[[Sequence[R]], R], partitions: Iterable[Any], *,
                   shared: Mapping[str, Any] | None = None, split_every: int = SPLIT_EVERY) -> R | None:
        from distributed import wait

        common = self._shared(shared)
        reducer = TreeReducer(combine, split_every,
                              submit=lambda how, items: self.client.submit(how, items, pure=False))
        running: deque = deque()
        for part, partition in enumerate(partitions):
            future = self._submit(fn, partition, part, common)
            running.append(future)
            reducer.add(future)
            if len(running) >= self.window:
                wait(running.popleft())  # back-pressure: no more than `window` partitions held at once
        result = reducer.result()
        return result.result() if result is not None else None

    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address (it needs ``bokeh`` on the scheduler)."""
        try:
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001 - a scheduler without an HTTP server
            return None

    def describe(self) -> str:
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        where = "a LocalCluster" if self.cluster is not None else f"the scheduler {info.get('address')}"
        return f"{len(workers)} worker{'s' if len(workers) != 1 else ''}, {threads} threads on {where}"

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
