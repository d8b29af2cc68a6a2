"""A small record parsed whole gives what warcio's streaming parse gives, or is left to it.

`read_record(..., whole=True)` parses plain records in one pass (pipeline.archive.warcwhole)
and hands every other one to warcio. Each case here reads the same stored bytes both ways
and asks for the same outcome: an equal `StoredRecord`, or the same error and message. Each
case also says whether the one-pass parser takes it, so a parser that declined everything
(and so always agreed) would fail here too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
from pathlib import Path

import pytest

from pipeline.archive.model import CdxError, CdxRow, WaybackContentError
from pipeline.archive.rows import parse_index_line
from pipeline.archive.warcread import read_record
from pipeline.archive.warcwhole import WHOLE_MAX_CSIZE, parse_whole

URL = "http://example.com/a.pdf"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
WORLD = Path(__file__).resolve().parent.parent / "data" / "world" / "collection"


def outcome(member: bytes, row: CdxRow, max_bytes: int, whole: bool):
    try:
        return read_record(io.BytesIO(member), row, max_bytes, whole=whole)
    except WaybackContentError as exc:
        return ("WaybackContentError", str(exc))


def assert_same(member: bytes, row: CdxRow, max_bytes: int = 10**9) -> None:
    assert outcome(member, row, max_bytes, True) == outcome(member, row, max_bytes, False)


def sha1b32(data: bytes) -> str:
    return base64.b32encode(hashlib.sha1(data).digest()).decode()


def row_for(member: bytes, payload: bytes = PDF, url: str = URL,
            mimetype: str = "application/pdf") -> CdxRow:
    return CdxRow(surt="com,example)/a.pdf", datetime="20200101000000", url=url,
                  mimetype=mimetype, status_code=200, sha1b32=sha1b32(payload),
                  sha1hex=hashlib.sha1(payload).hexdigest(), warc_path="t.warc.gz",
                  warc_offset=0, warc_csize=len(member))


def http_block(payload: bytes = PDF, status: str = "HTTP/1.1 200 OK",
               headers: tuple[str, ...] = ("Content-Type: application/pdf",),
               eol: str = "\r\n") -> bytes:
    return (eol.join((status, *headers)) + eol + eol).encode("utf-8") + payload


def record(block: bytes, rec_type: str = "response", url: str = URL,
           extra: tuple[str, ...] = (), length: str | None = None,
           version: str = "WARC/1.0", payload: bytes = PDF) -> bytes:
    headers = [version, f"WARC-Type: {rec_type}", f"WARC-Target-URI: {url}",
               "WARC-Date: 2020-01-01T00:00:00Z",
               f"WARC-Payload-Digest: sha1:{sha1b32(payload)}",
               "Content-Type: application/http; msgtype=response",
               f"Content-Length: {len(block) if length is None else length}", *extra]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + block + b"\r\n\r\n"


def member(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


PLAIN = record(http_block())

# (case, stored record bytes, whether the one-pass parser takes it)
CASES = [
    ("plain response", member(PLAIN), True),
    ("WARC/1.1", member(record(http_block(), version="WARC/1.1")), True),
    ("HTTP/1.0", member(record(http_block(status="HTTP/1.0 200 OK"))), True),
    ("status without a reason", member(record(http_block(status="HTTP/1.1 200"))), True),
    ("no HTTP header lines", member(record(http_block(headers=()))), True),
    ("a redirect", member(record(http_block(
        b"", status="HTTP/1.1 302 Found", headers=("Location: /b.pdf",)),
        payload=b"")), True),
    ("repeated HTTP headers", member(record(http_block(
        headers=("Set-Cookie: a=1", "set-cookie: b=2", "Content-Type: application/pdf")))),
     True),
    ("header names in another case", member(
        PLAIN.replace(b"Content-Length:", b"content-LENGTH:")), True),
    ("spaces around a value", member(
        PLAIN.replace(b"WARC-Target-URI: ", b"WARC-Target-URI:   ")
        .replace(b"\r\nWARC-Date", b"  \r\nWARC-Date", 1)), True),
    ("repeated target: the first counts", member(record(
        http_block(), extra=("WARC-Target-URI: http://example.com/other.pdf",))), True),
    ("another URL than the row's", member(record(
        http_block(), url="http://example.com/b.pdf")), True),
    ("payload digest differs", member(record(http_block(PDF + b"x"))), True),
    ("a resource record", member(record(
        PDF, rec_type="resource", extra=("Content-Type: application/pdf",))), True),
    ("a revisit with HTTP headers", member(record(
        http_block(b""), rec_type="revisit", payload=PDF)), True),
    ("a revisit declaring another digest", member(record(
        http_block(b""), rec_type="revisit", payload=b"other")), True),
    ("block longer than its length", member(record(
        http_block(), length=str(len(http_block()) - 3))), True),
    ("WARC/0.18", member(record(http_block(), version="WARC/0.18")), False),
    ("no Content-Length", member(PLAIN.replace(b"Content-Length", b"X-Length")), False),
    ("Content-Length not a number", member(record(http_block(), length="12a")), False),
    ("Content-Length of 5,000 digits", member(record(http_block(), length="9" * 5000)), False),
    ("HTTP headers past the first 64 KiB of a longer record", member(record(http_block(
        PDF * 40, headers=(f"X-Pad: {'p' * (70 << 10)}",)), payload=PDF * 40)), False),
    ("a record longer than the first 64 KiB", member(record(
        http_block(PDF * 40), payload=PDF * 40)), True),
    ("block shorter than its length", member(record(
        http_block(), length=str(len(http_block()) + 50))), False),
    ("continuation line", member(PLAIN.replace(
        b"WARC-Date: 2020-01-01T00:00:00Z", b"WARC-Date: 2020-01-01\r\n T00:00:00Z")), False),
    ("header line without a colon", member(PLAIN.replace(
        b"WARC-Date: 2020-01-01T00:00:00Z", b"WARC-Date 20200101")), False),
    ("bytes outside ASCII in a header", member(record(http_block(
        headers=("Content-Type: application/pdf", "X-Name: caf\u00e9")))), False),
    ("target URI in angle brackets", member(record(http_block(), url=f"<{URL}>")), False),
    ("target URI with a space", member(record(http_block(), url=URL + " x")), False),
    ("Content-Encoding", member(record(http_block(
        gzip.compress(PDF, mtime=0), headers=("Content-Encoding: gzip",)))), False),
    ("chunked", member(record(http_block(
        b"5\r\n%PDF-\r\n0\r\n\r\n", headers=("Transfer-Encoding: chunked",)))), False),
    ("status code not a number", member(record(http_block(status="HTTP/1.1 2x0 OK"))), False),
    ("lower-case protocol", member(record(http_block(status="http/1.1 200 OK"))), False),
    ("HTTP headers ended by bare LF", member(record(http_block(eol="\n"))), False),
    ("a request record", member(record(http_block(), rec_type="request")), False),
    ("a warcinfo record", member(record(b"software: x\r\n", rec_type="warcinfo")), False),
    ("a dns: response", member(record(http_block(), url="dns:example.com")), False),
    ("empty response block", member(record(b"")), False),
    ("not gzip at all", PLAIN, False),
    ("two gzip members", member(PLAIN) + member(PLAIN), False),
    ("junk after the member", member(PLAIN) + b"junk", False),
    ("member cut in its trailer", member(PLAIN)[:-3], False),
    ("member cut in the middle", member(PLAIN)[: len(member(PLAIN)) // 2], False),
    ("member cut in its header", member(PLAIN)[:6], False),
    ("empty", b"", False),
]


@pytest.mark.parametrize("case,stored,taken", CASES, ids=[c[0] for c in CASES])
def test_parsed_whole_or_left_to_warcio_the_outcome_is_the_same(case, stored, taken):
    assert (parse_whole(stored) is not None) == taken
    row = row_for(stored)
    for max_bytes in (10**9, len(PDF), len(PDF) - 1, 0):
        assert_same(stored, row, max_bytes)


def test_a_plain_record_is_parsed_whole_into_the_capture_warcio_gives():
    stored = member(PLAIN)
    got = read_record(io.BytesIO(stored), row_for(stored), 10**6, whole=True)
    assert got.body == PDF and got.status_code == 200
    assert got.headers == {"content-type": "application/pdf"}
    assert got.body_sha1hex == hashlib.sha1(PDF).hexdigest() and not got.body_truncated


def test_a_record_declaring_more_than_the_bound_is_not_inflated_whole():
    """Its headers say it is larger than a whole parse may hold: declined after the first
    64 KiB, not after inflating 8 MiB of it (48 MiB of zeros is a 48 KiB member)."""
    zeros = bytes(48 << 20)
    stored = member(record(http_block(zeros), payload=zeros))
    assert len(stored) < WHOLE_MAX_CSIZE and parse_whole(stored) is None
    row = row_for(stored, zeros)
    for max_bytes in (1 << 20, 10**9):
        assert_same(stored, row, max_bytes)


def world_records():
    """(row, stored bytes) of every readable row of the sample world's indexes."""
    for index in sorted((WORLD / "indexes").iterdir()):
        for line in index.read_text("utf-8", "replace").splitlines():
            try:
                row = parse_index_line(line, cdxj=index.suffix == ".cdxj")
            except CdxError:
                continue  # broken on purpose: the index reader's business
            path = WORLD / "archive" / row.warc_path
            if row.warc_path in ("", "-") or not path.is_file():
                continue
            with open(path, "rb") as f:
                f.seek(row.warc_offset)
                yield row, f.read(row.warc_csize)


def test_every_record_of_the_sample_world_reads_the_same_both_ways():
    """The sample world holds what the ingest meets: PDFs, landing pages, redirects,
    revisits, records damaged on purpose, a body above the size limit."""
    taken = seen = 0
    for row, stored in world_records():
        seen += 1
        taken += parse_whole(stored) is not None
        for max_bytes in (128 << 20, 1000):
            assert outcome(stored, row, max_bytes, True) == outcome(stored, row, max_bytes, False), row
    assert seen > 1000 and taken / seen > 0.9, (taken, seen)
