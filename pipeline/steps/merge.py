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
- `sha1-mismatch`: the archive served a different file than the catalog's.
"""

from __future__ import annotations

import os
from collections import Counter

from pipeline.base import check_balance
from pipeline.jsonio import AtomicWriter, BadLine, iter_objects, reject_bad_line, reject_record

FILE_META_KEYS = ("sha1hex", "sha256hex", "md5hex", "size_bytes", "mimetype")


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
    if fm["sha1hex"].lower() != sha1.lower():
        return "sha1-mismatch"
    return None


def merge_results(result_paths: list[str], out_path: str, rejects_path: str) -> dict:
    """Write the file_meta of every good result, in input order; count the rest by reason."""
    counts: Counter = Counter()
    reasons: Counter = Counter()
    statuses: Counter = Counter()
    per_source: dict[str, int] = {}
    with AtomicWriter(out_path) as out, AtomicWriter(rejects_path) as rej:
        for path in result_paths:
            source = os.path.basename(path)
            n_source = 0
            for n, obj in iter_objects(path):
                counts["in"] += 1
                n_source += 1
                if isinstance(obj, BadLine):
                    reasons[obj.reason] += 1
                    rej.write_obj(reject_bad_line(obj, source))
                    continue
                statuses[str(obj.get("status"))] += 1
                reason = drop_reason(obj)
                if reason is None:
                    fm = obj["file_meta"]
                    out.write_obj({k: fm.get(k) for k in FILE_META_KEYS if k in fm})
                else:
                    reasons[reason] += 1
                    rej.write_obj(reject_record(reason, n, source, record=obj))
            per_source[source] = n_source
        check_balance("merge", counts["in"], {"out": out.lines, "rejects": rej.lines})
        out.commit()
        rej.commit()
    return {
        "in": counts["in"],
        "out": out.lines,
        "rejects": rej.lines,
        "rejects_by_reason": dict(sorted(reasons.items())),
        "status": dict(sorted(statuses.items())),
        "per_source": per_source,
    }
