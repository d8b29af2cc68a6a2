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


def _is_hex(value, length: int) -> bool:
    return isinstance(value, str) and _HEX_FULLMATCH[length](value) is not None


def drop_reason(result: dict) -> str | None:
    """Why an ingest result yields no file_meta record, or None when it does."""
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
    if any(isinstance(fm.get(k), float) and not math.isfinite(fm[k]) for k in ("size_bytes", "mimetype")):
        return "bad-file-meta"  # `1e999` parses as inf, which cannot be written back as JSON
    if fm["sha1hex"].lower() != sha1.lower():
        return "sha1-mismatch"
    return None


def file_meta_record(fm: dict) -> dict:
    """The five fields of a good result's file_meta, hex digests lower-cased."""
    return {k: fm[k].lower() if k in HEX_LENGTHS else fm[k] for k in FILE_META_FIELDS if k in fm}
