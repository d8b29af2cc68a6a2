"""Read one WARC record at an index row's offset and check it is the record the row names.

Shared by the local collection and the HTTP range reader: both hand us a
byte stream that starts at `warc_offset` and is limited to `warc_csize`
bytes. Everything that can be wrong with a stored capture (not a record at
that offset, truncated gzip, another URL, a payload whose SHA-1 differs from
the index) becomes `WaybackContentError` (docs/statuses.md), so a damaged archive
is reported, never ingested. The body is streamed: at most `max_bytes + 1`
decoded bytes are held, while the digest is computed over every stored
payload byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.limitreader import LimitReader

from pipeline.archive.model import ArchiveUnreadable, CdxRow, WaybackContentError
from pipeline.archive.rows import normalise_digest, sha1_hex_to_b32

_CHUNK = 256 * 1024


@dataclass
class StoredRecord:
    """What one WARC record says, after verification against its row."""

    rec_type: str  # response | revisit | resource
    target_uri: str
    status_code: int | None
    headers: dict[str, str] | None  # None: the record has no HTTP headers
    body: bytes
    body_truncated: bool
    refers_to_uri: str | None = None
    refers_to_date: str | None = None  # 14 digits
    # SHA-1 (hex) of `body`, when the body is exactly every stored payload byte (no
    # content decoding, not truncated): the digest check hashed those very bytes, so
    # file_meta need not hash them again. None when the body differs from them.
    body_sha1hex: str | None = None


def read_record(stream, row: CdxRow, max_bytes: int) -> StoredRecord:
    """Parse the record at the start of `stream` (already limited to the row's csize)."""
    try:
        iterator = _IsalArchiveIterator(LimitReader(stream, row.warc_csize))
        record = next(iter(iterator), None)
    except ArchiveUnreadable:
        raise  # the disk failed, not the record
    except Exception as exc:  # warcio signals damage with many exception types
        raise WaybackContentError(f"no readable WARC record at {_where(row)}: {_brief(exc)}") from exc
    if record is None:
        raise WaybackContentError(f"no WARC record at {_where(row)} (truncated or empty)")
    try:
        return _verified(iterator, record, row, max_bytes)
    except (WaybackContentError, ArchiveUnreadable):
        raise
    except Exception as exc:
        raise WaybackContentError(f"unreadable WARC record at {_where(row)}: {_brief(exc)}") from exc


def _verified(iterator, record, row: CdxRow, max_bytes: int) -> StoredRecord:
    rec_type = record.rec_type
    if rec_type not in ("response", "revisit", "resource"):
        raise WaybackContentError(f"record at {_where(row)} is a {rec_type!r} record, not a capture")
    target = record.rec_headers.get_header("WARC-Target-URI") or ""
    if target != row.url:
        raise WaybackContentError(
            f"record at {_where(row)} is for {target!r}, the index row says {row.url!r}")

    raw = record.raw_stream
    hashing = _HashingReader(raw)
    record.raw_stream = hashing  # content_stream() decodes what we hash
    content = record.content_stream()
    body, truncated = read_capped(_bounded_chunks(content, max_bytes), max_bytes)
    hashing.drain()
    remaining = raw.limit if isinstance(raw, LimitReader) else 0
    if remaining:
        raise WaybackContentError(f"record at {_where(row)} is truncated ({remaining} bytes short)")
    _check_member_end(iterator, row)

    if rec_type == "revisit":
        declared = record.rec_headers.get_header("WARC-Payload-Digest")
        if declared and _digest_or_none(declared) not in (None, row.sha1b32):
            raise WaybackContentError(
                f"revisit at {_where(row)} declares digest {declared}, the index row {row.sha1b32}")
    body_sha1hex = None
    if rec_type != "revisit":
        stored_sha1hex = hashing.sha1.hexdigest()
        actual = sha1_hex_to_b32(stored_sha1hex)
        if actual != row.sha1b32:
            raise WaybackContentError(
                f"payload digest {actual} at {_where(row)} differs from the index row's {row.sha1b32}")
        # warcio hands back the raw stream itself when nothing is to be decoded; then the
        # body is the hashed bytes, all of them unless it was cut at max_bytes.
        if content is hashing and not truncated:
            body_sha1hex = stored_sha1hex

    http = record.http_headers
    headers = headers_dict(http.headers) if http is not None else None
    status = int(http.get_statuscode()) if http is not None else None
    if rec_type == "resource":
        content_type = record.rec_headers.get_header("Content-Type") or ""
        headers, status = {"content-type": content_type}, 200
    return StoredRecord(
        rec_type=rec_type,
        target_uri=target,
        status_code=status,
        headers=headers,
        body=body,
        body_truncated=truncated,
        refers_to_uri=record.rec_headers.get_header("WARC-Refers-To-Target-URI"),
        refers_to_date=warc_date_to_14(record.rec_headers.get_header("WARC-Refers-To-Date")),
        body_sha1hex=body_sha1hex,
    )


def headers_dict(pairs) -> dict[str, str]:
    """Header pairs -> dict with lower-cased keys; repeated headers joined by ", "."""
    result: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        result[key] = f"{result[key]}, {value}" if key in result else value
    return result


def warc_date_to_14(value: str | None) -> str | None:
    """`2020-01-01T00:00:00Z` (any precision) -> `20200101000000`; None when absent/odd."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())[:14]
    return digits if len(digits) == 14 else None


def _bounded_chunks(stream, max_bytes: int) -> Iterator[bytes]:
    """The stream's chunks, never reading past max_bytes + 1 bytes of it."""
    held = 0
    while held <= max_bytes:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - held))
        if not chunk:
            return
        held += len(chunk)
        yield chunk


def read_capped(chunks: Iterable[bytes], max_bytes: int) -> tuple[bytes, bool]:
    """At most max_bytes + 1 bytes of `chunks`; returns (the first max_bytes, whether there
    were more). Shared by the WARC reader and the replay client: a body above the limit is
    `body-too-large`, and more than max_bytes + 1 is never held."""
    parts: list[bytes] = []
    held = 0
    for chunk in chunks:
        if held + len(chunk) > max_bytes:
            # one byte past the limit says "truncated"; only the limit's bytes are joined (a
            # copy of the whole body cut at the end would hold it three times over at once)
            parts.append(chunk[: max_bytes - held])
            return b"".join(parts), True
        parts.append(chunk)
        held += len(chunk)
    return b"".join(parts), False


def _check_member_end(iterator, row: CdxRow) -> None:
    """A gzip member must end inside csize: a cut-off trailer is a truncated record too."""
    reader = iterator.reader
    while reader.read(_CHUNK):
        pass
    decompressor = getattr(reader, "decompressor", None)
    if decompressor is not None and hasattr(decompressor, "eof") and not decompressor.eof:
        raise WaybackContentError(f"gzip member at {_where(row)} is truncated")


def _digest_or_none(value: str) -> str | None:
    try:
        return normalise_digest(value)
    except ValueError:
        return None


def _brief(exc: Exception) -> str:
    """warcio quotes the bytes it choked on; keep messages short and printable."""
    text = str(exc).encode("ascii", "backslashreplace").decode("ascii")
    return f"{type(exc).__name__}: {text[:160]}"


def _where(row: CdxRow) -> str:
    return f"{row.warc_path}@{row.warc_offset}+{row.warc_csize}"


class _IsalReader(DecompressingBufferedReader):
    """warcio's record reader with the record's gzip member inflated by isal.

    Why: inflating is most of the CPU an ingest spends on a stored PDF, and isal
    inflates the same bytes 2-3x faster than zlib (a 129 MiB body: 0.31 s against
    0.86 s) with the same checks (header, CRC, length). Only the WARC member's own
    gzip is inflated here; an HTTP Content-Encoding inside the record is still decoded
    by warcio's own decompressors, as before.
    """

    DECOMPRESSORS = {**DecompressingBufferedReader.DECOMPRESSORS,
                     "gzip": lambda: isal_zlib.decompressobj(wbits=16 + isal_zlib.MAX_WBITS)}


class _IsalArchiveIterator(ArchiveIterator):
    """warcio's ArchiveIterator reading through `_IsalReader` (its reader is made in
    `__init__` and first used by the iteration, so it is swapped before any byte is read)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.reader = _IsalReader(self.fh)


class _HashingReader:
    """Passes reads through while hashing them, so the digest covers stored bytes."""

    def __init__(self, stream):
        self.stream = stream
        self.sha1 = hashlib.sha1()

    def read(self, length=-1):
        data = self.stream.read(length) if length not in (None, -1) else self.stream.read()
        self.sha1.update(data)
        return data

    def readline(self, length=-1):
        data = self.stream.readline(length) if length not in (None, -1) else self.stream.readline()
        self.sha1.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        pass
