"""The engine interface: run a pure function over the partitions of a table, in order.

Why: the stages that must give the same answer everywhere (consent decisions, sampling
keys) are written once as functions over one partition (a pandas DataFrame whose index
is the 0-based record number) and a small combine step. An engine only decides *where*
those functions run: :class:`LocalEngine` in this process, one partition after another
(today's streaming), :class:`~postkit.engine.dask_engine.DaskEngine` on a Dask cluster.
Results come back in partition order, so what is written is the same whichever engine
ran it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

SPLIT_EVERY = 8  # partial results combined per step of a tree reduction


class Engine(Protocol):
    """Where partition functions run. ``shared`` values (a consent policy, a key) are sent
    to each worker once, not once per partition."""

    name: str

    def map_partitions(self, fn: Callable[..., R], partitions: Iterable[Any], *,
                       shared: Mapping[str, Any] | None = None) -> Iterator[R]:
        """``fn(partition, part=i, **shared)`` for each partition, results in partition order."""
        ...

    def map_reduce(self, fn: Callable[..., R], combine: Callable[[Sequence[R]], R], partitions: Iterable[Any], *,
                   shared: Mapping[str, Any] | None = None, split_every: int = SPLIT_EVERY) -> R | None:
        """``combine`` over ``fn``'s results as a tree: adjacent results, in order, ``split_every`` at a time."""
        ...

    def dashboard_link(self) -> str | None:
        ...

    def close(self) -> None:
        ...


class LocalEngine:
    """Runs every partition in this process, one after another (the streaming postkit always did)."""

    name = "local"

    def map_partitions(self, fn: Callable[..., R], partitions: Iterable[Any], *,
                       shared: Mapping[str, Any] | None = None) -> Iterator[R]:
        for part, partition in enumerate(partitions):
            yield fn(partition, part=part, **(shared or {}))

    def map_reduce(self, fn: Callable[..., R], combine: Callable[[Sequence[R]], R], partitions: Iterable[Any], *,
                   shared: Mapping[str, Any] | None = None, split_every: int = SPLIT_EVERY) -> R | None:
        reducer = TreeReducer(combine, split_every)
        for result in self.map_partitions(fn, partitions, shared=shared):
            reducer.add(result)
        return reducer.result()

    def dashboard_link(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class TreeReducer:
    """A streaming tree reduction: levels of at most ``split_every`` partial results.

    The same shape whatever runs ``combine`` (here, or as Dask tasks), so an
    order-sensitive combine (concatenating word counts in input order) gives the same
    result; memory holds at most ``split_every`` results per level.
    """

    def __init__(self, combine: Callable[[Sequence[Any]], Any], split_every: int = SPLIT_EVERY,
                 submit: Callable[..., Any] | None = None) -> None:
        if split_every < 2:
            raise ValueError("split_every must be at least 2")
        self.combine = combine
        self.split_every = split_every
        self.submit = submit or (lambda fn, items: fn(items))
        self.levels: list[list[Any]] = []

    def add(self, item: Any, level: int = 0) -> None:
        while len(self.levels) <= level:
            self.levels.append([])
        self.levels[level].append(item)
        if len(self.levels[level]) == self.split_every:
            items, self.levels[level] = self.levels[level], []
            self.add(self.submit(self.combine, items), level + 1)

    def result(self) -> Any:
        """Combine what is left. Higher levels hold earlier partitions, so they come first."""
        items = [item for level in reversed(self.levels) for item in level]
        self.levels = []
        if not items:
            return None
        while len(items) > 1:
            items = [group[0] if len(group) == 1 else self.submit(self.combine, group)
                     for group in (items[i:i + self.split_every] for i in range(0, len(items), self.split_every))]
        return items[0]


def get_engine(name: str = "local", *, scheduler: str | None = None, workers: int | None = None,
               threads_per_worker: int | None = None, processes: bool = True) -> "Engine":
    """``local`` or ``dask`` (a LocalCluster unless ``scheduler`` names a running scheduler)."""
    from ..errors import PostkitError

    if name == "local":
        if scheduler is not None:
            raise PostkitError("--scheduler needs --engine dask", fix="add --engine dask, or drop --scheduler")
        return LocalEngine()
    if name == "dask":
        from .dask_engine import DaskEngine

        return DaskEngine(scheduler, workers=workers, threads_per_worker=threads_per_worker, processes=processes)
    raise PostkitError(f"unknown engine '{name}'", fix="use --engine local or --engine dask")
