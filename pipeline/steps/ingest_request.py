"""Turn each file entity lacking sha256 into an ingest request (docs/data.md).

The checks run in a fixed order and the first failing one is the reject
reason, so the rejects file explains every entity that does not become a
request. Wayback URLs are never converted back to original URLs: the ingest
looks the original URL up in the archive itself.
"""

from __future__ import annotations

import os
import re
from json.encoder import encode_basestring

from pipeline.ingest.urls import is_http_url
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import dumps, iter_raw_lines
from pipeline.jsonline import BadLine
from pipeline.progress import Progress, counting
from pipeline.steps.split import SplitWriter

# the fields build_request reads: only these are built from each line (pipeline/jsonfast.py)
_FIELDS = ("mimetype", "state", "urls", "sha1", "ident")
_DECODER = struct_decoder("EntityForRequest", _FIELDS)

ARCHIVE_MARKERS = ("://web.archive.org/", "://archive.org/")
SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")


class Rejected(Exception):
    """An entity that cannot become a request; `reason` is the reject reason of docs/data.md."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def first_usable_url(urls) -> str | None:
    """The first URL (array order, `rel` ignored) that is not a wayback/archive.org URL.

    A mistyped `urls` (not a list) or `url` (not a string), or a URL that is not
    http(s) with a host (`ftp:`, `http://[bad`), is not usable: the ingest could
    not fetch it, and one such entity must not stop a whole shard.
    """
    if not isinstance(urls, list):
        return None
    for item in urls:
        url = item.get("url") if isinstance(item, dict) else None
        if is_http_url(url) and not any(m in url for m in ARCHIVE_MARKERS):
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
    """docs/data.md, checks in order; raises `Rejected` with the first failing reason."""
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


_REQUEST_KEYS = ("base_url", "ext_ids", "ingest_request_source", "ingest_type", "link_source",
                 "link_source_id")


def request_line(req: dict) -> bytes:
    """`dumps(req)` as bytes, spelled out for the one shape `build_request` makes.

    Why: serialising half a million small dicts was the step's largest cost.
    The text is the same (sorted keys, the same separators, strings escaped
    by the encoder `dumps` uses); any other shape goes through `dumps`.
    """
    url, ext_ids, lsid = req["base_url"], req["ext_ids"], req["link_source_id"]
    if (tuple(req) != _REQUEST_KEYS or type(url) is not str or list(ext_ids) != ["sha1"]
            or req["ingest_request_source"] != "file-backfill" or req["ingest_type"] != "pdf"
            or req["link_source"] != "fatcat"):
        return dumps(req).encode("utf-8")
    return (f'{{"base_url": {encode_basestring(url)}, "ext_ids": {{"sha1": '
            f'{encode_basestring(ext_ids["sha1"])}}}, "ingest_request_source": "file-backfill", '
            f'"ingest_type": "pdf", "link_source": "fatcat", "link_source_id": '
            f'{encode_basestring(lsid)}}}').encode()


def build_requests(entities_path: str, out_path: str, rejects_path: str,
                   progress: Progress | None = None) -> dict:
    """Write one request per usable entity; every other line goes to rejects with its reason."""
    n_in = 0
    source = os.path.basename(entities_path)
    with SplitWriter("ingest requests", out_path, rejects_path) as split:
        for n, raw in counting(iter_raw_lines(entities_path), progress):
            n_in += 1
            obj = decode_fields(_DECODER, _FIELDS, n, raw)
            if isinstance(obj, BadLine):
                split.reject_bad_line(obj, source)
                continue
            try:
                split.keep_raw(request_line(build_request(obj)))
            except Rejected as r:
                # a rejects line carries the whole entity, as the line's own text
                split.reject_text(r.reason, n, source, raw.decode("utf-8"))
        return split.publish(n_in)
