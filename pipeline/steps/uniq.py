"""Remove duplicate file_meta records by `sha1hex` and say where the duplicates came from.

The runbook's `sort -u` found 86,520 duplicated lines but could not say why.
Two causes are told apart here: several catalog entities share a sha1 (so
several requests fetched the same file), and one request's result was merged
twice (a shard plus an earlier batch). For a sha1 with k merged lines and r
requests asking for it, min(k, r) - 1 duplicates are put down to duplicate
requests and the rest to repeated results. Records that disagree for one
sha1 (which would mean a hashing bug) are counted as `conflicting` and the
first one is kept. Output is sorted by sha1hex, so reruns are byte-identical.

The records are sorted with an external merge sort: runs of at most
`memory_budget` bytes are sorted in memory and spilled to temporary files
beside the output, then merged, so memory stays flat however many lines come
in (the runbook's `sort -u -S 4G` needed gigabytes). Equal sha1s keep their
input order through both phases, so "the first record" is the first read.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections import Counter
from collections.abc import Iterator

from pipeline.checks import StepFailed, check_balance
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import AtomicWriter, iter_raw_lines, write_json
from pipeline.jsonline import BadLine
from pipeline.progress import Progress, counting
from pipeline.tempnames import temp_suffix

# bytes of lines (plus per-line overhead) sorted in memory before a run is spilled to disk
MEMORY_BUDGET = 64 << 20
_LINE_OVERHEAD = 200  # a line in a run: the bytes object, its key string, the list slot
_MOST = 20

_SHA1_FIELDS = ("sha1hex",)
_SHA1_DECODER = struct_decoder("FileMetaSha1", _SHA1_FIELDS)
_REQUEST_FIELDS = ("ext_ids",)
_REQUEST_DECODER = struct_decoder("RequestSha1", _REQUEST_FIELDS)


def request_sha1_counts(requests_path: str | None) -> Counter:
    """How many ingest requests ask for each sha1 (lower-case)."""
    counts: Counter = Counter()
    if not requests_path:
        return counts
    for n, raw in iter_raw_lines(requests_path):
        obj = decode_fields(_REQUEST_DECODER, _REQUEST_FIELDS, n, raw)
        if isinstance(obj, dict) and isinstance(obj.get("ext_ids"), dict):
            sha1 = obj["ext_ids"].get("sha1")
            if sha1 and isinstance(sha1, str):
                counts[sha1.lower()] += 1
    return counts


def _sha1_key(path: str, n: int, raw: bytes) -> str:
    obj = decode_fields(_SHA1_DECODER, _SHA1_FIELDS, n, raw)
    if isinstance(obj, BadLine) or not obj.get("sha1hex") or not isinstance(obj["sha1hex"], str):
        raise StepFailed(f"uniq: {path} line {n} is not a file_meta record")
    return obj["sha1hex"].lower()


def _spill(run: list[tuple[str, bytes]], tmpdir: str, index: int) -> str:
    run.sort(key=lambda kv: kv[0])  # stable: equal sha1s stay in input order
    path = os.path.join(tmpdir, f"run-{index:05d}")
    with open(path, "wb", buffering=1 << 20) as f:
        f.writelines(raw + b"\n" for _, raw in run)
    return path


def _read_run(path: str) -> Iterator[tuple[str, bytes]]:
    with open(path, "rb", buffering=1 << 16) as f:
        for line in f:
            raw = line[:-1]
            yield _sha1_key(path, 0, raw), raw


def sorted_records(merged_path: str, tmpdir: str, memory_budget: int = MEMORY_BUDGET,
                   progress: Progress | None = None) -> tuple[Iterator[tuple[str, bytes]], int]:
    """(sha1, line) for every line of `merged_path`, sorted by sha1, input order kept for ties;
    and the number of lines read (every line is read and checked before this returns)."""
    run: list[tuple[str, bytes]] = []
    size = 0
    runs: list[str] = []
    n_in = 0
    for n, raw in counting(iter_raw_lines(merged_path), progress):
        n_in += 1
        run.append((_sha1_key(merged_path, n, raw), raw))
        size += len(raw) + _LINE_OVERHEAD
        if size >= memory_budget:
            runs.append(_spill(run, tmpdir, len(runs)))
            run, size = [], 0
    if not runs:
        run.sort(key=lambda kv: kv[0])
        return iter(run), n_in
    if run:
        runs.append(_spill(run, tmpdir, len(runs)))
    del run
    # heapq.merge breaks ties by the order of its inputs: the runs are in input order
    return heapq.merge(*(_read_run(p) for p in runs), key=lambda kv: kv[0]), n_in


def uniq_file_meta(merged_path: str, out_path: str, report_path: str, requests_path: str | None,
                   memory_budget: int = MEMORY_BUDGET, progress: Progress | None = None) -> dict:
    """Keep the first record per sha1hex, write them sorted, and a duplicates report."""
    requested = request_sha1_counts(requests_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    unique = duplicated = from_requests = from_repeats = conflicting = 0
    dropped = 0  # lines not written because their sha1 was already kept: counted as dropped
    conflicting_examples: list[str] = []
    most: list[tuple[int, int, str]] = []  # a min-heap of the _MOST most duplicated sha1s
    with tempfile.TemporaryDirectory(
            prefix=".uniq-runs-", suffix=temp_suffix(), dir=out_dir) as tmpdir, \
            AtomicWriter(out_path) as out:
        records, n_in = sorted_records(merged_path, tmpdir, memory_budget, progress)

        def close_group(sha1: str, k: int, conflict: bool) -> None:
            nonlocal duplicated, from_requests, from_repeats, conflicting
            if conflict:
                conflicting += 1
                if len(conflicting_examples) < _MOST:
                    conflicting_examples.append(sha1)
            if k > 1:
                duplicated += 1
                by_requests = max(0, min(k, requested.get(sha1, 0)) - 1)
                from_requests += by_requests
                from_repeats += k - 1 - by_requests
                # sha1s arrive in ascending order: among equal counts the later one ranks lower
                item = (k, -unique, sha1)
                if len(most) < _MOST:
                    heapq.heappush(most, item)
                elif item > most[0]:
                    heapq.heapreplace(most, item)

        group, first, k, conflict = None, b"", 0, False
        for sha1, raw in records:
            if sha1 != group:
                if group is not None:
                    close_group(group, k, conflict)
                group, first, k, conflict = sha1, raw, 1, False
                unique += 1
                out.write_raw(raw)
            else:
                k += 1
                dropped += 1
                # merged lines are canonical (sorted keys, one serialisation): equal records,
                # equal text
                conflict = conflict or raw != first
        if group is not None:
            close_group(group, k, conflict)
        # three counts taken apart: lines read (as read), lines written (by the writer), lines
        # dropped (where dropped); a line lost between them (the sort, the writer) fails here
        check_balance("uniq", n_in, {"out": out.lines, "duplicate_lines": dropped})
        out.commit()

    ranked = sorted(most, key=lambda t: (-t[0], t[2]))
    report = {
        "lines_in": n_in,
        "unique": unique,
        "duplicate_lines": dropped,
        "duplicated_sha1": duplicated,
        "from_duplicate_requests": from_requests,
        "from_repeated_results": from_repeats,
        "conflicting_sha1": conflicting,
        "conflicting_examples": conflicting_examples,
        "most_duplicated": [{"sha1hex": s, "lines": k, "requests": requested.get(s, 0)}
                            for k, _, s in ranked],
    }
    write_json(report_path, report)
    return {k: v for k, v in report.items() if not isinstance(v, list)} | {
        "in": n_in,
        "out": unique,
    }
