"""Running a worker over a stream of requests, in parallel, with output in input order.

Why: a shard is hundreds of thousands of requests, each mostly waiting on the
archive, so requests run on a thread pool; but the shard file must be the same
bytes whatever the concurrency, so results are written strictly in input
order. Only a bounded window of requests is in flight, so memory stays flat
however long the shard is.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from pipeline.checks import StepFailed
from pipeline.ingest.worker import BUG_STATUS, truncate

log = logging.getLogger(__name__)

WINDOW_PER_THREAD = 8


def shard_of(index: int, shards: int) -> int:
    """Round-robin shard of the request at 0-based `index`: every shard gets an even share."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return index % shards


def _safe_process(worker, request: dict) -> dict:
    """`worker.process`, with even a bug escaping it turned into a result (the shard goes on);
    StepFailed (the environment failed, e.g. an unreadable archive) stops the shard."""
    try:
        return worker.process(request)
    except StepFailed:
        raise
    except Exception as e:
        log.exception("worker raised on a request")
        return {
            "request": request,
            "hit": False,
            "status": BUG_STATUS,
            "error_message": truncate(f"{type(e).__name__}: {e}"),
        }


def run_shard(
    requests: Iterable[dict],
    worker,
    write: Callable[[dict], None],
    concurrency: int = 1,
) -> collections.Counter:
    """Process every request with `worker`, call `write(result)` in input order.

    Returns a Counter of result statuses plus `total`. `concurrency` threads
    share the worker (which must be thread-safe); with 1 everything runs in
    the calling thread. An exception from `write` (disk full) or a StepFailed
    from the worker (an unreadable archive) stops the shard: that is not a
    per-request failure.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    counts: collections.Counter = collections.Counter()

    def emit(result: dict) -> None:
        write(result)
        counts[result["status"]] += 1
        counts["total"] += 1

    if concurrency == 1:
        for request in requests:
            emit(_safe_process(worker, request))
        return counts

    window = concurrency * WINDOW_PER_THREAD
    pending: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ingest") as pool:
        try:
            for request in requests:
                pending.append(pool.submit(_safe_process, worker, request))
                if len(pending) >= window:
                    emit(pending.popleft().result())
            while pending:
                emit(pending.popleft().result())
        finally:
            for f in pending:
                f.cancel()
    return counts
