"""Index rows in every shape we meet them, turned into `CdxRow`s (or a `CdxError`).

The same capture reaches us as a pywb CDXJ line, a classic 11-field CDX line,
a pywb CDX-API JSON object or an Internet Archive CDX-API array row. All of
them become the same `CdxRow`, so the ingest result does not depend on the
path the row came by. A row we cannot read is a `CdxError`: a damaged index
must fail loudly (docs/statuses.md `cdx-error`), never look like "no capture".
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from pipeline.archive.model import CdxError, CdxRow
from pipeline.archive.surt import surt

_TIMESTAMP = re.compile(r"^\d{14}$")
_B32_SHA1 = re.compile(r"^[A-Z2-7]{32}$")
_HEX_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def sha1_b32_to_hex(b32: str) -> str:
    """Base32 SHA-1 (what indexes store) -> lower-case hex (what file_meta uses)."""
    return base64.b32decode(b32.upper()).hex()


def sha1_hex_to_b32(hexdigest: str) -> str:
    return base64.b32encode(binascii.unhexlify(hexdigest)).decode("ascii")


def normalise_digest(digest: str) -> str:
    """An index digest (`sha1:ABC...`, `ABC...`, lower-case, or 40 hex) -> upper base32."""
    value = digest.strip()
    if value.lower().startswith("sha1:"):
        value = value[5:]
    if _HEX_SHA1.match(value.lower()):
        return sha1_hex_to_b32(value.lower())
    value = value.upper()
    if not _B32_SHA1.match(value):
        raise ValueError(f"not a base32 SHA-1 digest: {digest!r}")
    return value


def make_row(*, urlkey: str, timestamp: str, url: str, mime: str, status: str | None,
             digest: str, length: str | None, offset: str | None,
             filename: str | None) -> CdxRow:
    """Validate raw index fields and build the row; ValueError names the bad field."""
    if not urlkey:
        raise ValueError("empty urlkey")
    if not _TIMESTAMP.match(timestamp or ""):
        raise ValueError(f"bad timestamp {timestamp!r}")
    if not url:
        raise ValueError("empty url")
    sha1b32 = normalise_digest(digest or "")
    status_code = None if status in (None, "", "-") else int(status)
    if status_code is not None and not 100 <= status_code <= 999:
        raise ValueError(f"bad status {status!r}")
    warc_path = filename if filename not in (None, "") else "-"
    warc_offset = 0 if offset in (None, "", "-") else int(offset)
    warc_csize = 0 if length in (None, "", "-") else int(length)
    if warc_offset < 0 or warc_csize < 0:
        raise ValueError("negative offset or length")
    return CdxRow(
        surt=urlkey,
        datetime=timestamp,
        url=url,
        mimetype=mime or "unk",
        status_code=status_code,
        sha1b32=sha1b32,
        sha1hex=sha1_b32_to_hex(sha1b32),
        warc_path=warc_path,
        warc_offset=warc_offset,
        warc_csize=warc_csize,
    )


def parse_cdxj_line(line: str) -> CdxRow:
    """`urlkey timestamp {json}` (pywb CDXJ) -> row; CdxError when unreadable."""
    try:
        urlkey, timestamp, blob = line.rstrip("\r\n").split(" ", 2)
        fields = json.loads(blob)
        if not isinstance(fields, dict):
            raise ValueError("the JSON part is not an object")
        return make_row(
            urlkey=urlkey, timestamp=timestamp, url=fields.get("url", ""),
            mime=fields.get("mime", ""), status=_str_or_none(fields.get("status")),
            digest=fields.get("digest", ""), length=_str_or_none(fields.get("length")),
            offset=_str_or_none(fields.get("offset")), filename=fields.get("filename"),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise CdxError(f"bad CDXJ line {_clip(line)!r}: {exc}") from exc


def parse_cdx11_line(line: str) -> CdxRow:
    """Classic `CDX N b a m s k r M S V g` line -> row; CdxError when unreadable."""
    fields = line.rstrip("\r\n").split(" ")
    if len(fields) != 11:
        raise CdxError(f"bad CDX line (expected 11 fields, got {len(fields)}): {_clip(line)!r}")
    urlkey, timestamp, url, mime, status, digest, _redirect, _meta, length, offset, filename = fields
    try:
        return make_row(urlkey=urlkey, timestamp=timestamp, url=url, mime=mime, status=status,
                        digest=digest, length=length, offset=offset, filename=filename)
    except (ValueError, TypeError) as exc:
        raise CdxError(f"bad CDX line {_clip(line)!r}: {exc}") from exc


def parse_index_line(line: str, cdxj: bool) -> CdxRow:
    return parse_cdxj_line(line) if cdxj else parse_cdx11_line(line)


def row_from_api_fields(fields: dict) -> CdxRow:
    """A CDX-API row as a dict, in pywb's names (url, mime, status) or IA's
    (original, mimetype, statuscode); CdxError when unreadable."""
    try:
        return make_row(
            urlkey=str(fields.get("urlkey", "")),
            timestamp=str(fields.get("timestamp", "")),
            url=str(fields.get("url", fields.get("original", ""))),
            mime=str(fields.get("mime", fields.get("mimetype", ""))),
            status=_str_or_none(fields.get("status", fields.get("statuscode"))),
            digest=str(fields.get("digest", "")),
            length=_str_or_none(fields.get("length")),
            offset=_str_or_none(fields.get("offset")),
            filename=_str_or_none(fields.get("filename")),
        )
    except (ValueError, TypeError) as exc:
        raise CdxError(f"bad CDX API row {_clip(json.dumps(fields))!r}: {exc}") from exc


def lookup_key(url: str, limit: int) -> str:
    """The SURT key an exact-URL lookup of `url` searches for, after checking `limit`.

    Raises ValueError for a limit below 1, CdxError for a URL that does not canonicalise.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    try:
        return surt(url)
    except ValueError as exc:
        raise CdxError(f"cannot canonicalise {url!r}: {exc}") from exc


def matches_url(row: CdxRow, key: str, url: str) -> bool:
    """Exact-URL rule: the row's own URL must canonicalise to `key`, the SURT of `url`, the
    URL asked for (`lookup_key`); a row of that very URL does by definition, without a
    second SURT (most rows: every lookup's).

    A SURT-key hit alone is not enough: indexes written by another
    canonicaliser (or a hand-edited one) can file a URL under a key it does
    not have.
    """
    if row.url == url:
        return True
    try:
        return surt(row.url) == key
    except ValueError:
        return False


def newest_first(rows: list[CdxRow], limit: int) -> list[CdxRow]:
    """The newest `limit` rows, newest first; equal timestamps keep their index order."""
    ordered = sorted(rows, key=lambda row: row.datetime, reverse=True)
    return ordered[:limit]


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _clip(text: str, size: int = 300) -> str:
    return text if len(text) <= size else text[:size] + "..."
