"""Merge ingest results into `file_meta` records whose fetched SHA-1 is the one asked for.

The runbook merged shard outputs and an earlier batch by hand with `jq`, and
kept a record only when the file fetched was the file the catalog meant
(`file_meta.sha1hex == request.ext_ids.sha1`). This step does the same over
every shard plus any `extra_results` files, and writes each dropped result to
a rejects file with its reason instead of letting it disappear (the rule,
`drop_reason`, is `pipeline.records`, shared with the import's sample dry run):

- `invalid-json` / `not-an-object`: the line is not a JSON object;
- `bad-result`: no `request.ext_ids.sha1` to compare with;
- `ingest-failed`: not a hit (any status but `success`), so no trustworthy file;
- `no-file-meta`: a hit without file_meta (should not happen; kept visible);
- `bad-sha1`: the request's sha1 or the file_meta's `sha1hex` is not 40 hex
  digits (earlier result files were written by other tools);
- `bad-file-meta`: `sha256hex` / `md5hex` present but not 64 / 32 hex digits,
  or a `size_bytes` / `mimetype` beyond a double's range (`1e999`: no JSON for it);
- `sha1-mismatch`: the archive served a different file than the catalog's.

Hex digests are written lower-case whatever case the input used, so the
import finds the entity by sha1.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from itertools import count
from json.encoder import encode_basestring
from operator import attrgetter

from pipeline.checks import check_balance
from pipeline.jsonfast import UNSET, decode_block, decode_fields, struct_decoder
from pipeline.jsonio import (
    block_lines,
    dumps,
    iter_raw_blocks,
    joined_lines,
    reject_bad_line,
    reject_text,
)
from pipeline.jsonline import BadLine
from pipeline.ordered_pool import map_ordered, usable_cpus
from pipeline.progress import Progress
from pipeline.records import FILE_META_FIELDS, drop_reason_of, file_meta_record
from pipeline.steps.split import SplitWriter
from pipeline.tempnames import temp_name, temp_suffix

# the fields drop_reason and the output read: only these are built from each result line
# (pipeline/jsonfast.py); cdx, terminal, hops and the rest are validated but not built
_FIELDS = ("request", "hit", "status", "file_meta")
_DECODER = struct_decoder("ResultForMerge", _FIELDS)
_STATUS_OF = attrgetter("status")


def file_meta_line(record: dict) -> bytes:
    """`dumps(record)` as bytes, spelled out for a record with all five fields of the usual
    types (the common case: serialising it was a large part of the merge); else `dumps`."""
    if tuple(record) == FILE_META_FIELDS and type(record["size_bytes"]) is int \
            and type(record["mimetype"]) is str:
        return _spelled(record["md5hex"], record["mimetype"], record["sha1hex"],
                        record["sha256hex"], record["size_bytes"])
    return dumps(record).encode()


def _spelled(md5: str, mimetype: str, sha1: str, sha256: str, size: int) -> bytes:
    """`dumps` of the five fields (hex digests that need no escaping), written out."""
    return (f'{{"md5hex": "{md5}", "mimetype": {encode_basestring(mimetype)}, '
            f'"sha1hex": "{sha1}", "sha256hex": "{sha256}", '
            f'"size_bytes": {int.__repr__(size)}}}').encode()


def _kept_line(fm: dict) -> bytes:
    """`file_meta_line(file_meta_record(fm))`, without the intermediate record in the common
    case (the five fields of the usual types, hex digests already lower-case)."""
    if len(fm) == 5:
        try:
            md5, mimetype, sha1, sha256, size = (fm["md5hex"], fm["mimetype"], fm["sha1hex"],
                                                 fm["sha256hex"], fm["size_bytes"])
        except KeyError:
            pass
        else:
            if type(size) is int and type(mimetype) is str and md5.islower() \
                    and sha1.islower() and sha256.islower():
                return _spelled(md5, mimetype, sha1, sha256, size)
    return file_meta_line(file_meta_record(fm))


class _BlockMerge:
    """One block's kept lines, rejects lines and counts (built in the process merging its
    file)."""

    def __init__(self, source: str):
        self.source = source
        self.kept: list[bytes] = []
        self.rejects: list[str] = []
        self.reasons: Counter = Counter()
        self.statuses: Counter = Counter()
        self.lines = 0

    def result(self, request, hit, status, fm, n: int, raw: bytes) -> None:
        self.statuses[str(None if status is UNSET else status)] += 1
        reason = drop_reason_of(request, hit, status, fm)
        if reason is None:
            self.kept.append(_kept_line(fm))
        else:
            self.reasons[reason] += 1
            self.rejects.append(reject_text(reason, n, self.source, raw.decode("utf-8")))

    def fast(self, n: int, raws: list[bytes], values: list) -> None:
        """`result` of each line of a block `decode_block` took (lines n+1...), spelled out
        in one loop: the statuses counted in C, the kept lines built in place."""
        self.lines = len(raws)
        try:
            statuses = Counter(map(_STATUS_OF, values))
        except TypeError:  # a status that is a list or an object: counted one by one below
            statuses = None
        # only strings (and absent, null) as they are: 1, 1.0 and true are one key to a
        # Counter but three statuses ("1", "1.0", "True")
        if statuses is not None and all(type(s) is str or s is None or s is UNSET for s in statuses):
            for status, k in statuses.items():
                self.statuses[str(None if status is UNSET else status)] += k
        else:
            statuses = None
        kept = self.kept.append
        for m, raw, v in zip(count(n + 1), raws, values):
            if statuses is None:
                self.statuses[str(None if v.status is UNSET else v.status)] += 1
            fm = v.file_meta
            reason = drop_reason_of(v.request, v.hit, v.status, fm)
            if reason is None:
                kept(_kept_line(fm))
            else:
                self.reasons[reason] += 1
                self.rejects.append(reject_text(reason, m, self.source, raw.decode("utf-8")))

    def bad_line(self, bad: BadLine) -> None:
        self.reasons[bad.reason] += 1
        self.rejects.append(dumps(reject_bad_line(bad, self.source)))

    def packed(self) -> tuple:
        """The block's lines joined, each with its newline, and its counts."""
        kept = joined_lines(self.kept)
        rejects = "\n".join(self.rejects).encode() + b"\n" if self.rejects else b""
        return (self.lines, len(self.kept), kept, len(self.rejects), rejects, self.reasons,
                self.statuses)


def _merge_block(source: str, n: int, block: bytes | BadLine, latest: dict[int, bytes]) -> tuple:
    """Merge a block of whole lines read after line `n` of a result file (see `_BlockMerge`).

    A block msgspec takes whole (`decode_block`) skips the per-line decoder; the
    retry pass's newer lines (`latest`) replace the file's own before any decoding."""
    merged = _BlockMerge(source)
    if isinstance(block, BadLine):  # a line too long to hold, alone
        lines: Iterable[tuple[int, bytes | BadLine]] = [(n, block)]
    else:
        fast = None if latest else decode_block(_DECODER, block)
        if fast is not None:
            merged.fast(n, *fast)
            return merged.packed()
        lines = block_lines(block, n)
    for m, raw in lines:
        merged.lines += 1
        if latest:
            raw = latest.get(m, raw)
        obj = decode_fields(_DECODER, _FIELDS, m, raw)
        if isinstance(obj, BadLine):
            merged.bad_line(obj)
        else:
            merged.result(obj.get("request"), obj.get("hit"), obj.get("status"),
                          obj.get("file_meta"), m, raw)
    return merged.packed()


def _merge_one(path: str, out_part: str, rejects_part: str,
               latest: dict[int, bytes] | None = None) -> dict:
    """Merge one result file into its own output and rejects parts (run in a worker process),
    a block of lines at a time; a line in `latest` (the retry pass's result of that request)
    replaces the file's own."""
    source = os.path.basename(path)
    statuses: Counter = Counter()
    n_source = 0
    latest = latest or {}
    with SplitWriter("merge", out_part, rejects_part) as split:
        for n, block in iter_raw_blocks(path):
            lines, n_kept, kept, n_rej, rejects, why, status = _merge_block(source, n, block, latest)
            n_source += lines
            split.keep_joined(kept, n_kept)
            split.reject_joined(rejects, n_rej, why)
            statuses.update(status)
        counts = split.publish(n_source)
    return counts | {"status": statuses, "source": source}


def _merge_job(job: tuple) -> dict:
    return _merge_one(*job)


def _concatenate(parts: list[str], path: str) -> None:
    """Concatenate files atomically (gzip parts make one multi-member gzip file); a single
    part (one result file) is renamed into place rather than copied."""
    if len(parts) == 1:
        try:
            os.replace(parts[0], path)
            return
        except OSError as e:
            if e.errno != errno.EXDEV:  # another filesystem: copy it as below
                raise
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _counted(part: dict, progress: Progress | None) -> dict:
    """Count a merged file's results on `progress` (the files are merged in other processes:
    progress moves a file at a time, the heartbeat keeps reporting in between)."""
    if progress is not None:
        progress.update(part["in"])
    return part


def merge_results(result_paths: list[str], out_path: str, rejects_path: str,
                  workers: int | None = None, progress: Progress | None = None,
                  latest: dict[str, dict[int, bytes]] | None = None) -> dict:
    """Write the file_meta of every good result, in input order; count the rest by reason.

    `latest` ({file name: {line: result line}}, `pipeline.ingest.retrypass`)
    replaces a request's result by its newer one, in place: the output is
    that of a first pass which had met no failure.

    Each result file is merged into parts of its own, by up to `workers`
    processes (default: one per CPU) since the step is CPU-bound, and the
    parts are concatenated in input order: the lines are those of a
    sequential merge, and the files' bytes do not depend on `workers`.
    """
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    suffix = ".gz" if out_path.endswith(".gz") else ""
    rej_suffix = ".gz" if rejects_path.endswith(".gz") else ""
    workers = max(1, min(workers or usable_cpus(), len(result_paths)))
    # named like every temporary file (`temp_suffix`): a rerun after a kill sweeps it away
    with tempfile.TemporaryDirectory(prefix=".merge-parts-", suffix=temp_suffix(),
                                     dir=out_dir) as tmp:
        latest = latest or {}
        jobs = [(path, os.path.join(tmp, f"out-{i:04d}{suffix}"),
                 os.path.join(tmp, f"rej-{i:04d}{rej_suffix}"),
                 latest.get(os.path.basename(path))) for i, path in enumerate(result_paths)]
        parts = [_counted(part, progress) for _, part in map_ordered(jobs, _merge_job, workers)]
        n_in = sum(p["in"] for p in parts)
        n_out = sum(p["out"] for p in parts)
        n_rej = sum(p["rejects"] for p in parts)
        check_balance("merge", n_in, {"out": n_out, "rejects": n_rej})
        _concatenate([j[1] for j in jobs], out_path)
        _concatenate([j[2] for j in jobs], rejects_path)
    statuses: Counter = Counter()
    reasons: Counter = Counter()
    for p in parts:
        statuses.update(p["status"])
        reasons.update(p["rejects_by_reason"])
    return {"in": n_in, "out": n_out, "rejects": n_rej,
            "rejects_by_reason": dict(sorted(reasons.items())),
            "status": dict(sorted(statuses.items())),
            "per_source": {p["source"]: p["in"] for p in parts}}
