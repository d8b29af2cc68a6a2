"""An in-memory web archive implementing the CdxClient/ContentClient protocols.

Why: the ingest worker's rules (best capture, redirects, revisits, landing
pages, failures) are tested here without any collection on disk; the real
clients are tested against real collections elsewhere. The fake keeps the
same contract as they do: `lookup` returns exact-URL rows newest first,
`fetch` returns the capture of a row or raises the `ArchiveError` configured.
"""

from __future__ import annotations

import base64
import hashlib
import threading

from pipeline.archive.model import Capture, CdxError, CdxRow


def row_for(url: str, body: bytes = b"", *, dt: str = "20200101000000", status: int | None = 200,
            mimetype: str = "application/pdf", warc_path: str = "fake-00000.warc.gz",
            offset: int = 0) -> CdxRow:
    digest = hashlib.sha1(body).digest()
    return CdxRow(
        surt=url.split("://", 1)[-1].lower(),
        datetime=dt,
        url=url,
        mimetype=mimetype,
        status_code=status,
        sha1b32=base64.b32encode(digest).decode("ascii"),
        sha1hex=digest.hex(),
        warc_path=warc_path,
        warc_offset=offset,
        warc_csize=len(body) + 200,
    )


class FakeArchive:
    """Captures by URL; `lookup_errors`/`fetch_errors` inject failures by URL."""

    def __init__(self) -> None:
        self.rows: dict[str, list[CdxRow]] = {}
        self.captures: dict[CdxRow, Capture] = {}
        self.lookup_errors: dict[str, Exception] = {}
        self.fetch_errors: dict[str, Exception] = {}
        self.lookups: list[str] = []
        self.fetches: list[CdxRow] = []
        self._lock = threading.Lock()

    def add(self, url: str, body: bytes = b"", *, status: int = 200, mimetype: str | None = None,
            dt: str = "20200101000000", location: str | None = None,
            content_type: str | None = None, revisit_of: CdxRow | None = None,
            revisit_row_status: int | None = None, truncated: bool = False,
            warc_path: str = "fake-00000.warc.gz") -> CdxRow:
        """Add one capture; its CDX mimetype defaults to the Content-Type, then application/pdf."""
        ctype = content_type if content_type is not None else (mimetype or "application/pdf")
        if revisit_of is not None:
            row = row_for(url, body, dt=dt, status=revisit_row_status, mimetype="warc/revisit",
                          warc_path=warc_path, offset=len(self.captures) * 1000)
        else:
            row = row_for(url, body, dt=dt, status=status, mimetype=mimetype or ctype.split(";")[0],
                          warc_path=warc_path, offset=len(self.captures) * 1000)
        headers = {"content-type": ctype}
        if location is not None:
            headers["location"] = location
        self.captures[row] = Capture(row=row, status_code=status, headers=headers, body=body,
                                     location=location, revisit_of=revisit_of,
                                     body_truncated=truncated)
        self.rows.setdefault(url, []).append(row)
        return row

    def add_row(self, row: CdxRow, capture: Capture | None = None) -> CdxRow:
        """An index row with no record behind it (fetch raises) unless a capture is given."""
        self.rows.setdefault(row.url, []).append(row)
        if capture is not None:
            self.captures[row] = capture
        return row

    # -- CdxClient ----------------------------------------------------------
    def lookup(self, url: str, limit: int = 25) -> list[CdxRow]:
        with self._lock:
            self.lookups.append(url)
        if url in self.lookup_errors:
            raise self.lookup_errors[url]
        rows = sorted(self.rows.get(url, []), key=lambda r: r.datetime, reverse=True)
        return rows[:limit]

    # -- ContentClient ------------------------------------------------------
    def fetch(self, row: CdxRow, max_bytes: int) -> Capture:
        with self._lock:
            self.fetches.append(row)
        if row.url in self.fetch_errors:
            raise self.fetch_errors[row.url]
        if row not in self.captures:
            raise CdxError(f"fake archive has no record for {row.url} {row.datetime}")
        cap = self.captures[row]
        if len(cap.body) > max_bytes:
            return Capture(row=cap.row, status_code=cap.status_code, headers=cap.headers,
                           body=b"", location=cap.location,
                           revisit_of=cap.revisit_of, body_truncated=True)
        return cap


def make_pdf(title: str, pages: int = 1) -> bytes:
    """A real, small PDF (pypdf) whose bytes differ by `title`."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=612, height=792)
    w.add_metadata({"/Title": title})
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def write_collection(coll_dir, captures) -> None:
    """Write a real pywb-layout collection: one WARC (a gzip member per record) + a CDXJ index.

    `captures` is a list of (url, timestamp, status, content_type, body, extra_headers).
    Used where the worker must run over the real local clients (task tests).
    """
    import io
    import json
    import os

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from pipeline.archive.surt import surt

    os.makedirs(os.path.join(coll_dir, "archive"), exist_ok=True)
    os.makedirs(os.path.join(coll_dir, "indexes"), exist_ok=True)
    lines = []
    warc_name = "test-00000.warc.gz"
    with open(os.path.join(coll_dir, "archive", warc_name), "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for url, ts, status, ctype, body, extra in captures:
            headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), *extra]
            http = StatusAndHeaders(f"{status} X", headers, protocol="HTTP/1.1")
            date = f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"
            rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                            http_headers=http,
                                            warc_headers_dict={"WARC-Date": date})
            start = f.tell()
            writer.write_record(rec)
            length = f.tell() - start
            digest = base64.b32encode(hashlib.sha1(body).digest()).decode()
            lines.append(f"{surt(url)} {ts} " + json.dumps({
                "url": url, "mime": ctype.split(";")[0], "status": str(status),
                "digest": f"sha1:{digest}", "length": str(length), "offset": str(start),
                "filename": warc_name}))
    with open(os.path.join(coll_dir, "indexes", "index.cdxj"), "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")


def write_world(tmp_path, captures, entities):
    """A small world in `tmp_path`: a collection of `captures` (see `write_collection`) and a
    gzip export of `entities`; returns (export path, collection dir)."""
    import gzip
    import json

    coll = tmp_path / "collection"
    write_collection(coll, captures)
    export = tmp_path / "export.json.gz"
    with gzip.open(export, "wt") as f:
        f.write("".join(json.dumps(e) + "\n" for e in entities))
    return export, coll


def settings_sections(**over):
    """The ([backfill], [ingest], [importer]) sections the settings check reads, with good
    values; `over` replaces some (`backfill__shards=0`, `ingest__cdx_dialect="x"`)."""
    from types import SimpleNamespace

    sections = {
        "backfill": dict(workdir="w", shards=4, sample_min_success=0.5, sample_size=10,
                         archive="/", export="/nonexistent", progress_seconds=5.0,
                         extra_results=(), catalog="", catalog_seed=""),
        "ingest": dict(concurrency=4, cdx_dialect="auto", max_hops=6, max_redirects=25,
                       max_body_bytes=1000, cdx_limit=25, blocklist=lambda: [],
                       cookies=lambda: [], warc_base="", archive_proxy=""),
        "importer": dict(batch_size=100),
    }
    for key, value in over.items():
        section, name = key.split("__")
        sections[section][name] = value
    backfill = sections["backfill"]
    backfill.setdefault("catalog_path", lambda: backfill["catalog"] or f"{backfill['workdir']}/catalog.sqlite")
    return tuple(SimpleNamespace(**sections[name]) for name in ("backfill", "ingest", "importer"))
