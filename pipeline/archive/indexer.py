"""Index WARC files into the sorted CDXJ / classic CDX a local collection is searched by.

A collection directory is only usable once `indexes/` holds sorted index
files naming every capture of `archive/`. This writes them the way pywb's
`cdx-indexer` does (same keys, fields and sort order; checked in tests), so
operators need no pywb installation to turn a directory of WARCs into the
pipeline's archive: `python -m pipeline archive index COLLECTION`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from warcio.archiveiterator import ArchiveIterator

from pipeline.archive.model import CAPTURE_TYPES
from pipeline.archive.rows import normalise_digest, sha1_hex_to_b32
from pipeline.archive.surt import surt
from pipeline.archive.warcread import warc_date_to_14
from pipeline.jsonio import AtomicWriter


@dataclass(frozen=True)
class IndexEntry:
    """One capture's index fields; `status` is None for revisits (pywb writes none)."""

    urlkey: str
    timestamp: str
    url: str
    mime: str
    status: str | None
    digest: str
    length: int
    offset: int
    filename: str

    def cdxj_line(self) -> str:
        fields = {"url": self.url, "mime": self.mime}
        if self.status is not None:
            fields["status"] = self.status
        fields.update(digest=self.digest, length=str(self.length), offset=str(self.offset),
                      filename=self.filename)
        return f"{self.urlkey} {self.timestamp} {json.dumps(fields)}"

    def cdx_line(self) -> str:
        return " ".join((self.urlkey, self.timestamp, self.url, self.mime, self.status or "-",
                         self.digest, "-", "-", str(self.length), str(self.offset), self.filename))


CDX_HEADER = " CDX N b a m s k r M S V g"


def index_warc(path: str, filename: str | None = None) -> Iterator[IndexEntry]:
    """Entries for the capture records of one WARC, in file order.

    `filename` is what rows will name (relative to the collection's archive/);
    default: the file's base name. Raises ValueError on a record without a
    target URI or date (an index row must be able to find it again).
    """
    filename = filename or os.path.basename(path)
    with open(path, "rb") as handle:
        iterator = ArchiveIterator(handle)
        for record in iterator:
            if record.rec_type not in CAPTURE_TYPES:
                continue
            fields = _fields(record)
            iterator.read_to_end()
            yield IndexEntry(offset=iterator.get_record_offset(),
                             length=iterator.get_record_length(), filename=filename, **fields)


def _fields(record) -> dict:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    timestamp = warc_date_to_14(headers.get_header("WARC-Date"))
    if not url or not timestamp:
        raise ValueError(f"WARC record {headers.get_header('WARC-Record-ID')} lacks a target URI or date")
    declared = headers.get_header("WARC-Payload-Digest")
    if declared:
        digest = normalise_digest(declared)
    else:
        digest = sha1_hex_to_b32(_payload_sha1(record))
    if record.rec_type == "revisit":
        mime, status = "warc/revisit", None
    elif record.rec_type == "resource":
        mime, status = _mime(headers.get_header("Content-Type")), "200"
    else:
        http = record.http_headers
        mime = _mime(http.get_header("Content-Type") if http else None)
        status = http.get_statuscode() if http else "-"
    return dict(urlkey=surt(url), timestamp=timestamp, url=url, mime=mime, status=status,
                digest=digest)


def _payload_sha1(record) -> str:
    digest = hashlib.sha1()
    while chunk := record.raw_stream.read(256 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def _mime(content_type: str | None) -> str:
    value = (content_type or "").split(";")[0].strip()
    return value or "unk"


def write_index(entries: Iterable[IndexEntry], path: str) -> int:
    """Sorted index at `path` (`.cdxj` -> CDXJ, `.cdx` -> classic with header); returns rows.

    Lines are sorted byte-wise, as `LC_ALL=C sort` would, which is the order
    the binary search relies on. Written atomically.
    """
    cdxj = path.endswith(".cdxj")
    lines = [entry.cdxj_line() if cdxj else entry.cdx_line() for entry in entries]
    lines.sort(key=lambda line: line.encode("utf-8"))
    with AtomicWriter(path) as out:
        if not cdxj:
            out.write_line(CDX_HEADER)
        for line in lines:
            out.write_line(line)
        out.commit()
    return len(lines)


def index_collection(collection: str, index_name: str = "index.cdxj") -> int:
    """Index every WARC under `<collection>/archive/` into `<collection>/indexes/<index_name>`."""
    archive = os.path.join(collection, "archive")
    names = sorted(
        os.path.relpath(os.path.join(folder, name), archive)
        for folder, _dirs, files in os.walk(archive)
        for name in files
        if name.endswith((".warc.gz", ".warc"))
    )
    entries = [entry for name in names
               for entry in index_warc(os.path.join(archive, name), name.replace(os.sep, "/"))]
    os.makedirs(os.path.join(collection, "indexes"), exist_ok=True)
    return write_index(entries, os.path.join(collection, "indexes", index_name))

