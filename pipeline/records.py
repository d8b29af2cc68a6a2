"""The file_meta record and the rule that makes one from an ingest result.

Why a module of its own: the merge step and the import's sample dry run must
apply exactly the same rule (a successful hit whose fetched sha1 is the sha1
the catalog asked for) and know the same five fields, so the rule and the
field list are written once, here, below both. Shapes: docs/data.md.
"""

from __future__ import annotations

import math
import re

# The fields of a file_meta record, in the order they are written.
FILE_META_FIELDS = ("sha1hex", "sha256hex", "md5hex", "size_bytes", "mimetype")
HEX_LENGTHS = {"sha1hex": 40, "sha256hex": 64, "md5hex": 32}


_HEX_FULLMATCH = {n: re.compile(f"[0-9a-fA-F]{{{n}}}").fullmatch for n in (32, 40, 64)}
_HEX40, _HEX64, _HEX32 = _HEX_FULLMATCH[40], _HEX_FULLMATCH[64], _HEX_FULLMATCH[32]


def drop_reason(result: dict) -> str | None:
    """Why an ingest result yields no file_meta record, or None when it does."""
    return drop_reason_of(result.get("request"), result.get("hit"), result.get("status"),
                          result.get("file_meta"))


def drop_reason_of(request, hit, status, fm) -> str | None:
    """`drop_reason` of a result given as its four fields (any falsy value: absent).

    Why spelled out test by test: the merge asks this of every result (hundreds of
    thousands), and the helper calls and generators of a shorter spelling were a third of
    the merge's time. The order of the tests is the rule: the first failing one names the
    reason.
    """
    sha1 = None
    if isinstance(request, dict):
        ext_ids = request.get("ext_ids")
        if isinstance(ext_ids, dict):
            sha1 = ext_ids.get("sha1")
    if not sha1:
        return "bad-result"
    if not hit or status != "success":
        return "ingest-failed"
    if not isinstance(fm, dict):
        return "no-file-meta"
    fm_sha1 = fm.get("sha1hex")
    if not fm_sha1:
        return "no-file-meta"
    if not (isinstance(sha1, str) and _HEX40(sha1) and isinstance(fm_sha1, str) and _HEX40(fm_sha1)):
        return "bad-sha1"
    if "sha256hex" in fm and not (isinstance(fm["sha256hex"], str) and _HEX64(fm["sha256hex"])):
        return "bad-file-meta"
    if "md5hex" in fm and not (isinstance(fm["md5hex"], str) and _HEX32(fm["md5hex"])):
        return "bad-file-meta"
    for k in ("size_bytes", "mimetype"):
        value = fm.get(k)
        if isinstance(value, float) and not math.isfinite(value):
            return "bad-file-meta"  # `1e999` parses as inf, which cannot be written back as JSON
    if fm_sha1 != sha1 and fm_sha1.lower() != sha1.lower():
        return "sha1-mismatch"
    return None


def file_meta_record(fm: dict) -> dict:
    """The five fields of a good result's file_meta, hex digests lower-cased."""
    return {k: fm[k].lower() if k in HEX_LENGTHS else fm[k] for k in FILE_META_FIELDS if k in fm}
