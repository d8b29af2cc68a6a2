"""Small pywb-layout collections written inside the tests, with warcio and our indexer.

Why: every archive test needs real WARC files and real sorted indexes whose
contents it knows exactly; building them per test keeps each case (damage,
revisits, several index files) visible next to its assertions.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.archive.indexer import IndexEntry, index_warc, write_index


def warc_date(ts: str) -> str:
    return f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"


@dataclass
class CollectionBuilder:
    """Write records into `archive/<warc>`; `finish()` indexes them into `indexes/`."""

    root: Path
    warc_name: str = "test-00000.warc.gz"
    payload_digests: dict = field(default_factory=dict)

    def __post_init__(self):
        (self.root / "archive").mkdir(parents=True, exist_ok=True)
        (self.root / "indexes").mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple] = {}

    def _writer(self, warc_name: str | None):
        name = warc_name or self.warc_name
        if name not in self._files:
            handle = open(self.root / "archive" / name, "ab")
            self._files[name] = (handle, WARCWriter(handle, gzip=name.endswith(".gz")))
        return self._files[name][1]

    def response(self, url: str, ts: str, body: bytes, *, status: str = "200 OK",
                 headers: list[tuple[str, str]] | None = None, warc: str | None = None,
                 gzip_encode: bool = False):
        """A response record; `gzip_encode` stores the body with Content-Encoding: gzip."""
        headers = list(headers if headers is not None else [("Content-Type", "application/pdf")])
        payload = body
        if gzip_encode:
            payload = gzip.compress(body, mtime=0)
            headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(payload)))]
        writer = self._writer(warc)
        record = writer.create_warc_record(
            url, "response", payload=io.BytesIO(payload),
            http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": warc_date(ts)})
        writer.write_record(record)
        self.payload_digests[(url, ts)] = record.rec_headers.get_header("WARC-Payload-Digest")
        return record

    def revisit(self, url: str, ts: str, *, refers_to: tuple[str, str] | None,
                digest_of: tuple[str, str] | None = None, status: str | None = "200 OK",
                headers: list[tuple[str, str]] | None = None, warc: str | None = None):
        """A revisit of `refers_to` = (url, ts) (None: no refers-to headers at all)."""
        digest = self.payload_digests[digest_of or refers_to]
        writer = self._writer(warc)
        http = None
        if status is not None:
            http = StatusAndHeaders(status, headers or [("Content-Type", "application/pdf")],
                                    protocol="HTTP/1.1")
        extra = {"WARC-Date": warc_date(ts)}
        record = writer.create_revisit_record(
            url, digest=digest,
            refers_to_uri=refers_to[0] if refers_to else None,
            refers_to_date=warc_date(refers_to[1]) if refers_to else None,
            http_headers=http, warc_headers_dict=extra)
        if refers_to is None:
            record.rec_headers.remove_header("WARC-Refers-To-Target-URI")
            record.rec_headers.remove_header("WARC-Refers-To-Date")
        writer.write_record(record)
        self.payload_digests[(url, ts)] = digest
        return record

    def close_files(self) -> None:
        for handle, _writer in self._files.values():
            handle.close()
        self._files.clear()

    def entries(self) -> list[IndexEntry]:
        self.close_files()
        archive = self.root / "archive"
        return [entry for path in sorted(archive.iterdir())
                for entry in index_warc(str(path), path.name)]

    def finish(self, index_name: str = "index.cdxj") -> list[IndexEntry]:
        entries = self.entries()
        write_index(entries, str(self.root / "indexes" / index_name))
        return entries


def write_lines(path: Path, lines: list[str]) -> None:
    """An index file from literal lines, sorted byte-wise like a real one."""
    ordered = sorted(lines, key=lambda line: line.encode("utf-8"))
    path.write_text("".join(line + "\n" for line in ordered), encoding="utf-8")


def cdxj(key: str, ts: str, **fields) -> str:
    return f"{key} {ts} {json.dumps(fields)}"
