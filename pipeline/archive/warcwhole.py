"""A small, plainly formed WARC record parsed whole from its gzip member, in one pass.

Why: warcio parses a record line by line through three layers of buffered
readers, about a fifth of a millisecond of Python per record: on a local
archive of small PDFs and landing pages that was a third of the ingest's CPU
per request. Nearly every stored record is plain: one gzip member of a few
kilobytes, ASCII headers, an HTTP response with neither a Content-Encoding nor
chunking. Those are inflated at once and split here. Anything else (not one
whole gzip member, a header line this parser does not take exactly as warcio
does, a record cut short, a large one) gives None, and the caller hands the
same bytes to warcio's streaming parser: an unusual or damaged record gets the
very answer and message it always got. What is checked against the index row
is shared by both (`pipeline.archive.warcread`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from isal import isal_zlib

from pipeline.archive.model import CAPTURE_TYPES

WHOLE_MAX_CSIZE = 1 << 20  # stored (compressed) bytes read at once; larger records stream
WHOLE_MAX_BYTES = 8 << 20  # inflated; a member that inflates beyond streams too
_FIRST_BYTES = 64 << 10  # inflated first: the headers of any sane record
_END = b"\r\n\r\n"
_WARC_VERSIONS = (b"WARC/1.0\r\n", b"WARC/1.1\r\n")
_HTTP_STATUS = re.compile(r"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\Z")
# HTTP headers whose presence makes warcio decode the payload: left to it
_DECODED_BY_WARCIO = frozenset({"content-encoding", "transfer-encoding"})


@dataclass(frozen=True)
class WholeRecord:
    """One capture record as warcio would have read it."""

    rec_type: str  # response | revisit | resource
    warc_headers: dict[str, str]  # lower-cased names; the first of a repeated header
    http_status: int | None  # None: the record has no HTTP headers (a resource)
    http_headers: list[tuple[str, str]] | None
    payload: bytes  # every stored payload byte (after the HTTP headers)

    def header(self, name: str) -> str | None:
        """A WARC header's value by any case of its name, as warcio's `get_header`."""
        return self.warc_headers.get(name.lower())


class _Layout(NamedTuple):
    """Where a record's parts are, read from its headers (the payload may not be there yet)."""

    rec_type: str
    warc_headers: dict[str, str]
    http_status: int | None
    http_headers: list[tuple[str, str]] | None
    payload_at: int
    stop: int  # the end of the record's block


def parse_whole(member: bytes) -> WholeRecord | None:
    """The record in `member` (a WARC record's stored bytes), or None for warcio to read."""
    inflater = isal_zlib.decompressobj(wbits=16 + isal_zlib.MAX_WBITS)
    try:
        rec = inflater.decompress(member, _FIRST_BYTES)
        if not inflater.eof:
            # longer than its headers: inflated on only when they are ones read here and say
            # it fits, so a record left to warcio (or a highly compressed one) is not inflated
            # to the bound first
            head = _layout(rec)
            if head is None or head.stop > WHOLE_MAX_BYTES:
                return None
            rec += inflater.decompress(inflater.unconsumed_tail, WHOLE_MAX_BYTES - len(rec))
    except isal_zlib.error:
        return None
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        return None
    parts = _layout(rec)
    if parts is None or len(rec) < parts.stop:
        return None  # cut short: warcio says by how much
    return WholeRecord(parts.rec_type, parts.warc_headers, parts.http_status, parts.http_headers,
                       rec[parts.payload_at:parts.stop])


def _layout(rec: bytes) -> _Layout | None:
    """The parts of the record `rec` begins with, or None for anything warcio reads otherwise."""
    if not rec.startswith(_WARC_VERSIONS):
        return None
    end = rec.find(_END, len(_WARC_VERSIONS[0]) - 2)
    if end < 0:
        return None
    lines = header_lines(rec[len(_WARC_VERSIONS[0]):end])
    if not lines:
        return None
    headers: dict[str, str] = {}
    for name, value in lines:
        headers.setdefault(name.lower(), value)
    rec_type = headers.get("warc-type")
    length = headers.get("content-length", "")
    uri = headers.get("warc-target-uri", "")
    # warcio rewrites a target URI in <brackets> or with spaces for its own use: left to it;
    # a length of more digits than any record has is left to it too (int() refuses 4,300)
    if rec_type not in CAPTURE_TYPES or not length.isdigit() or len(length) > 18 or not uri \
            or uri[0] == "<" or " " in uri:
        return None
    start, stop = end + len(_END), end + len(_END) + int(length)
    if rec_type == "resource":
        return _Layout(rec_type, headers, None, None, start, stop)
    if start == stop or not uri.startswith(("http:", "https:")):
        return None  # no HTTP headers to parse: warcio's case
    head_end = rec.find(_END, start, stop)
    if head_end < 0:
        return None
    status_line, _, http_block = rec[start:head_end].partition(b"\r\n")
    if not status_line.isascii():
        return None
    status = _HTTP_STATUS.match(status_line.decode("ascii"))
    http = header_lines(http_block) if http_block else []
    if status is None or http is None or any(n.lower() in _DECODED_BY_WARCIO for n, _ in http):
        return None
    return _Layout(rec_type, headers, int(status.group(1)), http, head_end + len(_END), stop)


def header_lines(block: bytes) -> list[tuple[str, str]] | None:
    """(name, value) of each `Name: value` line of a header block, as warcio splits them; None
    for anything it would read otherwise (a continuation line, a line without a colon, a
    stray CR or LF, bytes outside ASCII, which it decodes by guessing)."""
    if not block.isascii():
        return None
    pairs = []
    for line in block.decode("ascii").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name or line[0] in " \t" or "\r" in line or "\n" in line:
            return None
        pairs.append((name.rstrip(" \t"), value.strip()))
    return pairs
