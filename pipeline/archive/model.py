"""What the archive layer hands to the ingest worker: index rows, captures, and failures.

The worker never knows whether a capture came from a local pywb-layout
collection or a wayback service over HTTP; both clients speak these types.
Failures are exceptions that carry the docs/statuses.md status they map to, so the
worker turns them into a result without guessing; except `ArchiveUnreadable`,
which is no answer about a capture and stops the shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Protocol

from pipeline.checks import StepFailed
from pipeline.errors import OperatorError


class ArchiveError(OperatorError):
    """Base of archive failures; `status` is the ingest status it becomes."""

    status = "wayback-error"


class CdxError(ArchiveError):
    """The CDX index/service failed (non-200, unparseable rows, unreachable)."""

    status = "cdx-error"


class WaybackError(ArchiveError):
    """The archive service failed while fetching content (5xx, unreachable, missing WARC,
    the original of a revisit not in the index)."""

    status = "wayback-error"


class WaybackContentError(ArchiveError):
    """The stored capture is damaged or inconsistent with its index row."""

    status = "wayback-content-error"


class ArchiveUnreadable(StepFailed):
    """The local archive's own files cannot be read (permission denied, an I/O error, a
    directory where a WARC should be): the machine failed, not one capture.

    Not an `ArchiveError`: no request gets a status for it. It stops the
    shard like an outage, nothing is published, and the next run (after the
    fix) ingests the shard again. A WARC that is simply missing stays the
    request's `wayback-error`, and a readable but damaged record its
    `wayback-content-error` (docs/statuses.md).
    """


# The WARC record types that are captures (what an index lists and the ingest may read).
CAPTURE_TYPES = ("response", "revisit", "resource")


@dataclass(frozen=True)
class CdxRow:
    """One index row, in the field names of the ingest result's `cdx` object (docs/data.md)."""

    surt: str
    datetime: str  # 14 digits, YYYYMMDDhhmmss
    url: str
    mimetype: str
    status_code: int | None  # revisit rows may have none
    sha1b32: str
    sha1hex: str
    warc_path: str
    warc_offset: int
    warc_csize: int

    @property
    def is_revisit(self) -> bool:
        return self.mimetype == "warc/revisit"

    def to_dict(self) -> dict:
        # Every field is a str or int: a plain dict of them is what asdict() would build,
        # without its recursive deep copy (one call per capture in every ingest result).
        return {name: getattr(self, name) for name in _ROW_FIELDS}


_ROW_FIELDS = tuple(f.name for f in fields(CdxRow))


@dataclass
class Capture:
    """An archived HTTP response, as stored (revisits already resolved to their original)."""

    row: CdxRow  # the row that was asked for (may be a revisit)
    status_code: int
    headers: dict[str, str]  # response headers; keys lower-cased
    body: bytes  # payload with Content-Encoding undone where the archive does so
    location: str | None = None  # raw Location header of a 3xx, unjoined
    revisit_of: CdxRow | None = None  # the original row when `row` was a revisit
    body_truncated: bool = False  # the body is larger than the size limit (`body` is then b"")
    # SHA-1 of `body` when the reader already hashed exactly it: a shortcut, not part of
    # what the capture is (a replay client, which does not hash, gives an equal capture).
    body_sha1hex: str | None = field(default=None, compare=False)

    @property
    def mimetype(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class CdxClient(Protocol):
    def lookup(self, url: str, limit: int = 25) -> list[CdxRow]:
        """Exact-URL rows, the newest `limit` of them; [] when none. Raises CdxError."""
        ...


class ContentClient(Protocol):
    def fetch(self, row: CdxRow, max_bytes: int) -> Capture:
        """The capture of `row` (revisits resolved). Raises WaybackError / WaybackContentError."""
        ...
