"""Running the ingest worker over a shard's requests, in parallel, with output in input order.

Why: a shard is hundreds of thousands of requests, each mostly waiting on an
HTTP archive, so requests run on the ordered thread pool (`pipeline.ordered_pool`:
the shard file is the same bytes whatever the concurrency, and memory stays
flat). A local archive never waits: its requests are CPU work (inflate, hash,
parse), which threads only pass around under the GIL, so they are dealt in
chunks to forked processes instead, their results handed on in the same order.
What is the ingest's own is here: which requests belong to a shard, a worker
bug turned into one failed result, and the status counts.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from pipeline.checks import StepFailed
from pipeline.ingest.worker import BUG_STATUS, truncate
from pipeline.ordered_pool import map_in_processes, run_ordered, usable_cpus

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
    processes: bool = False,
) -> collections.Counter:
    """Process every request with `worker`, call `write(result)` in input order.

    Returns a Counter of result statuses plus `total`. `concurrency` threads
    share the worker (which must be thread-safe; see `pipeline.ordered_pool`);
    with 1 everything runs in the calling thread. With `processes` the
    requests are dealt instead, `CHUNK` at a time, to `process_count(concurrency)`
    forked processes, each with its copy of the worker (when: see
    `pipeline.wiring.ingest_processes`).
    An exception from `write` (disk full) or a StepFailed from the worker (an
    unreadable archive) stops the shard: that is not a per-request failure.
    `write` always runs in the calling thread, in input order.
    """
    counts: collections.Counter = collections.Counter()

    def emit(result: dict) -> None:
        write(result)
        counts[result["status"]] += 1
        counts["total"] += 1

    workers = process_count(concurrency) if processes else 1
    if workers > 1:
        for _, results in map_in_processes(_chunks(requests), _process_chunk, workers,
                                           window=WINDOW_CHUNKS, setup=_adopt_worker,
                                           setup_args=(worker,)):
            for result in results:
                emit(result)
        return counts
    run_ordered(requests, functools.partial(_safe_process, worker), emit,
                1 if processes else concurrency, "ingest")
    return counts


# Requests per trip to a worker process: a request of the local archive takes ~0.5 ms of
# CPU, a trip across the pipe ~0.1 ms, so 16 make the trips cheap while the shard's end
# (the last chunks) still finishes on all processes.
CHUNK = 16
# Chunks in flight per process: one slow chunk (a 129 MiB body takes ~0.3 s) holds up the
# writer, and the other processes work on meanwhile only as far as this lets them (the
# sample world's ~1.0 s of requests balanced best at 32; 512 results a process, held small).
WINDOW_CHUNKS = 32


def process_count(concurrency: int) -> int:
    """How many processes `run_shard` uses for `concurrency`: at most one per CPU this
    process may run on, since each keeps its CPU busy (the local archive never waits)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return max(1, min(concurrency, usable_cpus()))


def _chunks(requests: Iterable[dict]) -> Iterator[list[dict]]:
    it = iter(requests)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


_forked_worker = None  # the worker of a process forked by `run_shard` (set by `_adopt_worker`)


def _adopt_worker(worker) -> None:
    global _forked_worker
    _forked_worker = worker


def _process_chunk(chunk: list[dict]) -> list[dict]:
    """In a worker process: the results of a chunk of requests (their queued sink
    messages travel with them, pickled, to the shard's writer)."""
    return [_safe_process(_forked_worker, request) for request in chunk]
