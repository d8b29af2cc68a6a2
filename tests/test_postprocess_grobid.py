"""The GROBID client and post-processor (pipeline/postprocess/grobid.py) against the stand-in."""

from __future__ import annotations

import hashlib
import threading

import pytest
from pdfs import make_pdf
from services import free_port

from pipeline.ingest.filemeta import file_meta
from pipeline.postprocess.grobid import (
    FORM,
    GrobidClient,
    GrobidPostProcessor,
    GrobidUnavailable,
    tei_metadata,
)
from pipeline.sinks.message import GROBID, take

PDF = make_pdf("Deep roots of loopback services", pages=2)


def run(client: GrobidClient, body: bytes = PDF, concurrency: int = 2) -> tuple[dict, dict]:
    result = {"status": "success", "file_meta": file_meta(body)}
    sub = GrobidPostProcessor(client, concurrency).process(body, result)
    messages = take(result)
    assert [m.kind for m in messages] == [GROBID]
    assert messages[0].key == hashlib.sha1(body).hexdigest()
    return sub, messages[0].value


def test_isalive_and_version(grobid):
    assert GrobidClient(grobid.url).check_alive() == "0.8.1"


def test_isalive_fails_with_the_host_when_down_or_wrong():
    host = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GrobidUnavailable, match=f"GROBID at {host} is not reachable"):
        GrobidClient(host, isalive_timeout=2).check_alive()


def test_isalive_fails_when_the_answer_is_not_true(grobid):
    with pytest.raises(GrobidUnavailable, match="answered HTTP 404"):
        GrobidClient(grobid.url + "/elsewhere").check_alive()


def test_success_sends_spec_form_and_parses_header(grobid):
    sub, msg = run(GrobidClient(grobid.url))
    (seen,) = grobid.requests
    assert seen["form"] == FORM
    assert seen["md5"] == hashlib.md5(PDF).hexdigest() and seen["size"] == len(PDF)
    assert sub["status"] == "success" and sub["status_code"] == 200
    assert sub["grobid_version"] == "0.8.1"
    biblio = sub["metadata"]["biblio"]
    assert biblio["title"] == "Deep roots of loopback services"
    assert biblio["doi"] == f"10.1234/standin.{len(PDF)}"
    assert biblio["authors"][0]["surname"] == "Standin"
    assert "tei_xml" not in sub and "abstract" not in sub["metadata"]
    assert msg["status"] == "success" and msg["status_code"] == 200
    assert msg["key"] == msg["file_meta"]["sha1hex"]
    assert f'<idno type="MD5">{hashlib.md5(PDF).hexdigest().upper()}</idno>' in msg["tei_xml"]


@pytest.mark.parametrize("mode, code, fragment", [
    ("fail", 500, "An exception occurred"),
    ("busy", 503, "HTTP 503"),
    ("not-xml", 200, "not XML"),
    ("no-header", 200, "no usable teiHeader"),
])
def test_errors_are_recorded_never_raised(grobid, mode, code, fragment):
    grobid.set_mode(mode)
    sub, msg = run(GrobidClient(grobid.url))
    assert sub["status"] == "error"
    assert sub["status_code"] == code
    assert fragment in sub["error_msg"]
    assert "metadata" not in sub
    assert msg["status"] == "error" and "tei_xml" not in msg and fragment in msg["error_msg"]


def test_stall_past_the_timeout_is_error_timeout(grobid):
    grobid.set_mode("stall")
    grobid.stall_seconds = 1.5
    sub, msg = run(GrobidClient(grobid.url, timeout=0.3))
    assert sub == {"status": "error-timeout", "status_code": -4,
                   "error_msg": f"GROBID request timed out: GROBID POST {grobid.url}/api/"
                                "processFulltextDocument: no complete answer within the 0.3 s "
                                "deadline (0 bytes of body received)"}
    assert msg["status"] == "error-timeout"


def test_connection_refused_is_an_error():
    sub, _ = run(GrobidClient(f"http://127.0.0.1:{free_port()}"))
    assert sub["status"] == "error" and sub["status_code"] == -2
    assert "ConnectionError" in sub["error_msg"]


def test_concurrency_is_bounded(grobid):
    grobid.set_mode("stall")
    grobid.stall_seconds = 0.3
    pp = GrobidPostProcessor(GrobidClient(grobid.url), concurrency=2)
    subs = []

    def one(i):
        body = make_pdf(f"paper {i}")
        subs.append(pp.process(body, {"file_meta": file_meta(body)}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grobid.requests) == 6
    assert [s["status"] for s in subs] == ["success"] * 6
    assert grobid.max_in_flight == 2


def test_tei_metadata_without_version_attribute_is_bad():
    tei = ('<TEI xmlns="http://www.tei-c.org/ns/1.0"><teiHeader><fileDesc/></teiHeader></TEI>')
    with pytest.raises(ValueError, match="not a GROBID TEI"):
        tei_metadata(tei)


def test_forty_megabyte_pdf_reaches_grobid_whole(grobid):
    body = make_pdf("a large scan", padding=40_000_000)
    sub, msg = run(GrobidClient(grobid.url), body)
    assert sub["status"] == "success"
    assert grobid.requests[-1]["size"] == len(body)
    assert grobid.requests[-1]["md5"] == hashlib.md5(body).hexdigest()
    assert len(msg["tei_xml"]) < 10_000  # the message carries the TEI, not the PDF
