"""The ingest worker over an in-memory archive: every docs/statuses.md status and the result shape."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from fakes import FakeArchive, make_pdf, row_for

from pipeline.archive.model import CdxError, WaybackContentError, WaybackError
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker

BASE = "http://journal.example.org/article/1.pdf"
PDF = make_pdf("the paper")


def request(url: str = BASE, sha1: str = "0" * 40) -> dict:
    return {
        "base_url": url,
        "ext_ids": {"sha1": sha1},
        "ingest_request_source": "file-backfill",
        "ingest_type": "pdf",
        "link_source": "fatcat",
        "link_source_id": "file_aaaaaaaaaaaaaaaaaaaaaaaaaa",
    }


def landing(pdf_href: str, title: str = "An article") -> bytes:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><meta name='citation_title' content='{title}'>"
        f"<meta name='citation_pdf_url' content='{pdf_href}'></head>"
        f"<body><h1>{title}</h1><p>Abstract text.</p></body></html>"
    ).encode()


def run(archive: FakeArchive, req: dict | None = None, **settings) -> dict:
    worker = IngestWorker(archive, archive, IngestSettings(**settings))
    return worker.process(req or request())


def test_success_shape():
    a = FakeArchive()
    row = a.add(BASE, PDF, dt="20170706005950")
    r = run(a)
    assert r["status"] == "success" and r["hit"] is True
    assert r["request"] == request()
    assert r["hops"] == [BASE]
    assert r["file_meta"] == {
        "sha1hex": hashlib.sha1(PDF).hexdigest(),
        "sha256hex": hashlib.sha256(PDF).hexdigest(),
        "md5hex": hashlib.md5(PDF).hexdigest(),
        "size_bytes": len(PDF),
        "mimetype": "application/pdf",
    }
    assert r["terminal"] == {
        "terminal_url": BASE,
        "terminal_dt": "20170706005950",
        "terminal_status_code": 200,
        "terminal_sha1hex": hashlib.sha1(PDF).hexdigest(),
    }
    assert r["cdx"] == row.to_dict()
    assert r["grobid"] == {"status": "disabled"}
    assert "error_message" not in r and "revisit_cdx" not in r and "extract_next_hop" not in r


def test_no_capture():
    r = run(FakeArchive())
    assert (r["status"], r["hit"]) == ("no-capture", False)
    assert BASE in r["error_message"]
    assert "file_meta" not in r and "terminal" not in r


def test_cdx_error():
    a = FakeArchive()
    a.lookup_errors[BASE] = CdxError("CDX service answered 502")
    r = run(a)
    assert r["status"] == "cdx-error"
    assert "502" in r["error_message"]


def test_wayback_error_and_content_error():
    a = FakeArchive()
    a.add(BASE, PDF)
    a.fetch_errors[BASE] = WaybackError("replay answered 503")
    assert run(a)["status"] == "wayback-error"
    a.fetch_errors[BASE] = WaybackContentError("payload digest mismatch")
    r = run(a)
    assert r["status"] == "wayback-content-error" and "digest" in r["error_message"]
    assert "cdx" not in r  # nothing was fetched


def test_best_capture_is_the_one_fetched():
    a = FakeArchive()
    a.add(BASE, b"<html>error</html>", status=404, mimetype="text/html", dt="20200101000000")
    good = a.add(BASE, PDF, dt="20150101000000")
    a.add(BASE, b"", status=302, location="/elsewhere", dt="20210101000000", mimetype="text/html")
    r = run(a)
    assert r["status"] == "success"
    assert a.fetches == [good]


def test_redirect_relative_location_joined_and_appended_to_hops():
    a = FakeArchive()
    a.add(BASE, b"", status=301, location="../files/1.pdf?download=1", mimetype="text/html")
    target = "http://journal.example.org/files/1.pdf?download=1"
    a.add(target, PDF)
    r = run(a)
    assert r["status"] == "success"
    assert r["hops"] == [BASE, target]
    assert r["terminal"]["terminal_url"] == target


def _redirect_chain(a, n):
    """`n` URLs in `a`, each redirecting (302) to the next, the last one a PDF; returns them."""
    urls = [f"http://r.example.org/{i}" for i in range(n)]
    for u, nxt in zip(urls, urls[1:], strict=False):
        a.add(u, b"", status=302, location=nxt, mimetype="text/html")
    a.add(urls[-1], PDF)
    return urls


def test_redirect_chain_does_not_count_as_hops():
    a = FakeArchive()
    urls = _redirect_chain(a, 10)
    r = run(a, request(urls[0]), max_hops=2)
    assert r["status"] == "success"
    assert r["hops"] == [urls[0], urls[-1]]


def test_redirect_loop():
    a = FakeArchive()
    other = "https://journal.example.org/article/1.pdf"
    a.add(BASE, b"", status=301, location=other, mimetype="text/html")
    a.add(other, b"", status=302, location=BASE, mimetype="text/html")
    r = run(a)
    assert r["status"] == "redirect-loop"
    assert r["hops"] == [BASE]
    assert r["terminal"]["terminal_status_code"] == 302


def test_bad_redirect_without_location():
    a = FakeArchive()
    a.add(BASE, b"", status=302, location=None, mimetype="text/html")
    r = run(a)
    assert r["status"] == "bad-redirect"
    a2 = FakeArchive()
    a2.add(BASE, b"", status=302, location="mailto:editor@example.org", mimetype="text/html")
    assert run(a2)["status"] == "bad-redirect"


def test_redirects_exceeded():
    a = FakeArchive()
    urls = _redirect_chain(a, 6)
    assert run(a, request(urls[0]), max_redirects=5)["status"] == "success"
    r = run(a, request(urls[0]), max_redirects=4)
    assert r["status"] == "redirects-exceeded"


def test_terminal_bad_status():
    a = FakeArchive()
    a.add(BASE, b"<html>Forbidden</html>", status=403, mimetype="text/html")
    r = run(a)
    assert r["status"] == "terminal-bad-status"
    assert r["terminal"]["terminal_status_code"] == 403
    assert "file_meta" not in r


def test_revisit_is_reported():
    a = FakeArchive()
    original = a.add(BASE, PDF, dt="20160101000000", warc_path="orig.warc.gz")
    a.rows[BASE].remove(original)  # only the revisit is indexed under this URL now
    revisit = a.add(BASE, PDF, dt="20190101000000", revisit_of=original)
    r = run(a)
    assert r["status"] == "success"
    assert r["cdx"] == revisit.to_dict() and r["cdx"]["mimetype"] == "warc/revisit"
    assert r["revisit_cdx"] == original.to_dict()


def test_revisit_resolved_to_a_revisit_is_content_error():
    a = FakeArchive()
    other = row_for(BASE, PDF, mimetype="warc/revisit", status=None, dt="20150101000000")
    a.add(BASE, PDF, dt="20190101000000", revisit_of=other)
    assert run(a)["status"] == "wayback-content-error"


def test_revisit_resolved_by_a_replay_service_without_its_row():
    a = FakeArchive()
    rev = row_for(BASE, PDF, mimetype="warc/revisit", status=None)
    from pipeline.archive.model import Capture
    a.add_row(rev, Capture(row=rev, status_code=200, headers={"content-type": "application/pdf"},
                           body=PDF))
    r = run(a)
    assert r["status"] == "success" and "revisit_cdx" not in r
    assert r["cdx"]["mimetype"] == "warc/revisit"


def test_null_body():
    a = FakeArchive()
    a.add(BASE, b"")
    r = run(a)
    assert r["status"] == "null-body"
    assert "file_meta" not in r


def test_body_too_large():
    a = FakeArchive()
    a.add(BASE, PDF)
    r = run(a, max_body_bytes=len(PDF) - 1)
    assert r["status"] == "body-too-large"
    assert run(a, max_body_bytes=len(PDF))["status"] == "success"


def test_gzip_transfer_encoding_hashes_the_decoded_pdf():
    a = FakeArchive()
    a.add(BASE, gzip.compress(PDF), content_type="application/pdf")
    r = run(a)
    assert r["status"] == "success"
    assert r["file_meta"]["sha1hex"] == hashlib.sha1(PDF).hexdigest()
    assert r["file_meta"]["size_bytes"] == len(PDF)


def test_reader_sha1_is_used_for_the_body_it_hashed_and_never_for_a_gunzipped_one():
    """file_meta takes the archive reader's SHA-1 of the capture body instead of hashing
    again (a marker value shows which was used), but not once a transfer gzip was undone."""
    marker = "f" * 40
    a = FakeArchive()
    row = a.add(BASE, PDF)
    a.captures[row].body_sha1hex = marker
    assert run(a)["file_meta"]["sha1hex"] == marker
    g = FakeArchive()
    row = g.add(BASE, gzip.compress(PDF), content_type="application/pdf")
    g.captures[row].body_sha1hex = marker
    r = run(g)
    assert r["file_meta"]["sha1hex"] == hashlib.sha1(PDF).hexdigest()
    assert r["terminal"]["terminal_sha1hex"] == hashlib.sha1(PDF).hexdigest()


def test_bad_gzip_encoding():
    a = FakeArchive()
    a.add(BASE, gzip.compress(PDF)[:-40], content_type="application/pdf")
    r = run(a)
    assert r["status"] == "bad-gzip-encoding"
    assert "file_meta" not in r


def test_real_gzip_download_is_wrong_mimetype():
    a = FakeArchive()
    body = gzip.compress(b"a,b\n1,2\n")
    a.add(BASE, body, content_type="application/x-gzip")
    r = run(a)
    assert r["status"] == "wrong-mimetype"
    assert r["file_meta"]["mimetype"] == "application/gzip"
    assert r["file_meta"]["sha1hex"] == hashlib.sha1(body).hexdigest()


def test_wrong_mimetype_keeps_file_meta():
    a = FakeArchive()
    body = b"PK\x03\x04" + b"\x00" * 60
    a.add(BASE, body, content_type="application/zip")
    r = run(a)
    assert (r["status"], r["hit"]) == ("wrong-mimetype", False)
    assert r["file_meta"]["size_bytes"] == len(body)
    assert "error_message" in r


def test_landing_page_followed_to_pdf():
    a = FakeArchive()
    page_url = "https://journal.example.org/article/view/12"
    pdf_url = "https://journal.example.org/article/download/12/7"
    a.add(page_url, landing("/article/download/12/7"), mimetype="text/html")
    a.add(pdf_url, PDF)
    r = run(a, request(page_url))
    assert r["status"] == "success"
    assert r["hops"] == [page_url, pdf_url]
    assert r["extract_next_hop"] == {"next_url": pdf_url, "technique": "citation_pdf_url"}
    assert r["terminal"]["terminal_url"] == pdf_url


def test_no_pdf_link():
    a = FakeArchive()
    a.add(BASE, b"<html><head><title>Not found</title></head><body>Gone.</body></html>",
          mimetype="text/html")
    r = run(a)
    assert r["status"] == "no-pdf-link"
    assert "file_meta" not in r and r["terminal"]["terminal_url"] == BASE


def test_link_loop():
    a = FakeArchive()
    p1, p2 = "http://a.example.org/p1", "http://a.example.org/p2"
    a.add(p1, landing(p2), mimetype="text/html")
    a.add(p2, landing(p1), mimetype="text/html")
    r = run(a, request(p1))
    assert r["status"] == "link-loop"
    assert r["hops"] == [p1, p2]


def test_max_hops_exceeded():
    a = FakeArchive()
    pages = [f"http://a.example.org/p{i}" for i in range(8)]
    for u, nxt in zip(pages, pages[1:], strict=False):
        a.add(u, landing(nxt), mimetype="text/html")
    a.add(pages[-1], PDF)
    r = run(a, request(pages[0]))
    assert r["status"] == "max-hops-exceeded"
    assert r["hops"] == pages[:6]
    # 7 hops fit with max_hops=8
    assert run(a, request(pages[0]), max_hops=8)["status"] == "success"
    assert run(a, request(pages[0]), max_hops=7)["status"] == "max-hops-exceeded"


def test_exactly_six_hops_is_allowed():
    a = FakeArchive()
    pages = [f"http://a.example.org/p{i}" for i in range(5)]
    for u, nxt in zip(pages, pages[1:], strict=False):
        a.add(u, landing(nxt), mimetype="text/html")
    a.add(pages[-1], landing("/final.pdf"), mimetype="text/html")
    a.add("http://a.example.org/final.pdf", PDF)
    r = run(a, request(pages[0]))
    assert r["status"] == "success" and len(r["hops"]) == 6


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/paper.pdf",
        "https://web.archive.org/web/2017/http://x.org/a.pdf",
        "https://doi.org/10.2307/123456",
        "https://orcid.org/0000-0002-1825-0097",
    ],
)
def test_blocklisted_base_url(url):
    a = FakeArchive()
    a.add(url, PDF)
    r = run(a, request(url))
    assert r["status"] == "skip-url-blocklist"
    assert a.lookups == []  # never even looked up


def test_blocklist_applies_to_next_hop_and_terminal():
    a = FakeArchive()
    a.add(BASE, landing("https://fatcat.wiki/file/abc"), mimetype="text/html")
    assert run(a)["status"] == "skip-url-blocklist"
    b = FakeArchive()
    b.add(BASE, b"", status=302, location="http://127.0.0.1:8080/x.pdf", mimetype="text/html")
    b.add("http://127.0.0.1:8080/x.pdf", PDF)
    r = run(b)
    assert r["status"] == "skip-url-blocklist"
    assert r["hops"] == [BASE, "http://127.0.0.1:8080/x.pdf"]


def test_blocklist_is_configuration():
    a = FakeArchive()
    a.add(BASE, PDF)
    assert run(a, blocklist=("journal.example.org",))["status"] == "skip-url-blocklist"
    assert run(a, blocklist=())["status"] == "success"


def test_cookie_wall():
    a = FakeArchive()
    wall = "http://journal.example.org/action/cookieAbsent"
    a.add(BASE, b"", status=302, location=wall, mimetype="text/html")
    a.add(wall, b"<html>enable cookies</html>", mimetype="text/html")
    r = run(a)
    assert r["status"] == "blocked-cookie"
    assert "cookieAbsent" in r["error_message"]
    c = FakeArchive()
    url = "http://x.example.org/paper?cookieSet=1"
    c.add(url, PDF)
    assert run(c, request(url))["status"] == "blocked-cookie"


def test_unexpected_exception_becomes_error_status():
    class Broken(FakeArchive):
        def fetch(self, row, max_bytes):
            raise KeyError("surprise")

    a = Broken()
    a.add(BASE, PDF)
    r = run(a)
    assert (r["status"], r["hit"]) == ("error", False)
    assert r["error_message"] == "KeyError: 'surprise'"


def test_error_message_is_bounded():
    a = FakeArchive()
    a.lookup_errors[BASE] = CdxError("x" * 5000)
    r = run(a)
    assert r["status"] == "cdx-error" and len(r["error_message"]) == 1600


def test_want():
    w = IngestWorker(FakeArchive(), FakeArchive(), IngestSettings())
    assert w.want(request())
    assert not w.want({**request(), "ingest_type": "html"})
    assert not w.want({**request(), "base_url": "ftp://x.org/a.pdf"})
    assert not w.want({k: v for k, v in request().items() if k != "base_url"})
    r = w.process({"ingest_type": "pdf"})
    assert r["status"] == "error" and "bad-base-url" in r["error_message"]


def test_postprocessor_seam():
    class Grobid:
        name = "grobid"

        def process(self, body, result):
            return {"status": "success", "status_code": 200, "n": len(body)}

    class Broken:
        name = "pdf_meta"

        def process(self, body, result):
            raise RuntimeError("pdf parser crashed")

    a = FakeArchive()
    a.add(BASE, PDF)
    w = IngestWorker(a, a, IngestSettings(), postprocessors=[Grobid(), Broken()])
    r = w.process(request())
    assert r["status"] == "success"
    assert r["grobid"] == {"status": "success", "status_code": 200, "n": len(PDF)}
    assert r["pdf_meta"]["status"] == "error" and "crashed" in r["pdf_meta"]["error_msg"]


def test_settings_validation():
    with pytest.raises(ValueError, match="max_hops"):
        IngestSettings(max_hops=0)
