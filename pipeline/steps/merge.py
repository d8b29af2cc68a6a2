"""Merge ingest results into `file_meta` records whose fetched SHA-1 is the one asked for.

The runbook merged shard outputs and an earlier batch by hand with `jq`, and
kept a record only when the file fetched was the file the catalog meant
(`file_meta.sha1hex == request.ext_ids.sha1`). This step does the same over
every shard plus any `extra_results` files, and writes each dropped result to
a rejects file with its reason instead of letting it disappear:

- `invalid-json` / `not-an-object`: the line is not a JSON object;
- `bad-result`: no `request.ext_ids.sha1` to compare with;
- `ingest-failed`: not a hit (any status but `success`), so no trustworthy file;
- `no-file-meta`: a hit without file_meta (should not happen; kept visible);
- `bad-sha1`: the request's sha1 or the file_meta's `sha1hex` is not 40 hex
  digits (earlier result files were written by other tools);
- `bad-file-meta`: `sha256hex` / `md5hex` present but not 64 / 32 hex digits;
- `sha1-mismatch`: the archive served a different file than the catalog's.

Hex digests are written lower-case whatever case the input used, so the
import finds the entity by sha1.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from json.encoder import encode_basestring

from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import BadLine, dumps, iter_raw_lines
from pipeline.steps.split import SplitWriter

# the fields drop_reason and the output read: only these are built from each result line
# (pipeline/jsonfast.py); cdx, terminal, hops and the rest are validated but not built
_FIELDS = ("request", "hit", "status", "file_meta")
_DECODER = struct_decoder("ResultForMerge", _FIELDS)

FILE_META_KEYS = ("sha1hex", "sha256hex", "md5hex", "size_bytes", "mimetype")
HEX_LENGTHS = {"sha1hex": 40, "sha256hex": 64, "md5hex": 32}


_HEX_FULLMATCH = {n: re.compile(f"[0-9a-fA-F]{{{n}}}").fullmatch for n in (32, 40, 64)}


def _is_hex(value, length: int) -> bool:
    return isinstance(value, str) and _HEX_FULLMATCH[length](value) is not None


def drop_reason(result: dict) -> str | None:
    """Why a result yields no file_meta record, or None when it does."""
    request = result.get("request")
    sha1 = None
    if isinstance(request, dict) and isinstance(request.get("ext_ids"), dict):
        sha1 = request["ext_ids"].get("sha1")
    if not sha1:
        return "bad-result"
    if not result.get("hit") or result.get("status") != "success":
        return "ingest-failed"
    fm = result.get("file_meta")
    if not isinstance(fm, dict) or not fm.get("sha1hex"):
        return "no-file-meta"
    if not _is_hex(sha1, 40) or not _is_hex(fm["sha1hex"], 40):
        return "bad-sha1"
    if any(k in fm and not _is_hex(fm[k], n) for k, n in HEX_LENGTHS.items()):
        return "bad-file-meta"
    if fm["sha1hex"].lower() != sha1.lower():
        return "sha1-mismatch"
    return None


def file_meta_record(fm: dict) -> dict:
    """The SPEC §2.3 fields of a good result's file_meta, hex digests lower-cased."""
    return {k: fm[k].lower() if k in HEX_LENGTHS else fm[k] for k in FILE_META_KEYS if k in fm}


def file_meta_line(record: dict) -> bytes:
    """`dumps(record)` as bytes, spelled out for a record with all five fields of the usual
    types (the common case: serialising it was a large part of the merge); else `dumps`."""
    if tuple(record) == FILE_META_KEYS and type(record["size_bytes"]) is int \
            and type(record["mimetype"]) is str:
        return (f'{{"md5hex": "{record["md5hex"]}", "mimetype": {encode_basestring(record["mimetype"])}, '
                f'"sha1hex": "{record["sha1hex"]}", "sha256hex": "{record["sha256hex"]}", '
                f'"size_bytes": {int.__repr__(record["size_bytes"])}}}').encode()
    return dumps(record).encode()


def merge_results(result_paths: list[str], out_path: str, rejects_path: str) -> dict:
    """Write the file_meta of every good result, in input order; count the rest by reason."""
    n_in = 0
    statuses: Counter = Counter()
    per_source: dict[str, int] = {}
    with SplitWriter("merge", out_path, rejects_path) as split:
        for path in result_paths:
            source = os.path.basename(path)
            n_source = 0
            for n, raw in iter_raw_lines(path):
                n_source += 1
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
            per_source[source] = n_source
            n_in += n_source
        counts = split.publish(n_in)
    return counts | {"status": dict(sorted(statuses.items())), "per_source": per_source}
