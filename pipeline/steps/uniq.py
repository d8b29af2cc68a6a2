"""Remove duplicate file_meta records by `sha1hex` and say where the duplicates came from.

The runbook's `sort -u` found 86,520 duplicated lines but could not say why.
Two causes are told apart here: several catalog entities share a sha1 (so
several requests fetched the same file), and one request's result was merged
twice (a shard plus an earlier batch). For a sha1 with k merged lines and r
requests asking for it, min(k, r) - 1 duplicates are put down to duplicate
requests and the rest to repeated results. Records that disagree for one
sha1 (which would mean a hashing bug) are counted as `conflicting` and the
first one is kept. Output is sorted by sha1hex, so reruns are byte-identical.

Memory stays flat however many lines come in (the runbook's `sort -u -S 4G`
needed gigabytes): up to `memory_budget` bytes of lines are sorted in memory;
beyond it the lines are spilled to temporary files beside the output, one per
first two characters of their sha1 (in input order), and each file is then
sorted in memory in turn, in sha1 order, so no merge is needed. A file still
too big for memory (sha1s that are not spread: never the case for real sha1s)
is sorted by an external merge sort of its own. Equal sha1s keep their input
order throughout, so "the first record" is the first read.

Why whole blocks: the lines are read, checked and keyed a block of a
megabyte at a time (`pipeline.jsonfast.decode_block`), sorted by index and
written by list operations, with Python work per duplicate only; a loop per
line made this step slower than `sort -u`. A block msgspec cannot take whole
is keyed line by line, with the same verdicts and errors.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from itertools import chain, compress
from operator import attrgetter, eq, itemgetter, not_

from pipeline.checks import StepFailed, check_balance
from pipeline.jsonfast import decode_block, decode_fields, struct_decoder
from pipeline.jsonio import (
    AtomicWriter,
    block_lines,
    iter_raw_blocks,
    iter_raw_lines,
    joined_lines,
    write_json,
)
from pipeline.jsonline import BadLine
from pipeline.ordered_pool import block_workers, map_ordered
from pipeline.progress import Progress
from pipeline.tempnames import temp_suffix

# bytes of lines (plus per-line overhead) sorted in memory before a run is spilled to disk
MEMORY_BUDGET = 64 << 20
_LINE_OVERHEAD = 200  # a line in a run: the bytes object, its key string, the list slot
_MOST = 20

_SHA1_FIELDS = ("sha1hex",)
_SHA1_DECODER = struct_decoder("FileMetaSha1", _SHA1_FIELDS)
# a block's lines in one call: sha1hex required and a string (any other line: line by line)
_SHA1_BLOCK_DECODER = struct_decoder("FileMetaSha1Str", _SHA1_FIELDS, required=str)
_SHA1_OF = attrgetter("sha1hex")
_PREFIX = 2  # spilled lines go to one file per this many first characters of their sha1
_prefix_of = itemgetter(slice(None, _PREFIX))  # a key's prefix (all of a shorter one)
_GROUPED = 10_000  # lines per batch of the external sort's output (cut between sha1s)
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
                   ) -> tuple[Iterator[tuple[str, bytes]], int]:
    """(sha1, line) for every line of `merged_path`, sorted by sha1, input order kept for ties;
    and the number of lines read (every line is read and checked before this returns).

    The external merge sort of a prefix too big for memory (`_Prefixes.prefixes`)."""
    run: list[tuple[str, bytes]] = []
    size = 0
    runs: list[str] = []
    n_in = 0
    for n, raw in iter_raw_lines(merged_path):
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


def _block_records(path: str, n: int, block: bytes | BadLine) -> tuple[list[str], list[bytes]]:
    """The sha1s (lower-case) and lines of a block of whole lines read after line `n`;
    `StepFailed` at the first line that is not a file_meta record."""
    if isinstance(block, BadLine):
        _sha1_key(path, n, block)  # raises, naming the line
    fast = decode_block(_SHA1_BLOCK_DECODER, block)
    if fast is not None:
        lines, values = fast
        keys = list(map(_SHA1_OF, values))
        if all(keys):
            return list(map(str.lower, keys)), lines
    keys, lines = [], []
    for m, raw in block_lines(block, n):
        keys.append(_sha1_key(path, m, raw))
        lines.append(raw)
    return keys, lines


def _sort_batch(keys: list[str], lines: list[bytes]) -> tuple[list[str], list[bytes]]:
    """Both lists in sha1 order, equal sha1s in input order (a stable sort of the indexes)."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return list(map(keys.__getitem__, order)), list(map(lines.__getitem__, order))


def _prefix_end(keys: list[str], i: int, prefix: str) -> int:
    """Where the sorted `keys` stop having `prefix` (keys[i]'s first `_PREFIX` characters,
    or all of a shorter key) as theirs, from i on: their prefixes are sorted too."""
    return bisect_right(keys, prefix, i, key=_prefix_of)


def _partition_block(item: tuple[str, int, bytes | BadLine]) -> tuple[int, list[tuple[str, bytes]]]:
    """(lines, [(sha1 prefix, its lines joined)]) of a block read after line `n` (run in a
    worker process): sorted first (a C sort, stable), so each prefix's lines are one slice,
    in sha1 order, equal sha1s in input order. `StepFailed` at a line that is not a record."""
    path, n, block = item
    keys, lines = _sort_batch(*_block_records(path, n, block))
    parts = []
    i, total = 0, len(keys)
    while i < total:
        prefix = keys[i][:_PREFIX]
        j = _prefix_end(keys, i, prefix)
        parts.append((prefix, joined_lines(lines[i:j])))
        i = j
    return total, parts


def _grouped(records: Iterator[tuple[str, bytes]]) -> Iterator[tuple[list[str], list[bytes]]]:
    """Sorted (sha1, line) pairs as batches of lists, never cutting a sha1's lines apart."""
    keys: list[str] = []
    lines: list[bytes] = []
    for key, raw in records:
        if len(keys) >= _GROUPED and key != keys[-1]:
            yield keys, lines
            keys, lines = [], []
        keys.append(key)
        lines.append(raw)
    if keys:
        yield keys, lines


def _dedup(keys: list[str], lines: list[bytes]) -> tuple[int, bytes, int, list[tuple]]:
    """A sorted batch, its duplicates dropped: (lines kept, those lines joined, lines dropped,
    [(sha1, lines, conflicting, rank among the batch's sha1s)] of each duplicated sha1).
    List operations for all lines, Python work for the duplicates only."""
    n = len(keys)
    same = list(map(eq, keys[1:], keys[:-1])) if n > 1 else []  # line i+1 repeats line i's sha1
    if not any(same):
        return n, joined_lines(lines), 0, []
    kept = list(compress(lines, chain((True,), map(not_, same))))
    dups = list(compress(range(1, n), same))
    groups = []
    j = 0
    while j < len(dups):
        start = dups[j] - 1  # the group's first line: kept
        first = lines[start]
        # merged lines are canonical (sorted keys, one serialisation): equal records, equal text
        conflict = False
        end = j
        while end < len(dups) and dups[end] == start + 1 + end - j:
            conflict = conflict or lines[dups[end]] != first
            end += 1
        # the group's rank among the batch's sha1s (1-based), as a line-by-line pass counts
        groups.append((keys[start], 1 + end - j, conflict, start + 1 - j))
        j = end
    return len(kept), joined_lines(kept), len(dups), groups


def _dedup_prefix(item: tuple[str, bytes | str]) -> tuple | None:
    """`_dedup` of one prefix's lines held in memory (run in a worker process); None for a
    prefix left in its file (too big for memory: the step's process sorts it externally)."""
    prefix, lines = item
    if isinstance(lines, str):
        return None
    return _dedup(*_sort_batch(*_block_records(f"lines of sha1 prefix {prefix!r}", 0, lines[:-1])))


class _Prefixes:
    """Every line read, by the first characters of its sha1: held in memory (each block's
    share joined) up to the budget, then appended to a file per prefix beside the output.

    Why prefixes rather than sorted runs: sha1s are spread evenly, so each prefix
    holds about the same share of the lines and is sorted alone in memory, and the
    prefixes in order are the output in sha1 order, with no merge (a k-way merge in
    Python cost a microsecond per line).
    """

    def __init__(self, tmpdir: str, memory_budget: int):
        self.dir = tmpdir
        self.budget = memory_budget
        self.files: dict[str, str] = {}
        self.pending: dict[str, list[bytes]] = {}

    def add(self, parts: list[tuple[str, bytes]]) -> None:
        pending = self.pending
        for prefix, data in parts:
            chunks = pending.get(prefix)
            if chunks is None:
                pending[prefix] = [data]
            else:
                chunks.append(data)

    def _append(self, prefix: str, chunks: list[bytes]) -> str:
        path = self.files.get(prefix)
        if path is None:
            path = self.files[prefix] = os.path.join(self.dir, f"prefix-{len(self.files):05d}")
        with open(path, "ab") as f:
            f.writelines(chunks)
        return path

    def flush(self) -> None:
        for prefix, chunks in self.pending.items():
            self._append(prefix, chunks)
        self.pending = {}

    def prefixes(self) -> Iterator[tuple[str, bytes | str]]:
        """(prefix, its lines joined) in prefix order, in input order within a prefix; a
        prefix too big to sort in memory as (prefix, the path of its file)."""
        # a prefix that is a whole sha1 ("a") sorts before the longer ones it begins
        for prefix in sorted(self.files.keys() | self.pending.keys()):
            chunks = self.pending.pop(prefix, [])
            path = self.files.get(prefix)
            size = (os.path.getsize(path) if path else 0) + sum(map(len, chunks))
            if 2 * size > self.budget:  # lines and their keys: about twice the bytes in memory
                yield prefix, self._append(prefix, chunks)
                continue
            if path is not None:
                with open(path, "rb") as f:
                    chunks.insert(0, f.read())
                os.unlink(path)
            yield prefix, b"".join(chunks)


class _Groups:
    """The first line of each sha1 to the output, and the duplicates report's figures."""

    def __init__(self, requested: Counter, out: AtomicWriter):
        self.requested = requested
        self.out = out
        self.unique = self.duplicated = self.from_requests = self.from_repeats = 0
        self.conflicting = self.dropped = 0
        self.conflicting_examples: list[str] = []
        self.most: list[tuple[int, int, str]] = []  # a min-heap of the _MOST most duplicated

    def add(self, deduped: tuple[int, bytes, int, list[tuple]]) -> None:
        """A batch `_dedup` made, batches in sha1 order."""
        kept, data, dropped, groups = deduped
        self.out.write_joined(data, kept)
        self.dropped += dropped
        for sha1, k, conflict, rank in groups:
            self._close(sha1, k, conflict, self.unique + rank)
        self.unique += kept

    def _close(self, sha1: str, k: int, conflict: bool, rank: int) -> None:
        if conflict:
            self.conflicting += 1
            if len(self.conflicting_examples) < _MOST:
                self.conflicting_examples.append(sha1)
        self.duplicated += 1
        by_requests = max(0, min(k, self.requested.get(sha1, 0)) - 1)
        self.from_requests += by_requests
        self.from_repeats += k - 1 - by_requests
        # sha1s arrive in ascending order: among equal counts the later one ranks lower
        item = (k, -rank, sha1)
        if len(self.most) < _MOST:
            heapq.heappush(self.most, item)
        elif item > self.most[0]:
            heapq.heapreplace(self.most, item)


def uniq_file_meta(merged_path: str, out_path: str, report_path: str, requests_path: str | None,
                   memory_budget: int = MEMORY_BUDGET, progress: Progress | None = None,
                   workers: int | None = None) -> dict:
    """Keep the first record per sha1hex, write them sorted, and a duplicates report.

    Blocks are keyed and split by prefix, and prefixes sorted and deduplicated,
    by `workers` processes (`block_workers`: one per CPU for a big input); the
    results are taken in order, so the output does not depend on `workers`.
    """
    requested = request_sha1_counts(requests_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    workers = block_workers([merged_path], workers)
    with tempfile.TemporaryDirectory(
            prefix=".uniq-runs-", suffix=temp_suffix(), dir=out_dir) as tmpdir, \
            AtomicWriter(out_path) as out:
        prefixes = _Prefixes(tmpdir, memory_budget)
        n_in = size = 0
        blocks = ((merged_path, n, block) for n, block in iter_raw_blocks(merged_path))
        for _, (lines, parts) in map_ordered(blocks, _partition_block, workers):
            n_in += lines
            if progress is not None:
                progress.update(lines)
            prefixes.add(parts)
            size += sum(len(data) for _, data in parts) + _LINE_OVERHEAD * lines
            if size >= memory_budget:
                prefixes.flush()
                size = 0
        groups = _Groups(requested, out)
        # one prefix in flight per worker: memory stays within a few prefixes' lines (each
        # is held here, pickled to its worker and back as the kept lines)
        for (_, path), deduped in map_ordered(prefixes.prefixes(), _dedup_prefix, workers,
                                                   window=1):
            if deduped is not None:
                groups.add(deduped)
                continue
            with tempfile.TemporaryDirectory(prefix="sort-", dir=tmpdir) as subdir:
                records, _ = sorted_records(path, subdir, memory_budget)
                for keys, lines in _grouped(records):
                    groups.add(_dedup(keys, lines))
            os.unlink(path)
        # three counts taken apart: lines read (as read), lines written (by the writer), lines
        # dropped (where dropped); a line lost between them (the sort, the writer) fails here
        check_balance("uniq", n_in, {"out": out.lines, "duplicate_lines": groups.dropped})
        out.commit()

    ranked = sorted(groups.most, key=lambda t: (-t[0], t[2]))
    report = {
        "lines_in": n_in,
        "unique": groups.unique,
        "duplicate_lines": groups.dropped,
        "duplicated_sha1": groups.duplicated,
        "from_duplicate_requests": groups.from_requests,
        "from_repeated_results": groups.from_repeats,
        "conflicting_sha1": groups.conflicting,
        "conflicting_examples": groups.conflicting_examples,
        "most_duplicated": [{"sha1hex": s, "lines": k, "requests": requested.get(s, 0)}
                            for k, _, s in ranked],
    }
    write_json(report_path, report)
    return {k: v for k, v in report.items() if not isinstance(v, list)} | {
        "in": n_in,
        "out": groups.unique,
    }
