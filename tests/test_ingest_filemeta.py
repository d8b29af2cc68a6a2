"""file_meta (docs/data.md) and the gzip transfer-encoding rule."""

from __future__ import annotations

import gzip
import hashlib
import threading

import pytest
from fakes import make_pdf

from pipeline.ingest import filemeta
from pipeline.ingest.filemeta import (
    BadGzipEncoding,
    GzipTooLarge,
    file_meta,
    sniff_mimetype,
    undo_transfer_gzip,
)

XHTML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><head><title>Article</title></head>'
    b"<body><p>Landing page</p></body></html>\n"
)
JATS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.2 20190208//EN" '
    b'"JATS-journalpublishing1.dtd">\n'
    b'<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">'
    b"<front><article-meta><title-group><article-title>On things</article-title></title-group>"
    b"</article-meta></front></article>\n"
)
PLAIN_XML = b'<?xml version="1.0"?>\n<records><record id="1"><title>x</title></record></records>\n'


def test_hashes_and_size_are_exact_over_the_whole_body():
    body = make_pdf("exactness") + b"\n" + bytes(range(256)) * 5000  # > 1 MiB, binary tail
    meta = file_meta(body)
    assert meta == {
        "sha1hex": hashlib.sha1(body).hexdigest(),
        "sha256hex": hashlib.sha256(body).hexdigest(),
        "md5hex": hashlib.md5(body).hexdigest(),
        "size_bytes": len(body),
        "mimetype": "application/pdf",
    }
    assert all(meta[k] == meta[k].lower() for k in ("sha1hex", "sha256hex", "md5hex"))


def test_mimetype_looks_only_at_the_first_mebibyte(monkeypatch):
    seen = []

    class Spy:
        def from_buffer(self, b):
            seen.append(len(b))
            return "application/pdf"

    monkeypatch.setattr(filemeta._local, "magic", Spy(), raising=False)
    file_meta(b"%PDF-1.5\n" + b"x" * (3 * 1024 * 1024))
    assert seen == [1024 * 1024]


@pytest.mark.parametrize(
    "body,expected",
    [
        (XHTML, "application/xhtml+xml"),
        (JATS, "application/jats+xml"),
        (PLAIN_XML, "text/xml"),
        (b"<!DOCTYPE html><html><head><title>t</title></head><body>x</body></html>", "text/html"),
        (b"", "application/x-empty"),
    ],
)
def test_mimetype_rules(body, expected):
    assert sniff_mimetype(body) == expected


def test_xml_with_html_is_not_jats():
    body = b'<?xml version="1.0"?>\n<html><body><article class="x">text</article></body></html>'
    # no XHTML namespace: not xhtml; contains <html: not JATS either
    assert sniff_mimetype(body) == "text/xml"


def test_gzip_transfer_encoding_is_undone_and_hashed_again():
    pdf = make_pdf("gzipped on the wire")
    body = gzip.compress(pdf)
    assert undo_transfer_gzip(body, "application/pdf", 10**6) == pdf
    assert undo_transfer_gzip(body, "", 10**6) == pdf
    assert file_meta(undo_transfer_gzip(body, "application/pdf", 10**6))["sha1hex"] == hashlib.sha1(pdf).hexdigest()


def test_gzip_with_gzip_mimetype_is_a_real_gzip_file():
    body = gzip.compress(b"data")
    for mt in ("application/gzip", "application/x-gzip", "application/x-gzip; charset=binary"):
        assert undo_transfer_gzip(body, mt, 10**6) is body


def test_multi_member_gzip_decodes_every_member():
    body = gzip.compress(b"%PDF-1.4\npart one\n") + gzip.compress(b"part two\n%%EOF\n")
    assert undo_transfer_gzip(body, "application/pdf", 10**6) == b"%PDF-1.4\npart one\npart two\n%%EOF\n"


def test_non_gzip_body_is_returned_unchanged():
    pdf = make_pdf("plain")
    assert undo_transfer_gzip(pdf, "application/pdf", 10**6) is pdf


@pytest.mark.parametrize(
    "body",
    [
        gzip.compress(make_pdf("truncated"))[:-30],  # truncated stream
        gzip.compress(b"%PDF-1.4 x") + b"garbage after the member",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 40,  # header, then not deflate
    ],
)
def test_bad_gzip_encoding(body):
    with pytest.raises(BadGzipEncoding):
        undo_transfer_gzip(body, "application/pdf", 10**6)


def test_gzip_inflating_beyond_the_limit():
    body = gzip.compress(b"\0" * 200_000)
    with pytest.raises(GzipTooLarge):
        undo_transfer_gzip(body, "application/pdf", 100_000)
    assert len(undo_transfer_gzip(body, "application/pdf", 200_000)) == 200_000


def test_one_magic_handle_per_thread():
    handles = []

    def grab():
        sniff_mimetype(b"%PDF-1.4\n")
        handles.append(filemeta._local.magic)
        sniff_mimetype(b"<html></html>")
        handles.append(filemeta._local.magic)

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(handles) == 6
    assert len({id(h) for h in handles}) == 3  # reused within a thread, distinct across
