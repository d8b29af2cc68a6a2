"""A content client that reads WARC records itself and resolves revisits through the index.

The local collection and the HTTP range reader differ only in how they open
the bytes at a row's offset; everything else (verification, revisit
resolution, building the `Capture`) lives here once, so both give the same
answer for the same row.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO

from pipeline.archive.model import (
    ArchiveError,
    Capture,
    CdxClient,
    CdxRow,
    WaybackContentError,
    WaybackError,
)
from pipeline.archive.warcread import StoredRecord, read_record

# Enough rows to find an old original behind many later revisits.
_RESOLVE_LIMIT = 10_000


class WarcContentClient:
    """Base of clients that read records at offsets; subclasses implement `open_row`."""

    # whether a small record may be read at once (`read_record`'s `whole`): only where a
    # failing read says so the same way however much of the record was read before it
    whole_records = False

    def __init__(self, cdx: CdxClient):
        self.cdx = cdx

    def open_row(self, row: CdxRow) -> AbstractContextManager[BinaryIO]:
        """A stream positioned at the row's offset. WaybackError when the WARC is unreachable."""
        raise NotImplementedError

    def fetch(self, row: CdxRow, max_bytes: int) -> Capture:
        """The capture of `row`; a revisit row is resolved to its original (`revisit_of`).

        Raises WaybackError (WARC file missing/unreachable, a revisit whose original
        the index does not have: the archive failed to keep it, as sandcrawler
        reports it) or WaybackContentError (damaged or inconsistent record, a
        revisit of a revisit).
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        stored = self._read(row, max_bytes)
        if stored.rec_type != "revisit":
            if row.is_revisit:
                raise WaybackContentError(
                    f"index row says revisit, record is {stored.rec_type}: {row.url} {row.datetime}")
            return _capture(row, stored, stored)
        original_row = self._resolve(row, stored)
        original = self._read(original_row, max_bytes)
        if original.rec_type == "revisit":
            raise WaybackContentError(
                f"revisit {row.url} {row.datetime} points at another revisit ({original_row.datetime})")
        return _capture(row, stored if stored.headers is not None else original, original,
                        revisit_of=original_row)

    def _read(self, row: CdxRow, max_bytes: int) -> StoredRecord:
        if row.warc_path in ("", "-"):
            raise WaybackError(f"index row has no WARC location: {row.url} {row.datetime}")
        with self.open_row(row) as stream:
            return read_record(stream, row, max_bytes, whole=self.whole_records)

    def _resolve(self, row: CdxRow, revisit: StoredRecord) -> CdxRow:
        """The original a revisit refers to: by refers-to URI and date, else by digest."""
        target = revisit.refers_to_uri or row.url
        try:
            rows = self.cdx.lookup(target, limit=_RESOLVE_LIMIT)
        except ArchiveError as exc:
            raise WaybackError(f"cannot resolve revisit {row.url} {row.datetime}: {exc}") from exc
        if revisit.refers_to_date:
            candidates = [r for r in rows if r.datetime == revisit.refers_to_date]
        else:
            candidates = [r for r in rows
                          if r.sha1b32 == row.sha1b32 and r.datetime <= row.datetime]
        originals = [r for r in candidates if not r.is_revisit]
        if originals:
            same_digest = [r for r in originals if r.sha1b32 == row.sha1b32]
            return (same_digest or originals)[0]
        if candidates:
            raise WaybackContentError(
                f"revisit {row.url} {row.datetime} refers to another revisit {candidates[0].datetime}")
        raise WaybackError(
            f"revisit resolution failed: {row.url} {row.datetime}: original {target} "
            f"{revisit.refers_to_date or ''} not in the index")


def _capture(row: CdxRow, head: StoredRecord, payload: StoredRecord,
             revisit_of: CdxRow | None = None) -> Capture:
    """Status and headers from `head` (a revisit's own, when it has them), body from `payload`."""
    headers = head.headers or {}
    status = head.status_code if head.status_code is not None else payload.status_code
    return Capture(
        row=row,
        status_code=status if status is not None else 200,
        headers=headers,
        body=payload.body,
        location=headers.get("location") if status is not None and 300 <= status < 400 else None,
        revisit_of=revisit_of,
        body_truncated=payload.body_truncated,
        body_sha1hex=payload.body_sha1hex,
    )
