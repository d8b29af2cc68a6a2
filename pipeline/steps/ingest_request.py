"""Turn each file entity lacking sha256 into an ingest request (SPEC §2.2).

The checks run in a fixed order and the first failing one is the reject
reason, so the rejects file explains every entity that does not become a
request. Wayback URLs are never converted back to original URLs: the ingest
looks the original URL up in the archive itself.
"""

from __future__ import annotations

import os
import re

from pipeline.jsonio import BadLine, iter_objects
from pipeline.steps.split import SplitWriter

ARCHIVE_MARKERS = ("://web.archive.org/", "://archive.org/")
SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")


class Rejected(Exception):
    """An entity that cannot become a request; `reason` is the SPEC reject reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def first_usable_url(urls) -> str | None:
    """The first URL (array order, `rel` ignored) that is not a wayback/archive.org URL."""
    for item in urls or []:
        url = item.get("url") if isinstance(item, dict) else None
        if url and not any(m in url for m in ARCHIVE_MARKERS):
            return url
    return None


def clean_sha1(value) -> str:
    """The lower-case form of a 40-hex-digit SHA-1; `Rejected("bad-sha1")` for anything else.

    A malformed sha1 would be fetched and then fail as `sha1-mismatch`; an
    upper-case one would match in the merge but never find its entity
    (`skip-no-match`): both are caught here, where the export is read.
    """
    if not isinstance(value, str) or not SHA1_HEX.fullmatch(value):
        raise Rejected("bad-sha1")
    return value.lower()


def build_request(entity: dict) -> dict:
    """SPEC §2.2, checks in order; raises `Rejected` with the first failing reason."""
    mimetype = entity.get("mimetype")
    if mimetype and mimetype != "application/pdf":
        raise Rejected("not-pdf-mimetype")
    state = entity.get("state")
    if state and state != "active":
        raise Rejected("not-active")
    base_url = first_usable_url(entity.get("urls"))
    if base_url is None:
        raise Rejected("no-usable-url")
    sha1 = entity.get("sha1")
    if not sha1:
        raise Rejected("no-sha1")
    sha1 = clean_sha1(sha1)
    return {
        "base_url": base_url,
        "ext_ids": {"sha1": sha1},
        "ingest_request_source": "file-backfill",
        "ingest_type": "pdf",
        "link_source": "fatcat",
        "link_source_id": f"file_{entity.get('ident', '')}",
    }


def build_requests(entities_path: str, out_path: str, rejects_path: str) -> dict:
    """Write one request per usable entity; every other line goes to rejects with its reason."""
    n_in = 0
    source = os.path.basename(entities_path)
    with SplitWriter("ingest requests", out_path, rejects_path) as split:
        for n, obj in iter_objects(entities_path):
            n_in += 1
            if isinstance(obj, BadLine):
                split.reject_bad_line(obj, source)
                continue
            try:
                split.keep(build_request(obj))
            except Rejected as r:
                split.reject(r.reason, n, source, obj)
        return split.publish(n_in)
