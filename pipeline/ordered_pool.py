"""Thread or process pools whose results come out in input order, a bounded window in flight.

Why: the ingest of a shard and the GROBID retry both run a slow, mostly waiting
call over a long stream (hundreds of thousands of requests), so the calls run
on threads; but their output files must be the same bytes whatever the
concurrency, so results are handed on strictly in input order. Only
`concurrency * WINDOW_PER_THREAD` items are in flight at once, so memory stays
flat however long the stream is. Which errors an item may turn into a result
is the caller's business: an exception from `process` or `write` stops the
pool (the items not started are cancelled) and propagates. The data steps spread
their CPU-bound work on blocks of lines over processes the same way
(`map_in_processes`), and so does the shard of a local archive without GROBID,
whose requests never wait (`pipeline.ingest.shard`).
"""

from __future__ import annotations

import collections
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

from pipeline.runlock import die_with_parent

T = TypeVar("T")
R = TypeVar("R")

WINDOW_PER_THREAD = 8
# a data step's inputs smaller than this are worked in its own process: forking costs more
PARALLEL_MIN_BYTES = 8 << 20


def run_ordered(items: Iterable[T], process: Callable[[T], R], write: Callable[[R], None],
                concurrency: int = 1, name: str = "pool") -> None:
    """`write(process(item))` for every item, the writes in input order.

    `concurrency` threads (named `name`-N) share `process`, which must be
    thread-safe; with 1 everything runs in the calling thread. `write` always
    runs in the calling thread.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if concurrency == 1:
        for item in items:
            write(process(item))
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        for result in _in_order(pool, items, process, concurrency * WINDOW_PER_THREAD):
            write(result)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity; all of them where that is unknown):
    how many busy processes or handles are worth having at once."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def block_workers(paths: list[str], workers: int | None) -> int:
    """How many processes a data step spreads its blocks over (`map_in_processes`): `workers`,
    by default one per CPU, but one when its inputs (as stored) come to less than
    `PARALLEL_MIN_BYTES` or cannot be read (reading them will say why)."""
    if workers is None:
        try:
            size = sum(os.path.getsize(p) for p in paths)
        except OSError:
            size = 0
        workers = usable_cpus() if size >= PARALLEL_MIN_BYTES else 1
    return max(1, workers)


def map_ordered(items: Iterable[T], process: Callable[[T], R], workers: int,
                window: int = 4) -> Iterator[tuple[T, R]]:
    """`map_in_processes`, or with one worker the same pairs computed right here."""
    if workers > 1:
        return map_in_processes(items, process, workers, window)
    return ((item, process(item)) for item in items)


def map_in_processes(items: Iterable[T], process: Callable[[T], R], workers: int,
                     window: int = 4, setup: Callable[..., None] | None = None,
                     setup_args: tuple = ()) -> Iterator[tuple[T, R]]:
    """(item, process(item)) for every item, in input order, `process` run by `workers`
    forked processes (each dies with this one), at most `window` items per worker in flight.

    Why processes: the data steps' work on a block of lines (msgspec, sorting, list
    operations) holds the GIL, so only processes spread it over the cores. `process`
    must be a module-level function; items and results cross a pipe, so they should be
    big (a block of a megabyte), not a line. `setup(*setup_args)` runs first in each
    process; its arguments are inherited by the fork, never pickled (an object holding
    open files or locks may be handed over this way).
    """
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_process,
                             initargs=(os.getpid(), setup, setup_args)) as pool:
        yield from _in_order(pool, items, process, workers * window, keep_item=True)


def _start_process(parent_pid: int, setup: Callable[..., None] | None, setup_args: tuple) -> None:
    # what the fork inherited is left out of this process's collections: collecting it would
    # write to, and so copy, the pages the process shares with its parent
    gc.freeze()
    die_with_parent(parent_pid)
    if setup is not None:
        setup(*setup_args)


def _in_order(pool: Executor, items: Iterable[T], process: Callable[[T], R], window: int,
              keep_item: bool = False) -> Iterator:
    """`process(item)` results from `pool` in input order, `window` of them in flight; the
    items not started are cancelled if the consumer stops or fails."""
    pending: collections.deque[tuple[T | None, Future]] = collections.deque()
    try:
        for item in items:
            pending.append((item if keep_item else None, pool.submit(process, item)))
            if len(pending) >= window:
                item, future = pending.popleft()
                yield (item, future.result()) if keep_item else future.result()
        while pending:
            item, future = pending.popleft()
            yield (item, future.result()) if keep_item else future.result()
    finally:
        for _, f in pending:
            f.cancel()
