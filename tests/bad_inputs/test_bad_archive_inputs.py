"""The bad-input corpus, second half: index files (CDX/CDXJ), WARC records, HTML landing pages,
PDFs and configuration values. Each case ends in an ingest status naming what went wrong, a
clear error naming the file and line, or a settings problem; never an unexpected exception."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest
from fakes import FakeArchive, make_pdf, settings_sections, write_collection

from pipeline.archive.local import open_local
from pipeline.archive.model import CdxError
from pipeline.ingest.pdflink import extract_pdf_link
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker
from pipeline.postprocess.pdftext import extract
from pipeline.preflight import settings_problems

URL = "http://journal.example/article/paper.pdf"
OTHER = "http://journal.example/article/other.pdf"
PDF = make_pdf("bad inputs")
FAILURE_STATUSES = {"cdx-error", "wayback-error", "wayback-content-error", "body-too-large"}
# a row whose URL does not canonicalise to the key asked for is not the URL's capture
NOT_THIS_URL = {"cdxj-invalid-utf8-key": "no-capture"}


def _request(url: str = URL) -> dict:
    return {"base_url": url, "ext_ids": {"sha1": "0" * 40}, "ingest_type": "pdf",
            "ingest_request_source": "file-backfill", "link_source": "fatcat",
            "link_source_id": "file_x"}


def _collection(tmp_path: Path, body: bytes = PDF) -> Path:
    coll = tmp_path / "coll"
    write_collection(coll, [(URL, "20200101000000", 200, "application/pdf", body, []),
                            (OTHER, "20200102000000", 200, "application/pdf", PDF, [])])
    return coll


def _index(coll: Path) -> Path:
    return coll / "indexes" / "index.cdxj"


def _edit_row(coll: Path, **fields) -> None:
    """Change fields of URL's CDXJ row (None: drop the field)."""
    lines = _index(coll).read_text().splitlines()
    out = []
    for line in lines:
        key, ts, js = line.split(" ", 2)
        row = json.loads(js)
        if row["url"] == URL:
            for k, v in fields.items():
                if v is None:
                    row.pop(k, None)
                else:
                    row[k] = v
            line = f"{key} {ts} {json.dumps(row)}"
        out.append(line)
    _index(coll).write_text("\n".join(out) + "\n")


def _to_cdx11(coll: Path, mangle) -> None:
    """Replace the CDXJ by a classic CDX; `mangle` changes URL's fields (a list of 11)."""
    lines = []
    for line in _index(coll).read_text().splitlines():
        key, ts, js = line.split(" ", 2)
        r = json.loads(js)
        fields = [key, ts, r["url"], r["mime"], r["status"], r["digest"].removeprefix("sha1:"), "-",
                  "-", r["length"], r["offset"], r["filename"]]
        if r["url"] == URL:
            fields = mangle(fields)
        lines.append(" ".join(fields))
    _index(coll).unlink()
    (coll / "indexes" / "index.cdx").write_text(" CDX N b a m s k r M S V g\n" + "\n".join(lines) + "\n")


def _warc(coll: Path) -> Path:
    return next((coll / "archive").glob("*.warc.gz"))


ARCHIVE_CASES = {
    "cdxj-bad-json": lambda c: _index(c).write_text(
        _index(c).read_text().replace('{"url": "' + URL, '{"url: "' + URL)),
    "cdxj-missing-digest": lambda c: _edit_row(c, digest=None),
    "cdxj-bad-timestamp": lambda c: _index(c).write_text(
        _index(c).read_text().replace("20200101000000", "2020-01-01")),
    "cdxj-offset-not-a-number": lambda c: _edit_row(c, offset="12ab"),
    "cdxj-negative-length": lambda c: _edit_row(c, length="-5"),
    "cdxj-offset-beyond-file": lambda c: _edit_row(c, offset=str(10**9)),
    "cdxj-offset-mid-record": lambda c: _edit_row(
        c, offset=str(int(json.loads(_index(c).read_text().splitlines()[1].split(" ", 2)[2])["offset"]) + 13)),
    "cdxj-digest-of-another-body": lambda c: _edit_row(c, digest="sha1:" + "A" * 32),
    "cdxj-warc-path-escapes": lambda c: _edit_row(c, filename="../../etc/passwd"),
    "cdxj-invalid-utf8-key": lambda c: _index(c).write_bytes(
        _index(c).read_bytes().replace(b'{"url": "' + URL.encode(), b'{"url": "\xff' + URL.encode())),
    "cdx-wrong-field-count": lambda c: _to_cdx11(c, lambda f: f[:7]),
    "cdx-bad-offset": lambda c: _to_cdx11(c, lambda f: f[:9] + ["x1"] + f[10:]),
    "cdx-bad-status": lambda c: _to_cdx11(c, lambda f: f[:4] + ["2OO"] + f[5:]),
    "warc-truncated": lambda c: _warc(c).write_bytes(_warc(c).read_bytes()[: len(_warc(c).read_bytes()) // 3]),
    "warc-garbage": lambda c: _warc(c).write_bytes(random.Random(1).randbytes(len(_warc(c).read_bytes()))),
    "warc-missing": lambda c: _warc(c).unlink(),
    "warc-empty": lambda c: _warc(c).write_bytes(b""),
}


@pytest.mark.parametrize("name", sorted(ARCHIVE_CASES))
def test_damaged_archive_gives_a_failure_status(tmp_path, name):
    coll = _collection(tmp_path)
    ARCHIVE_CASES[name](coll)
    cdx, content = open_local(str(coll))
    result = IngestWorker(cdx, content, IngestSettings()).process(_request())
    if name in NOT_THIS_URL:
        assert result["status"] == NOT_THIS_URL[name], result
    else:
        assert result["status"] in FAILURE_STATUSES, result
        assert result.get("error_message")
    assert result["hit"] is False
    # the other capture of the collection is unaffected where its own bytes are intact
    if not name.startswith("warc-") and "invalid-utf8" not in name:
        assert IngestWorker(cdx, content, IngestSettings()).process(_request(OTHER))["status"] == "success"


def test_unsorted_index_is_an_error_naming_file_and_line(tmp_path):
    coll = _collection(tmp_path)
    lines = _index(coll).read_text().splitlines()
    _index(coll).write_text("\n".join(reversed(lines)) + "\n")
    with pytest.raises(CdxError, match=r"index\.cdxj: line 2: index is not sorted"):
        open_local(str(coll))


def test_gzip_bomb_record_is_cut_at_the_body_limit(tmp_path):
    coll = _collection(tmp_path, body=b"%PDF-1.4\n" + bytes(20 << 20))  # 20 MB of zeros, ~20 KB stored
    cdx, content = open_local(str(coll))
    t0 = time.monotonic()
    result = IngestWorker(cdx, content, IngestSettings(max_body_bytes=1 << 20)).process(_request())
    assert result["status"] == "body-too-large" and time.monotonic() - t0 < 10


# -- HTML landing pages -------------------------------------------------------------------

PAGE = "http://journal.example/article/42"
HTML_CASES = {
    "invalid-utf8": b'<html><head><meta charset="utf-8"><meta name="citation_pdf_url" '
                    b'content="/pdf/42.pdf"></head><body>\xff\xfe\xc3(</body></html>',
    "unknown-charset": b'<html><head><meta charset="x-klingon"></head><body>'
                       b'<a href="/pdf/42.pdf">PDF</a></body></html>',
    "nul-bytes": b"<html>\x00<body>\x00<a href='/x.pdf'>\x00PDF</a></body></html>",
    "utf16-bom": "\ufeff<html><body><a href='/x.pdf'>PDF</a></body></html>".encode("utf-16"),
    "huge-attribute": b'<html><body><a href="' + b"a" * (5 << 20) + b'">PDF</a></body></html>',
    "deep-nesting": b"<div>" * 50_000 + b"<a href='/x.pdf'>PDF</a>" + b"</div>" * 50_000,
    "unclosed-everything": b"<html><head><meta name=citation_pdf_url content='/a.pdf' <body><a href=",
    "binary-garbage": random.Random(7).randbytes(50_000),
    "bad-href-authority": b'<html><body><a href="http://[::1/x.pdf">PDF</a></body></html>',
}


@pytest.mark.parametrize("name", sorted(HTML_CASES))
def test_broken_landing_page_is_parsed_without_an_exception(name):
    t0 = time.monotonic()
    found = extract_pdf_link(PAGE, HTML_CASES[name])
    assert found is None or (found["next_url"].startswith("http") and found["technique"])
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize("name", ["invalid-utf8", "binary-garbage", "bad-href-authority"])
def test_broken_landing_page_through_the_worker_is_a_status(name):
    archive = FakeArchive()
    archive.add(URL, HTML_CASES[name], content_type="text/html")
    result = IngestWorker(archive, archive, IngestSettings()).process(_request())
    assert result["status"] != "error" and result["hit"] is False, result


# -- PDFs ---------------------------------------------------------------------------------

PDF_CASES = {
    "pdf-looking-garbage": b"%PDF-1.7\n" + random.Random(3).randbytes(20_000),
    "truncated-pdf": PDF[: len(PDF) // 2],
    "header-only": b"%PDF-1.4\n",
    "encrypt-without-key": b"%PDF-1.4\n1 0 obj <</Encrypt 2 0 R>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF",
}


@pytest.mark.parametrize("name", sorted(PDF_CASES))
def test_broken_pdf_is_hashed_and_its_text_extraction_fails_cleanly(name):
    body = PDF_CASES[name]
    archive = FakeArchive()
    archive.add(URL, body)
    result = IngestWorker(archive, archive, IngestSettings()).process(_request())
    # the file is what the archive holds: its metadata is true whatever its insides
    assert result["status"] == "success" and result["file_meta"]["size_bytes"] == len(body)
    x = extract(body, result["file_meta"]["sha1hex"])
    assert x.status in ("parse-error", "encrypted", "success")
    assert x.status != "success" or name == "truncated-pdf"


# -- configuration ------------------------------------------------------------------------

CONFIG_CASES = {
    "shards-negative": {"backfill__shards": -3},
    "min-success-nan": {"backfill__sample_min_success": math.nan},
    "min-success-percent": {"backfill__sample_min_success": 50.0},
    "sample-size-negative": {"backfill__sample_size": -5},
    "batch-size-zero": {"importer__batch_size": 0},
    "dialect-unknown": {"ingest__cdx_dialect": "cdx"},
    "max-body-zero": {"ingest__max_body_bytes": 0},
    "workdir-blank": {"backfill__workdir": "  "},
    "archive-ftp": {"backfill__archive": "ftp://archive.example/"},
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_setting_is_one_named_problem(name):
    problems = settings_problems(*settings_sections(**CONFIG_CASES[name]))
    assert len(problems) == 1, problems
    key = next(iter(CONFIG_CASES[name])).split("__")[1]
    assert key.split("_")[-1] in problems[0] or "archive" in problems[0]
