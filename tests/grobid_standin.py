"""A loopback stand-in for a GROBID server, speaking its HTTP API (no GROBID can run here).

It answers `GET /api/isalive` (`true`), `GET /api/version`, and
`POST /api/processFulltextDocument` (multipart/form-data, the PDF in field
`input`) with a TEI document whose values come from the PDF it was given:
the PDF's MD5 (upper-case, as GROBID's `<idno type="MD5">`), its /Title from
the document info (found by a regular expression over the bytes: no PDF
library, so the stand-in shares nothing with the code under test), and its
size. A test sets `mode` to make it misbehave:

- `ok`: 200 TEI; `fail`: 500 with GROBID's error text; `busy`: 503;
- `stall`: sleeps `stall_seconds` before answering (past the client timeout);
- `not-xml`: 200 with a body that is not XML; `no-header`: 200 TEI without teiHeader.

Every request is recorded (`requests`: form fields, MD5, size, mode used), and
`max_in_flight` is the most requests it was answering at one time;
`on_request(n)`, when set, is called on the n-th request (to time a fault).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time

from services import QuietHandler, serve_http

VERSION = "0.8.1"
TIMESTAMP = "2026-01-01T00:00+0000"
MODES = ("ok", "fail", "busy", "stall", "not-xml", "no-header")
_TITLE = re.compile(rb"/Title\s*\(((?:[^()\\]|\\.)*)\)")


def pdf_title(pdf: bytes) -> str | None:
    m = _TITLE.search(pdf)
    if not m:
        return None
    return re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("latin-1")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def tei_for(pdf: bytes, with_header: bool = True) -> str:
    """A GROBID-shaped TEI document describing `pdf`."""
    md5 = hashlib.md5(pdf).hexdigest().upper()
    title = _xml_escape(pdf_title(pdf) or "Untitled")
    header = f"""
  <teiHeader xml:lang="en">
    <fileDesc>
      <titleStmt><title level="a" type="main">{title}</title></titleStmt>
      <publicationStmt><publisher/><availability status="unknown"><licence/></availability>
        <date type="published" when="2019-05-04">2019-05-04</date></publicationStmt>
      <sourceDesc><biblStruct><analytic>
        <author><persName><forename type="first">Ada</forename><surname>Standin</surname></persName></author>
        <title level="a" type="main">{title}</title></analytic>
        <monogr><imprint><date type="published" when="2019-05-04"/></imprint></monogr>
        <idno type="MD5">{md5}</idno>
        <idno type="DOI">10.1234/standin.{len(pdf)}</idno>
      </biblStruct></sourceDesc>
    </fileDesc>
    <encodingDesc>
      <appInfo><application version="{VERSION}" ident="GROBID" when="{TIMESTAMP}">
        <desc>GROBID - A machine learning software for extracting information from scholarly documents</desc>
      </application></appInfo>
    </encodingDesc>
    <profileDesc><abstract><p>Size {len(pdf)} bytes.</p></abstract></profileDesc>
  </teiHeader>""" if with_header else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<TEI xml:space="preserve" xmlns="http://www.tei-c.org/ns/1.0">{header}
  <text xml:lang="en"><body><div><p>Body of a {len(pdf)}-byte PDF, MD5 {md5}.</p></div></body><back/></text>
</TEI>
"""


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Fields of a multipart/form-data body (name -> bytes)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m or not content_type.startswith("multipart/form-data"):
        raise ValueError(f"not multipart/form-data: {content_type!r}")
    delimiter = b"--" + m.group(1).encode("latin-1")
    fields = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            fields[name.group(1).decode()] = data[:-2] if data.endswith(b"\r\n") else data
    return fields


class GrobidStandin:
    """State shared by the handler threads: the mode and the requests seen."""

    def __init__(self):
        self.mode = "ok"
        self.stall_seconds = 2.0
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.url = ""
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_request = None  # called with the 1-based number of each fulltext request

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.mode = mode


def _handler(state: GrobidStandin):
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            if self.path == "/api/isalive":
                self.reply(200, b"true", [("Content-Type", "text/plain")])
            elif self.path == "/api/version":
                self.reply(200, VERSION.encode(), [("Content-Type", "text/plain")])
            else:
                self.reply(404, b"not found")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/api/processFulltextDocument":
                self.reply(404, b"not found")
                return
            try:
                fields = parse_multipart(self.headers.get("Content-Type", ""), body)
            except ValueError as e:
                self.reply(400, str(e).encode())
                return
            pdf = fields.pop("input", None)
            mode = state.mode
            with state.lock:
                state.requests.append({
                    "form": {k: v.decode() for k, v in fields.items()},
                    "md5": hashlib.md5(pdf).hexdigest() if pdf else None,
                    "size": len(pdf) if pdf else 0,
                    "mode": mode,
                })
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                number = len(state.requests)
            if state.on_request is not None:
                state.on_request(number)
            try:
                self._answer(pdf, mode)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _answer(self, pdf: bytes | None, mode: str) -> None:
            if not pdf:
                self.reply(400, b"[BAD_INPUT_DATA] no input PDF")
            elif mode == "fail":
                self.reply(500, b"[GENERAL] An exception occurred while running Grobid.")
            elif mode == "busy":
                self.reply(503, b"")
            elif mode == "not-xml":
                self.reply(200, b"<html><body>Proxy error: not TEI", [("Content-Type", "application/xml")])
            else:
                if mode == "stall":
                    time.sleep(state.stall_seconds)
                tei = tei_for(pdf, with_header=mode != "no-header").encode("utf-8")
                with contextlib.suppress(OSError):  # the client may have given up (stall)
                    self.reply(200, tei, [("Content-Type", "application/xml")])

    return Handler


@contextlib.contextmanager
def run_grobid_standin(port: int = 0):
    """Start the stand-in on 127.0.0.1 (`port`, 0: a free one); yields its `GrobidStandin`."""
    state = GrobidStandin()
    with serve_http(_handler(state), port) as url:
        state.url = url
        yield state


def main(argv: list[str] | None = None) -> int:
    """`python tests/grobid_standin.py --port 8070 [--mode busy]`: serve until interrupted, for a
    trial run by hand (`--grobid-host http://127.0.0.1:8070`)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8070, help="127.0.0.1 port (0: a free one)")
    parser.add_argument("--mode", choices=MODES, default="ok", help="how it answers PDFs")
    args = parser.parse_args(argv)
    with run_grobid_standin(args.port) as state:
        state.set_mode(args.mode)
        print(f"GROBID stand-in at {state.url} (mode {args.mode}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
