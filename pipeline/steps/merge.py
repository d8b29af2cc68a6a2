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
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from json.encoder import encode_basestring

from pipeline.checks import check_balance
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import dumps, iter_raw_lines
from pipeline.jsonline import BadLine
from pipeline.progress import Progress
from pipeline.records import FILE_META_FIELDS, drop_reason, file_meta_record
from pipeline.runlock import die_with_parent
from pipeline.steps.split import SplitWriter
from pipeline.tempnames import temp_name, temp_suffix

# the fields drop_reason and the output read: only these are built from each result line
# (pipeline/jsonfast.py); cdx, terminal, hops and the rest are validated but not built
_FIELDS = ("request", "hit", "status", "file_meta")
_DECODER = struct_decoder("ResultForMerge", _FIELDS)

def file_meta_line(record: dict) -> bytes:
    """`dumps(record)` as bytes, spelled out for a record with all five fields of the usual
    types (the common case: serialising it was a large part of the merge); else `dumps`."""
    if tuple(record) == FILE_META_FIELDS and type(record["size_bytes"]) is int \
            and type(record["mimetype"]) is str:
        return (f'{{"md5hex": "{record["md5hex"]}", "mimetype": {encode_basestring(record["mimetype"])}, '
                f'"sha1hex": "{record["sha1hex"]}", "sha256hex": "{record["sha256hex"]}", '
                f'"size_bytes": {int.__repr__(record["size_bytes"])}}}').encode()
    return dumps(record).encode()


def _merge_one(path: str, out_part: str, rejects_part: str,
               latest: dict[int, bytes] | None = None) -> dict:
    """Merge one result file into its own output and rejects parts (run in a worker process);
    a line in `latest` (the retry pass's result of that request) replaces the file's own."""
    source = os.path.basename(path)
    statuses: Counter = Counter()
    n_source = 0
    latest = latest or {}
    with SplitWriter("merge", out_part, rejects_part) as split:
        for n, raw in iter_raw_lines(path):
            n_source += 1
            raw = latest.get(n, raw)
            obj = decode_fields(_DECODER, _FIELDS, n, raw)
            if isinstance(obj, BadLine):
                split.reject_bad_line(obj, source)
                continue
            statuses[str(obj.get("status"))] += 1
            reason = drop_reason(obj)
            if reason is None:
                split.keep_raw(file_meta_line(file_meta_record(obj["file_meta"])))
            else:
                split.reject_text(reason, n, source, raw.decode("utf-8"))
        counts = split.publish(n_source)
    return counts | {"status": statuses, "source": source}


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
    workers = max(1, min(workers or os.cpu_count() or 1, len(result_paths)))
    # named like every temporary file (`temp_suffix`): a rerun after a kill sweeps it away
    with tempfile.TemporaryDirectory(prefix=".merge-parts-", suffix=temp_suffix(),
                                     dir=out_dir) as tmp:
        latest = latest or {}
        jobs = [(path, os.path.join(tmp, f"out-{i:04d}{suffix}"),
                 os.path.join(tmp, f"rej-{i:04d}{rej_suffix}"),
                 latest.get(os.path.basename(path))) for i, path in enumerate(result_paths)]
        if workers == 1:
            parts = [_counted(_merge_one(*job), progress) for job in jobs]
        else:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                parts = [_counted(part, progress)
                         for part in pool.map(_merge_one, *zip(*jobs, strict=True))]
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
