"""Full file metadata of a fetched body (docs/data.md), and undoing a gzip transfer encoding.

Why: the catalog entities lack sha256/md5/size/mimetype; this is where those
values are computed, so the hashing contract lives in exactly one place.
Hashes and size are over the whole body; the mimetype is libmagic's verdict on
the head of the body, refined for XHTML and JATS, which libmagic calls plain XML.

libmagic handles are not safe to share between threads, and opening one loads
the magic database (slow, and each handle maps the whole ~8 MB database), so
handles are reused from a small pool: at most one per CPU exists, whatever the
number of threads (a shard at concurrency 64 used to hold 64 of them, ~160 MB
of its peak RSS). A sniff is CPU work of a fraction of a millisecond, so more
handles than CPUs would only wait for the GIL or a core anyway.
"""

from __future__ import annotations

import hashlib
import threading
import zlib

import magic

from pipeline.jsonio import GZIP_MAGIC
from pipeline.ordered_pool import usable_cpus

MAGIC_HEAD_BYTES = 1024 * 1024  # libmagic sees at most the first 1 MiB
XML_SNIFF_BYTES = 1024  # the XHTML/JATS refinement looks at the first 1 KB
XML_MIMETYPES = frozenset({"application/xml", "text/xml"})
GZIP_MIMETYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/x-gzip-compressed",
        "application/gzip-compressed",
        "application/x-compressed",
        "application/x-tgz",
        "multipart/x-gzip",
    }
)

class MagicPool:
    """libmagic handles lent one at a time, at most `size` of them ever opened."""

    def __init__(self, size: int | None = None, factory=lambda: magic.Magic(mime=True)):
        self.size = size or max(2, usable_cpus())
        self.opened = 0
        self._factory = factory
        self._idle: list = []
        self._cond = threading.Condition()

    def from_buffer(self, data: bytes) -> str:
        handle = self._take()
        try:
            return handle.from_buffer(data)
        finally:
            with self._cond:
                self._idle.append(handle)
                self._cond.notify()

    def _take(self):
        with self._cond:
            while not self._idle and self.opened >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self.opened += 1  # counted before the slow open, so no other thread opens one more
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self.opened -= 1
                self._cond.notify()
            raise


_MAGIC = MagicPool()


class BadGzipEncoding(Exception):
    """The body looked gzip-transfer-encoded but does not decompress."""

    status = "bad-gzip-encoding"


class GzipTooLarge(Exception):
    """The body decompresses to more than the size limit."""

    status = "body-too-large"


def sniff_mimetype(body: bytes) -> str:
    """libmagic's mimetype of the body's head, with the XHTML/JATS refinement of docs/data.md."""
    mimetype = _MAGIC.from_buffer(body[:MAGIC_HEAD_BYTES])
    if mimetype in XML_MIMETYPES:
        head = body[:XML_SNIFF_BYTES]
        if b"<htm" in head and b"xmlns" in head and b"http://www.w3.org/1999/xhtml" in head:
            return "application/xhtml+xml"
        if b"<article " in head and b"<html" not in head:
            return "application/jats+xml"
    return mimetype


def file_meta(body: bytes, sha1hex: str | None = None) -> dict:
    """sha1hex, sha256hex, md5hex, size_bytes and mimetype of `body` (docs/data.md field names).

    `sha1hex`, when given, is the SHA-1 of exactly `body` that the archive reader
    computed while checking the index digest; it is used instead of hashing the
    body a second time (the largest bodies are the PDFs, hashed once less each).
    """
    return {
        "sha1hex": sha1hex or hashlib.sha1(body).hexdigest(),
        "sha256hex": hashlib.sha256(body).hexdigest(),
        "md5hex": hashlib.md5(body).hexdigest(),
        "size_bytes": len(body),
        "mimetype": sniff_mimetype(body),
    }


def is_gzip_mimetype(mimetype: str | None) -> bool:
    return (mimetype or "").split(";")[0].strip().lower() in GZIP_MIMETYPES


def undo_transfer_gzip(body: bytes, capture_mimetype: str | None, max_bytes: int) -> bytes:
    """Return the body with a leftover gzip transfer encoding undone, else the body itself.

    Why: some servers gzip a PDF on the wire without saying so in a way the
    crawler undid, so the archived payload is the gzip of the file and would
    hash wrong. A body that libmagic calls gzip while the capture itself says it
    is not gzip (a real .gz download keeps its gzip mimetype) is decompressed
    (every member). Raises `BadGzipEncoding` when it does not decompress and
    `GzipTooLarge` beyond `max_bytes`.
    """
    if not body.startswith(GZIP_MAGIC) or is_gzip_mimetype(capture_mimetype):
        return body
    if sniff_mimetype(body) not in GZIP_MIMETYPES:
        return body
    return gunzip_limited(body, max_bytes)


def gunzip_limited(data: bytes, max_bytes: int) -> bytes:
    """Decompress all gzip members of `data`, never holding more than `max_bytes` of output."""
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk = d.decompress(rest, max_bytes + 1 - len(out))
            out += chunk
            if len(out) > max_bytes or d.unconsumed_tail:
                raise GzipTooLarge(f"gzip-encoded body inflates beyond {max_bytes} bytes")
            if not d.eof:
                raise BadGzipEncoding("gzip-encoded body is truncated")
            rest = d.unused_data
            # trailing zero padding after the last member is tolerated, like gzip(1)
            if rest and not rest.startswith(GZIP_MAGIC):
                if rest.strip(b"\x00"):
                    raise BadGzipEncoding("trailing garbage after gzip member")
                break
    except zlib.error as e:
        raise BadGzipEncoding(f"gzip-encoded body does not decompress: {e}") from e
    return bytes(out)
