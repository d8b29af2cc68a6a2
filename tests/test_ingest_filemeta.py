"""file_meta (docs/data.md) and the gzip transfer-encoding rule."""

from __future__ import annotations

import gzip
import hashlib
import os
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

    monkeypatch.setattr(filemeta, "_MAGIC", Spy())
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


def test_many_sniffing_threads_open_no_more_magic_handles_than_cpus(monkeypatch):
    """64 threads of one shard used to open 64 libmagic handles, each mapping the ~8 MB
    database: most of the shard's peak RSS. They now share at most one per CPU."""
    opened = []
    real = filemeta.magic.Magic

    def counting(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(filemeta.magic, "Magic", counting)
    n = max(16, 4 * (os.cpu_count() or 1))
    start = threading.Barrier(n)
    seen = []

    def sniff():
        start.wait()
        seen.append(sniff_mimetype(b"%PDF-1.4\n%%EOF\n"))

    threads = [threading.Thread(target=sniff) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["application/pdf"] * n
    assert len(opened) <= max(2, os.cpu_count() or 1)


def test_magic_pool_lends_each_handle_to_one_thread_at_a_time():
    inside, most, lock = [0], [0], threading.Lock()
    release = threading.Event()

    class Handle:
        def from_buffer(self, data):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait()
            with lock:
                inside[0] -= 1
            return "text/plain"

    pool = filemeta.MagicPool(size=2, factory=Handle)
    threads = [threading.Thread(target=pool.from_buffer, args=(b"x",)) for _ in range(6)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join()
    assert pool.opened == 2 and most[0] <= 2 and len(pool._idle) == 2


def test_magic_pool_gives_back_the_slot_of_a_handle_that_failed_to_open():
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no magic database")
        return type("Handle", (), {"from_buffer": lambda self, data: "text/plain"})()

    pool = filemeta.MagicPool(size=1, factory=factory)
    with pytest.raises(OSError):
        pool.from_buffer(b"x")
    assert pool.from_buffer(b"x") == "text/plain" and pool.opened == 1
