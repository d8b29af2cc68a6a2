"""Ingesting a requests file into a results file, and the sample QA gate.

Why: the Luigi tasks stay thin wiring; what they do (read the requests,
keep this shard's share, run the worker, publish atomically, check counts,
judge the sample) lives here as plain functions testable without Luigi.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator

from pipeline.checks import StepFailed
from pipeline.ingest.shard import run_shard, shard_of
from pipeline.ingest.worker import request_problem
from pipeline.jsonio import AtomicWriter, iter_lines, iter_raw_lines
from pipeline.jsonline import BadLine, parse_object
from pipeline.pausepoint import pause_point
from pipeline.progress import Progress
from pipeline.sinks.base import Sink
from pipeline.sinks.message import take


def shard_requests(path: str, shard: int = 0, shards: int = 1) -> Iterator[dict]:
    """The requests of `path` that belong to `shard` (round-robin over the file's objects).

    The requests file is this pipeline's own checked output, so a line that
    is not an ingestable request means the file is damaged: fail with the
    line number rather than ingest a partial shard.
    """
    for index, (lineno, line) in enumerate(iter_lines(path)):
        if shard_of(index, shards) != shard:
            continue  # another shard's request: not even parsed (every shard reads the file)
        obj = parse_object(lineno, line)
        if isinstance(obj, BadLine):
            raise StepFailed(f"{path} line {lineno}: not a JSON object ({obj.reason}); "
                             "rebuild the requests file")
        problem = request_problem(obj)
        if problem:
            raise StepFailed(f"{path} line {lineno}: not an ingest request ({problem}); "
                             "rebuild the requests file")
        yield obj


def count_shard_requests(path: str, shard: int = 0, shards: int = 1) -> int:
    """How many requests of `path` belong to `shard`, counted from the file itself.

    Why: the "one result line per request" check must not take both numbers
    from the loop that writes the results (a request lost on the way in would
    be missing from both); this is a separate pass over the requests file.
    """
    return sum(1 for index, _ in enumerate(iter_raw_lines(path)) if shard_of(index, shards) == shard)


def ingest_file(requests_path: str, out_path: str, worker, concurrency: int,
                shard: int = 0, shards: int = 1, sink: Sink | None = None,
                progress: Progress | None = None, processes: bool = False) -> collections.Counter:
    """Ingest this shard's requests into `out_path` (JSON lines, gzip if `.gz`), atomically.

    Returns the status Counter (plus `total`); the file is published only
    when the lines written, the results counted and the shard's requests in
    the requests file (counted separately) are the same number, and only
    after `sink` (the messages the post-processors queued on the results,
    published in result order) is closed: every message stored or
    acknowledged. A sink failure raises and publishes nothing. `processes`: the
    requests run in forked processes rather than threads (`run_shard`).
    """
    expected = count_shard_requests(requests_path, shard, shards)
    if progress is not None:
        progress.total = expected
    with AtomicWriter(out_path) as out:
        def write(result: dict) -> None:
            if sink is not None:
                sink.publish_result(result)
            else:
                take(result)  # no sink: the queued messages are dropped, never written
            out.write_obj(result)
            if out.lines == 1:  # a test holds a worker here, its temporary file begun (multi-host)
                pause_point(f"ingest-shard-{shard:03d}-of-{shards:03d}", armed_by="ingest-shard.arm")
            if progress is not None:
                progress.update(status=result.get("status"))

        counts = run_shard(shard_requests(requests_path, shard, shards), worker, write, concurrency,
                           processes)
        if not out.lines == counts["total"] == expected:
            raise StepFailed(
                f"{out_path}: {out.lines} lines written and {counts['total']} results counted "
                f"for the {expected} requests of shard {shard} of {shards} in {requests_path}")
        if sink is not None:
            sink.close()
        out.commit()
    counts.setdefault("total", 0)  # present even for an empty shard
    return counts


def success_rate(counts: dict) -> float | None:
    total = counts.get("total", 0)
    return None if not total else counts.get("success", 0) / total


def summarise(counts: collections.Counter) -> dict:
    """Sidecar counts of an ingest run: in/out, success rate and the status histogram."""
    statuses = {k: v for k, v in counts.items() if k != "total"}
    rate = success_rate(counts)
    return {
        "in": counts["total"],
        "out": counts["total"],
        "success": counts.get("success", 0),
        "success_rate": round(rate, 4) if rate is not None else None,
        "status": dict(sorted(statuses.items())),
    }


def check_sample_gate(sample_counts: dict, min_success: float, sample_path: str) -> None:
    """Refuse the full ingest when the warm-up sample did too badly.

    Why: a broken archive setting or a code regression shows in the sample
    within minutes; without the gate it would show after hours of shards.
    An empty sample (nothing to ingest) passes.
    """
    total = sample_counts.get("in", 0)
    if not total:
        return
    rate = sample_counts.get("success", 0) / total
    if rate < min_success:
        top = ", ".join(f"{k}={v}" for k, v in sorted(
            sample_counts.get("status", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:6])
        raise StepFailed(
            f"sample QA gate: success rate {rate:.3f} ({sample_counts.get('success', 0)}/{total}) "
            f"is below [backfill] sample_min_success {min_success}; statuses: {top}. "
            f"Inspect {os.path.basename(sample_path)}, fix the cause, then rerun "
            "(or lower --backfill-sample-min-success deliberately)."
        )
