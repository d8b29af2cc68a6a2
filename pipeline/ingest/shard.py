"""Running the ingest worker over a shard's requests, in parallel, with output in input order.

Why: a shard is hundreds of thousands of requests, each mostly waiting on the
archive, so requests run on the ordered thread pool (`pipeline.ordered_pool`:
the shard file is the same bytes whatever the concurrency, and memory stays
flat). What is the ingest's own is here: which requests belong to a shard,
a worker bug turned into one failed result, and the status counts.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable, Iterable

from pipeline.checks import StepFailed
from pipeline.ingest.worker import BUG_STATUS, truncate
from pipeline.ordered_pool import run_ordered

log = logging.getLogger(__name__)


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
    share the worker (which must be thread-safe; see `pipeline.ordered_pool`);
    with 1 everything runs in the calling thread. An exception from `write`
    (disk full) or a StepFailed from the worker (an unreadable archive) stops
    the shard: that is not a per-request failure.
    """
    counts: collections.Counter = collections.Counter()

    def emit(result: dict) -> None:
        write(result)
        counts[result["status"]] += 1
        counts["total"] += 1

    run_ordered(requests, functools.partial(_safe_process, worker), emit, concurrency, "ingest")
    return counts
