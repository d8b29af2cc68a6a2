"""Read one WARC record at an index row's offset and check it is the record the row names.

Shared by the local collection and the HTTP range reader: both hand us a
byte stream that starts at `warc_offset` and is limited to `warc_csize`
bytes. Everything that can be wrong with a stored capture (not a record at
that offset, truncated gzip, another URL, a payload whose SHA-1 differs from
the index) becomes `WaybackContentError` (docs/statuses.md), so a damaged archive
is reported, never ingested. A small plain record of a local collection is
parsed whole in one pass (`pipeline.archive.warcwhole`); any other is streamed
through warcio, inflated at most 1 MiB at a time, with at most `max_bytes + 1`
decoded bytes held (none when its stored length already says it is too large),
while the digest is computed over every stored payload byte. Both ways end in
the same checks (`_check_capture`, `_check_digest`), so both word a verdict alike.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.limitreader import LimitReader

from pipeline.archive.model import CAPTURE_TYPES, ArchiveUnreadable, CdxRow, WaybackContentError
from pipeline.archive.rows import normalise_digest, sha1_hex_to_b32
from pipeline.archive.warcwhole import WHOLE_MAX_CSIZE, WholeRecord, parse_whole

_CHUNK = 256 * 1024
_INFLATE_MAX = 1 << 20


@dataclass
class StoredRecord:
    """What one WARC record says, after verification against its row."""

    rec_type: str  # response | revisit | resource
    target_uri: str
    status_code: int | None
    headers: dict[str, str] | None  # None: the record has no HTTP headers
    body: bytes  # b"" when truncated
    body_truncated: bool  # the payload is larger than the reader's max_bytes
    refers_to_uri: str | None = None
    refers_to_date: str | None = None  # 14 digits
    # SHA-1 (hex) of `body`, when the body is exactly every stored payload byte (no
    # content decoding, not truncated): the digest check hashed those very bytes, so
    # file_meta need not hash them again. None when the body differs from them.
    body_sha1hex: str | None = None


def read_record(stream, row: CdxRow, max_bytes: int, whole: bool = False) -> StoredRecord:
    """Parse the record at the start of `stream` (already limited to the row's csize).

    `whole`: the stream may be read to the row's csize at once (a local file, whose failing
    read is `ArchiveUnreadable` wherever it happens), so a small plain record is parsed in
    one pass (`pipeline.archive.warcwhole`); any other is streamed through warcio.
    """
    if whole and 0 < row.warc_csize <= WHOLE_MAX_CSIZE:
        member = stream.read(row.warc_csize)
        parsed = parse_whole(member)
        if parsed is not None:
            return _guarded(row, _whole_verified, parsed, row, max_bytes)
        stream = io.BytesIO(member)  # the same bytes, for warcio to read and word its verdict
    try:
        iterator = _IsalArchiveIterator(LimitReader(stream, row.warc_csize))
        record = next(iter(iterator), None)
    except ArchiveUnreadable:
        raise  # the disk failed, not the record
    except Exception as exc:  # warcio signals damage with many exception types
        raise WaybackContentError(f"no readable WARC record at {_where(row)}: {_brief(exc)}") from exc
    if record is None:
        raise WaybackContentError(f"no WARC record at {_where(row)} (truncated or empty)")
    return _guarded(row, _verified, iterator, record, row, max_bytes)


def _guarded(row: CdxRow, verify, *args) -> StoredRecord:
    """`verify(*args)`, anything but a verdict on the record or the disk made a damaged record."""
    try:
        return verify(*args)
    except (WaybackContentError, ArchiveUnreadable):
        raise
    except Exception as exc:
        raise WaybackContentError(f"unreadable WARC record at {_where(row)}: {_brief(exc)}") from exc


def _verified(iterator, record, row: CdxRow, max_bytes: int) -> StoredRecord:
    """The record as warcio streams it: the payload hashed as it is read, at most
    max_bytes + 1 of it held (none when its stored length already says it is too large)."""
    rec_type = record.rec_type
    get = record.rec_headers.get_header
    target = get("WARC-Target-URI") or ""
    _check_capture(rec_type, target, row)

    raw = record.raw_stream
    hashing = _HashingReader(raw)
    record.raw_stream = hashing  # content_stream() decodes what we hash
    content = record.content_stream()
    if content is hashing and isinstance(raw, LimitReader) and raw.limit > max_bytes:
        body, truncated = b"", True  # too large, known before reading: hashed, never held
    else:
        body, truncated = read_capped(_bounded_chunks(content, max_bytes), max_bytes)
    hashing.drain()
    remaining = raw.limit if isinstance(raw, LimitReader) else 0
    if remaining:
        raise WaybackContentError(f"record at {_where(row)} is truncated ({remaining} bytes short)")
    _check_member_end(iterator, row)

    stored_sha1hex = hashing.sha1.hexdigest() if rec_type != "revisit" else None
    _check_digest(rec_type, get("WARC-Payload-Digest"), stored_sha1hex, row)
    http = record.http_headers
    headers = headers_dict(http.headers) if http is not None else None
    status = int(http.get_statuscode()) if http is not None else None
    # warcio hands back the raw stream itself when nothing is to be decoded; then the
    # body is the hashed bytes, all of them unless it was cut at max_bytes.
    raw_body = content is hashing and not truncated
    return _stored(rec_type, target, get, status, headers, body, truncated,
                   stored_sha1hex if raw_body else None)


def _whole_verified(record: WholeRecord, row: CdxRow, max_bytes: int) -> StoredRecord:
    """The record `parse_whole` read, checked as `_verified` checks a streamed one."""
    get = record.header
    target = get("WARC-Target-URI") or ""
    _check_capture(record.rec_type, target, row)
    payload = record.payload
    stored_sha1hex = hashlib.sha1(payload).hexdigest() if record.rec_type != "revisit" else None
    _check_digest(record.rec_type, get("WARC-Payload-Digest"), stored_sha1hex, row)
    headers = headers_dict(record.http_headers) if record.http_headers is not None else None
    truncated = len(payload) > max_bytes
    return _stored(record.rec_type, target, get, record.http_status, headers,
                   b"" if truncated else payload, truncated, None if truncated else stored_sha1hex)


def _check_capture(rec_type: str | None, target: str, row: CdxRow) -> None:
    if rec_type not in CAPTURE_TYPES:
        raise WaybackContentError(f"record at {_where(row)} is a {rec_type!r} record, not a capture")
    if target != row.url:
        raise WaybackContentError(
            f"record at {_where(row)} is for {target!r}, the index row says {row.url!r}")


def _check_digest(rec_type: str, declared: str | None, stored_sha1hex: str | None,
                  row: CdxRow) -> None:
    """A revisit's declared digest, or every other record's stored payload, is the row's."""
    if rec_type == "revisit":
        if declared and _digest_or_none(declared) not in (None, row.sha1b32):
            raise WaybackContentError(
                f"revisit at {_where(row)} declares digest {declared}, the index row {row.sha1b32}")
        return
    if stored_sha1hex == row.sha1hex:  # the row's digest in hex (`make_row`): no base32 to make
        return
    actual = sha1_hex_to_b32(stored_sha1hex)
    if actual != row.sha1b32:
        raise WaybackContentError(
            f"payload digest {actual} at {_where(row)} differs from the index row's {row.sha1b32}")


def _stored(rec_type: str, target: str, get, status: int | None,
            headers: dict[str, str] | None, body: bytes, truncated: bool,
            body_sha1hex: str | None) -> StoredRecord:
    if rec_type == "resource":
        headers, status = {"content-type": get("Content-Type") or ""}, 200
    return StoredRecord(
        rec_type=rec_type,
        target_uri=target,
        status_code=status,
        headers=headers,
        body=body,
        body_truncated=truncated,
        refers_to_uri=get("WARC-Refers-To-Target-URI"),
        refers_to_date=warc_date_to_14(get("WARC-Refers-To-Date")),
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
    """(the bytes of `chunks`, False) when they are at most max_bytes, else (b"", True): a
    body above the limit is `body-too-large` and its bytes are never used, so more than
    max_bytes + 1 are never held, and those held are dropped, not joined, once one more
    says the body is too large."""
    parts: list[bytes] = []
    held = 0
    for chunk in chunks:
        held += len(chunk)
        if held > max_bytes:
            return b"", True
        parts.append(chunk)
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

    def __init__(self, *args, **kwargs):
        self._tail = b""  # compressed bytes a bounded inflate left for the next fill
        super().__init__(*args, **kwargs)

    def _fillbuff(self, block_size=None):
        if self._tail and self.empty():
            tail, self._tail = self._tail, b""
            self._process_read(tail)
            if not self.empty():
                return
        super()._fillbuff(block_size)

    def _decompress(self, data):
        """At most _INFLATE_MAX bytes out per fill, the rest of `data` kept for the next:
        warcio inflates a whole 16 KiB block at once, which for a body of zeros is 16 MiB."""
        if not (self.decompressor and data and self.decomp_type == "gzip"):
            return super()._decompress(data)
        try:
            out = self.decompressor.decompress(data, _INFLATE_MAX)
        except Exception:
            # as warcio: a first block that does not inflate is an uncompressed WARC; a
            # later one is damage, and the short body is reported as a truncated record
            if self.num_block_read == 0:
                self.decompressor = None
                return data
            return b""
        self._tail = self.decompressor.unconsumed_tail
        return out


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
