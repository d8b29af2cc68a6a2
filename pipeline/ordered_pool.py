"""A thread pool whose results come out in input order, with a bounded window in flight.

Why: the ingest of a shard and the GROBID retry both run a slow, mostly waiting
call over a long stream (hundreds of thousands of requests), so the calls run
on threads; but their output files must be the same bytes whatever the
concurrency, so results are handed on strictly in input order. Only
`concurrency * WINDOW_PER_THREAD` items are in flight at once, so memory stays
flat however long the stream is. Which errors an item may turn into a result
is the caller's business: an exception from `process` or `write` stops the
pool (the items not started are cancelled) and propagates.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WINDOW_PER_THREAD = 8


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
    window = concurrency * WINDOW_PER_THREAD
    pending: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        try:
            for item in items:
                pending.append(pool.submit(process, item))
                if len(pending) >= window:
                    write(pending.popleft().result())
            while pending:
                write(pending.popleft().result())
        finally:
            for f in pending:
                f.cancel()
