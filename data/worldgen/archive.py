"""Write the sample world's web archive: WARC files plus pywb CDXJ and classic CDX indexes.

Why it exists: the ingest step reads captures exactly as a wayback machine
stores them, so the world's archive must be a real pywb collection (warcio
records, one gzip member each, indexes sorted by SURT) that also contains the
faults an archive really has: damaged members, index rows that disagree with
their record, rows pointing at a WARC that is gone, a broken index line.
Everything derives from the seed: record ids from the rng, WARC-Date from the
capture timestamp, gzip members with mtime 0.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import io
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CDX_HEADER = " CDX N b a m s k r M S V g"
CDXJ_FILE = "index.cdxj"
CDX_FILE = "extra.cdx"

HTTP_REASONS = {
    200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    307: "Temporary Redirect", 308: "Permanent Redirect", 403: "Forbidden",
    404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}


def sha1_b32(data: bytes) -> str:
    return base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def warc_date(ts: str) -> str:
    return f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"


def http_date(ts: str) -> str:
    """An HTTP Date header value; locale-independent (email.utils, not strftime's %a/%b)."""
    d = dt.datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return email.utils.format_datetime(d, usegmt=True)


class ZeroTailBody(io.RawIOBase):
    """A seekable body of `prefix` followed by zero bytes up to `length`.

    Lets warcio digest and compress a 129 MiB body without it ever being
    held in memory (it costs ~130 KB once deflated).
    """

    def __init__(self, prefix: bytes, length: int):
        super().__init__()
        self.prefix = prefix
        self.length = length
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.length}[whence]
        self.pos = max(0, min(self.length, base + pos))
        return self.pos

    def readinto(self, buf) -> int:
        n = min(len(buf), self.length - self.pos)
        if n <= 0:
            return 0
        out = bytearray(n)
        if self.pos < len(self.prefix):
            head = self.prefix[self.pos:self.pos + n]
            out[:len(head)] = head
        buf[:n] = out
        self.pos += n
        return n

    def digest_b32(self) -> str:
        h = hashlib.sha1(self.prefix)
        remaining = self.length - len(self.prefix)
        block = bytes(1 << 20)
        while remaining > 0:
            k = min(remaining, len(block))
            h.update(block[:k])
            remaining -= k
        return base64.b32encode(h.digest()).decode("ascii")


@dataclass
class Record:
    """One WARC record to write, and how its index row(s) should look."""

    kind: str  # response | revisit
    url: str
    ts: str
    warc: str
    index: str  # cdxj | cdx
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | ZeroTailBody = b""
    digest: str = ""  # base32 sha1 of the stored payload (revisit: of the original)
    refers_to: tuple[str, str] | None = None  # (url, ts) of a revisit's original
    damage: str | None = None  # bytes | offset | digest
    # filled in while writing
    offset: int = 0
    length: int = 0

    @property
    def mime(self) -> str:
        if self.kind == "revisit":
            return "warc/revisit"
        for k, v in self.headers:
            if k.lower() == "content-type":
                return v.split(";")[0].strip().lower()
        return "unk"


@dataclass
class IndexRow:
    """A raw index line destined for one index file (already formatted)."""

    index: str
    line: str


class ArchiveBuilder:
    """Collects captures, then writes `archive/*.warc.gz` and `indexes/*` in one go."""

    def __init__(self, rng: random.Random, surt: Callable[[str], str], warc_for: Callable[[str], str]):
        self.rng = rng
        self.surt = surt
        self.warc_for = warc_for  # timestamp -> WARC file name
        self.records: list[Record] = []
        self.extra_rows: list[IndexRow] = []
        self.damaged: list[dict] = []

    # -- adding captures ---------------------------------------------------

    def response(self, url: str, ts: str, status: int, headers: list[tuple[str, str]],
                 body: bytes | ZeroTailBody, *, index: str = "cdxj", warc: str | None = None,
                 damage: str | None = None) -> Record:
        digest = body.digest_b32() if isinstance(body, ZeroTailBody) else sha1_b32(body)
        length = body.length if isinstance(body, ZeroTailBody) else len(body)
        full = [("Date", http_date(ts)), ("Server", "Apache")] + list(headers)
        if status not in (301, 302, 303, 307, 308) or length:
            full.append(("Content-Length", str(length)))
        rec = Record("response", url, ts, warc or self.warc_for(ts), index, status, full, body,
                     digest, damage=damage)
        self.records.append(rec)
        return rec

    def revisit(self, url: str, ts: str, refers_to: tuple[str, str], digest: str,
                headers: list[tuple[str, str]], *, index: str = "cdxj") -> Record:
        full = [("Date", http_date(ts)), ("Server", "Apache")] + list(headers)
        rec = Record("revisit", url, ts, self.warc_for(ts), index, 200, full, b"", digest,
                     refers_to=refers_to)
        self.records.append(rec)
        return rec

    def row_only(self, url: str, ts: str, mime: str, status: int, digest: str, warc: str,
                 length: int, offset: int) -> None:
        """An index row for a record in a WARC file that does not exist."""
        self.extra_rows.append(IndexRow("cdxj", self._cdxj_line(
            self.surt(url), ts, url, mime, str(status), digest, length, offset, warc)))

    def raw_line(self, index: str, line: str) -> None:
        """A verbatim (e.g. deliberately broken) index line."""
        self.extra_rows.append(IndexRow(index, line))

    # -- writing -------------------------------------------------------------

    def write(self, coll_dir: Path) -> dict:
        archive_dir = coll_dir / "archive"
        index_dir = coll_dir / "indexes"
        archive_dir.mkdir(parents=True)
        index_dir.mkdir(parents=True)
        by_warc: dict[str, list[Record]] = {}
        for rec in self.records:
            by_warc.setdefault(rec.warc, []).append(rec)
        sizes = {}
        for name in sorted(by_warc):
            recs = sorted(by_warc[name], key=lambda r: (r.ts, r.url, r.kind))
            sizes[name] = self._write_warc(archive_dir / name, name, recs)
        cdxj, cdx = [], []
        for rec in self.records:
            line = self._row_for(rec)
            (cdxj if rec.index == "cdxj" else cdx).append(line)
        for row in self.extra_rows:
            (cdxj if row.index == "cdxj" else cdx).append(row.line)
        cdxj.sort(key=lambda s: s.encode("utf-8"))
        cdx.sort(key=lambda s: s.encode("utf-8"))
        (index_dir / CDXJ_FILE).write_bytes("".join(x + "\n" for x in cdxj).encode("utf-8"))
        (index_dir / CDX_FILE).write_bytes(
            "".join(x + "\n" for x in [CDX_HEADER] + cdx).encode("utf-8"))
        return {"warc_files": sizes, "cdxj_rows": len(cdxj), "cdx_rows": len(cdx)}

    def _write_warc(self, path: Path, name: str, recs: list[Record]) -> int:
        with open(path, "wb") as f:
            writer = WARCWriter(f, gzip=True)
            info = writer.create_warcinfo_record(name, {
                "software": "filemeta-backfill sample world generator",
                "format": "WARC File Format 1.0",
                "description": "deterministic sample captures for tests",
            })
            info.rec_headers.replace_header("WARC-Date", warc_date(recs[0].ts))
            info.rec_headers.replace_header("WARC-Record-ID", self._record_id())
            writer.write_record(info)
            for rec in recs:
                rec.offset = f.tell()
                writer.write_record(self._warc_record(writer, rec))
                rec.length = f.tell() - rec.offset
        damaged = [r for r in recs if r.damage == "bytes"]
        if damaged:
            with open(path, "r+b") as f:
                for rec in damaged:
                    # 10-byte gzip header, then a deflate block header of type 3
                    # (reserved): every inflater fails on the first byte.
                    f.seek(rec.offset + 10)
                    f.write(b"\xff")
        return path.stat().st_size

    def _record_id(self) -> str:
        return f"<urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}>"

    def _warc_record(self, writer: WARCWriter, rec: Record):
        reason = HTTP_REASONS.get(rec.status or 200, "OK")
        http = StatusAndHeaders(f"{rec.status} {reason}", rec.headers, protocol="HTTP/1.1")
        warc_headers = {"WARC-Record-ID": self._record_id(), "WARC-Date": warc_date(rec.ts)}
        if rec.kind == "revisit":
            ref_url, ref_ts = rec.refers_to
            return writer.create_revisit_record(
                rec.url, f"sha1:{rec.digest}", ref_url, warc_date(ref_ts),
                http_headers=http, warc_headers_dict=warc_headers)
        body = rec.body
        if isinstance(body, ZeroTailBody):
            body.seek(0)
            length = body.length
            stream = body
        else:
            length = len(body)
            stream = io.BytesIO(body)
        return writer.create_warc_record(rec.url, "response", payload=stream, length=length,
                                         http_headers=http, warc_headers_dict=warc_headers)

    def _row_for(self, rec: Record) -> str:
        key = self.surt(rec.url)
        digest = rec.digest
        if rec.damage == "digest":
            digest = sha1_b32(digest.encode("ascii"))  # a well-formed digest of other bytes
        offset = rec.offset + (13 if rec.damage == "offset" else 0)
        status = None if rec.kind == "revisit" else str(rec.status)
        if rec.index == "cdx":
            return " ".join([key, rec.ts, rec.url, rec.mime, status or "-", digest, "-", "-",
                             str(rec.length), str(offset), rec.warc])
        return self._cdxj_line(key, rec.ts, rec.url, rec.mime, status, digest, rec.length,
                               offset, rec.warc)

    @staticmethod
    def _cdxj_line(key: str, ts: str, url: str, mime: str, status: str | None, digest: str,
                   length: int, offset: int, warc: str) -> str:
        obj = {"url": url, "mime": mime}
        if status is not None:
            obj["status"] = status
        obj.update({"digest": digest, "length": str(length), "offset": str(offset),
                    "filename": warc})
        return f"{key} {ts} {json.dumps(obj)}"
