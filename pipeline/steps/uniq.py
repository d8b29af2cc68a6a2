"""Remove duplicate file_meta records by `sha1hex` and say where the duplicates came from.

The runbook's `sort -u` found 86,520 duplicated lines but could not say why.
Two causes are told apart here: several catalog entities share a sha1 (so
several requests fetched the same file), and one request's result was merged
twice (a shard plus an earlier batch). For a sha1 with k merged lines and r
requests asking for it, min(k, r) - 1 duplicates are put down to duplicate
requests and the rest to repeated results. Records that disagree for one
sha1 (which would mean a hashing bug) are counted as `conflicting` and the
first one is kept. Output is sorted by sha1hex, so reruns are byte-identical.
"""

from __future__ import annotations

from collections import Counter

from pipeline.base import StepFailed, check_balance
from pipeline.jsonio import (
    AtomicWriter,
    BadLine,
    iter_lines,
    iter_objects,
    parse_object,
    write_json,
)


def request_sha1_counts(requests_path: str | None) -> Counter:
    """How many ingest requests ask for each sha1 (lower-case)."""
    counts: Counter = Counter()
    if not requests_path:
        return counts
    for _, obj in iter_objects(requests_path):
        if isinstance(obj, dict):
            sha1 = (obj.get("ext_ids") or {}).get("sha1")
            if sha1:
                counts[sha1.lower()] += 1
    return counts


def uniq_file_meta(merged_path: str, out_path: str, report_path: str, requests_path: str | None) -> dict:
    """Keep the first record per sha1hex, write them sorted, and a duplicates report."""
    first: dict[str, str] = {}
    lines: Counter = Counter()
    conflicting: set[str] = set()
    n_in = 0
    for n, text in iter_lines(merged_path):
        n_in += 1
        obj = parse_object(n, text)
        if isinstance(obj, BadLine) or not obj.get("sha1hex"):
            raise StepFailed(f"uniq: {merged_path} line {n} is not a file_meta record")
        sha1 = obj["sha1hex"].lower()
        # merged lines are canonical (sorted keys, one serialisation): equal records, equal text
        lines[sha1] += 1
        if sha1 not in first:
            first[sha1] = text
        elif first[sha1] != text:
            conflicting.add(sha1)

    requested = request_sha1_counts(requests_path)
    from_requests = from_repeats = 0
    for sha1, k in lines.items():
        if k > 1:
            by_requests = max(0, min(k, requested.get(sha1, 0)) - 1)
            from_requests += by_requests
            from_repeats += k - 1 - by_requests

    with AtomicWriter(out_path) as out:
        for sha1 in sorted(first):
            out.write_line(first[sha1])
        duplicate_lines = n_in - out.lines
        check_balance("uniq", n_in, {"out": out.lines, "duplicate_lines": duplicate_lines})
        out.commit()

    most = sorted(((k, s) for s, k in lines.items() if k > 1), key=lambda t: (-t[0], t[1]))[:20]
    report = {
        "lines_in": n_in,
        "unique": len(first),
        "duplicate_lines": duplicate_lines,
        "duplicated_sha1": sum(1 for k in lines.values() if k > 1),
        "from_duplicate_requests": from_requests,
        "from_repeated_results": from_repeats,
        "conflicting_sha1": len(conflicting),
        "conflicting_examples": sorted(conflicting)[:20],
        "most_duplicated": [{"sha1hex": s, "lines": k, "requests": requested.get(s, 0)} for k, s in most],
    }
    write_json(report_path, report)
    return {k: v for k, v in report.items() if not isinstance(v, list)} | {
        "in": n_in,
        "out": len(first),
    }
