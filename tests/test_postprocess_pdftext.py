"""Text extraction and thumbnails (pipeline/postprocess/pdftext.py) on real PDFs."""

from __future__ import annotations

import hashlib
import io

import pytest
from pdfs import encrypted_pdf, make_pdf, no_pages_pdf
from PIL import Image

from pipeline.ingest.filemeta import file_meta
from pipeline.postprocess.pdftext import PdfTextPostProcessor, extract, pdf_created, pdf_meta
from pipeline.sinks.message import PDF_TEXT, THUMBNAIL, take


def run(body: bytes, **kw) -> tuple[dict, list]:
    result = {"status": "success", "file_meta": file_meta(body)}
    sub = PdfTextPostProcessor(**kw).process(body, result)
    return sub, take(result)


def test_text_pdf_gives_counts_info_text_and_thumbnail():
    body = make_pdf("On (parenthesised) titles", pages=3, words_per_page=40)
    sub, messages = run(body)
    sha1 = hashlib.sha1(body).hexdigest()
    assert sub["status"] == "success"
    assert sub["sha1hex"] == sha1
    assert sub["page_count"] == 3
    assert (sub["page0_width"], sub["page0_height"]) == (612.0, 792.0)
    assert sub["word_count"] == 3 * 40 + 3  # every word plus the three title words
    assert sub["metadata"] == {"title": "On (parenthesised) titles", "author": "Ada Standin",
                               "producer": "tests/pdfs.py"}
    assert sub["pdf_created"] == "2017-07-06T00:59:50"
    assert sub["pdf_version"] == "1.4"
    assert sub["has_page0_thumbnail"] is True
    assert "text" not in sub and "thumbnail" not in sub
    kinds = [m.kind for m in messages]
    assert kinds == [PDF_TEXT, THUMBNAIL]
    text_msg = messages[0].value
    assert text_msg["key"] == text_msg["sha1hex"] == sha1 == messages[1].key
    assert text_msg["file_meta"]["sha1hex"] == sha1
    assert "word2x39" in text_msg["text"] and text_msg["text"].count("\f") == 2
    assert text_msg["pdf_extra"]["page_count"] == 3
    assert text_msg["pdf_info"]["Title"] == "On (parenthesised) titles"
    image = Image.open(io.BytesIO(messages[1].value))
    assert image.format == "JPEG"
    assert image.size[0] <= 180 and image.size[1] <= 300
    assert image.size[0] == 180  # a letter page is limited by the width, ratio kept
    assert abs(image.size[1] - round(180 * 792 / 612)) <= 1


def test_wide_page_thumbnail_is_limited_by_width_and_tall_page_by_height():
    for width, height in ((2000, 300), (100, 2000)):
        _, messages = run(make_pdf("shape", width=width, height=height))
        w, h = Image.open(io.BytesIO(messages[-1].value)).size
        assert w <= 180 and h <= 300
        assert w == 180 or h == 300


def test_password_pdf_is_encrypted_and_owner_only_encryption_opens():
    sub, messages = run(encrypted_pdf("secret"))
    assert sub["status"] == "encrypted"
    assert sub["has_page0_thumbnail"] is False
    assert [m.kind for m in messages] == [PDF_TEXT]
    assert messages[0].value["status"] == "encrypted" and messages[0].value["text"] is None
    sub, _ = run(encrypted_pdf(""))
    assert sub["status"] == "success" and sub["page_count"] == 1


def test_damaged_pdfs_are_parse_errors_not_crashes():
    encrypted = encrypted_pdf("secret")
    for body in (b"%PDF-1.4\nnot really a pdf at all", no_pages_pdf(),
                 make_pdf("cut short", pages=2)[:200]):
        run(encrypted)  # PDFium's error code of the previous document must not leak
        sub, messages = run(body)
        assert sub["status"] == "parse-error", body[:40]
        assert sub["error_msg"].startswith("PdfiumError")
        assert messages[0].value["status"] == "parse-error"


def test_too_large_pdf_and_too_much_text_have_their_statuses():
    body = make_pdf("big", pages=2, words_per_page=200)
    sub, messages = run(body, max_bytes=len(body) - 1)
    assert sub["status"] == "too-large"
    assert str(len(body)) in sub["error_msg"]
    sub, messages = run(body, max_text_chars=500)
    assert sub["status"] == "text-too-large"
    assert messages[0].value["text"] is None and len(messages) == 1


def test_forty_megabyte_pdf_is_extracted_within_limits():
    body = make_pdf("forty megabytes", padding=40_000_000)
    assert len(body) > 40_000_000
    sub, messages = run(body)
    assert sub["status"] == "success" and sub["page_count"] == 1
    sizes = [len(m.value) if isinstance(m.value, bytes) else len(str(m.value)) for m in messages]
    assert max(sizes) < 100_000  # the messages stay small whatever the PDF's size


@pytest.mark.parametrize("raw, iso", [
    ("D:20170706005950+02'00'", "2017-07-06T00:59:50"),
    ("D:2017", "2017-01-01T00:00:00"),
    ("20170706", "2017-07-06T00:00:00"),
    ("D:20171306", None),
    ("yesterday", None),
])
def test_pdf_created(raw, iso):
    assert pdf_created({"CreationDate": raw}) == iso


def test_pdf_meta_of_a_failure_has_no_counts():
    x = extract(b"%PDF-1.7\n", "0" * 40)
    meta = pdf_meta(x)
    assert meta["status"] == "parse-error"
    assert "word_count" not in meta and "page_count" not in meta
