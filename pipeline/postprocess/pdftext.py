"""Text, document info and a page-0 thumbnail of each ingested PDF (PDFium via pypdfium2).

Why: the runbook's ingest sent every PDF through text extraction; its outputs
feed full-text search (the `pdf-text` topic), the catalog's cover images (the
`pdf-thumbnail-180px-jpg` topic) and the `pdf_meta` table (page count, page-0
size, word count). The result keeps only the small `pdf_meta` part; the text
and the JPEG go to the sinks.

Library: pypdfium2 (PDFium, Chrome's PDF engine; Apache-2.0/BSD; manylinux
wheels with PDFium inside, no system library). bench/bench_sinks.py measured
it against pypdf (text only, pure Python) and poppler-utils (pdftotext +
pdftoppm subprocesses); see the README's figures. PDFium is not thread-safe,
so every call into it holds one process-wide lock: text extraction uses one
core per process (shards run in parallel processes).

Every PDF gets a status, never an exception: `success`, `parse-error`
(PDFium cannot read it), `encrypted` (needs a password), `empty-pdf` (no
pages), `too-large` (more bytes than `max_bytes`), `text-too-large` (more than
`max_text_chars` of text: a Kafka message must stay bounded). PDFium refuses
to open a document whose page tree is empty: that is a `parse-error` too.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass, field

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from pipeline.sinks.message import PDF_TEXT, THUMBNAIL, Message, attach

THUMB_BOX = (180, 300)
JPEG_QUALITY = 80
MAX_TEXT_CHARS = 1_000_000  # as sandcrawler: about 1 MB of text per message
MAX_PDF_BYTES = 64 * 1024 * 1024
ERROR_MSG_MAX = 1000
INFO_KEYS = ("Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate")
META_KEYS = ("Title", "Subject", "Author", "Creator", "Producer")

_PDFIUM_LOCK = threading.Lock()
_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?")


@dataclass
class PdfExtract:
    """What text extraction found in one PDF (text and thumbnail only on success)."""

    sha1hex: str
    status: str
    error_msg: str | None = None
    text: str | None = None
    thumbnail: bytes | None = None
    page_count: int | None = None
    page0_width: float | None = None
    page0_height: float | None = None
    pdf_version: str | None = None
    permanent_id: str | None = None
    update_id: str | None = None
    info: dict = field(default_factory=dict)


def extract(body: bytes, sha1hex: str, max_bytes: int = MAX_PDF_BYTES,
            max_text_chars: int = MAX_TEXT_CHARS) -> PdfExtract:
    """Extract text, info and a page-0 JPEG from `body`; failures become statuses."""
    if len(body) > max_bytes:
        return PdfExtract(sha1hex, "too-large", f"PDF is {len(body)} bytes, above the {max_bytes} limit")
    with _PDFIUM_LOCK:
        try:
            return _extract_locked(body, sha1hex, max_text_chars)
        except pdfium.PdfiumError as e:
            # PDFium's error code is its last error on this thread: a failure that sets none
            # (a document without pages) shows the previous one, so confirm by the bytes
            if getattr(e, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD and b"/Encrypt" in body:
                return PdfExtract(sha1hex, "encrypted", "PDF needs a password to open")
            return PdfExtract(sha1hex, "parse-error", _short(e))
        except Exception as e:  # PDFium or a damaged object tree failing in an unforeseen way
            return PdfExtract(sha1hex, "parse-error", _short(e))


def _extract_locked(body: bytes, sha1hex: str, max_text_chars: int) -> PdfExtract:
    doc = pdfium.PdfDocument(body)
    try:
        n = len(doc)
        if n == 0:
            return PdfExtract(sha1hex, "empty-pdf", "PDF has no pages", page_count=0)
        out = PdfExtract(sha1hex, "success", page_count=n)
        version = doc.get_version()
        if version:
            out.pdf_version = f"{version // 10}.{version % 10}"
        out.permanent_id = _hex_id(doc, 0)
        out.update_id = _hex_id(doc, 1)
        out.info = {k: v for k, v in doc.get_metadata_dict(skip_empty=True).items() if k in INFO_KEYS}
        page0 = doc[0]
        try:
            out.page0_width, out.page0_height = (round(x, 2) for x in page0.get_size())
            out.thumbnail = _thumbnail(page0)
        finally:
            page0.close()
        texts, chars = [], 0
        for i in range(n):
            page = doc[i]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_range()
                finally:
                    textpage.close()
            finally:
                page.close()
            chars += len(text)
            if chars > max_text_chars:
                return PdfExtract(sha1hex, "text-too-large",
                                  f"more than {max_text_chars} characters of text (at page {i + 1} of {n})",
                                  page_count=n)
            texts.append(text)
        out.text = "\f".join(texts)
        return out
    finally:
        doc.close()


def _hex_id(doc: pdfium.PdfDocument, which: int) -> str | None:
    try:
        raw = doc.get_identifier(which)
    except Exception:
        return None
    return raw.hex() if raw else None


def _thumbnail(page: pdfium.PdfPage) -> bytes | None:
    """Page 0 as a JPEG within 180x300 pixels; None when the page cannot be drawn."""
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return None
    scale = min(THUMB_BOX[0] / width, THUMB_BOX[1] / height)
    bitmap = page.render(scale=scale, may_draw_forms=False)
    try:
        image = bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
    image.thumbnail(THUMB_BOX)  # rounding can leave a pixel too many
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _short(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= ERROR_MSG_MAX else text[: ERROR_MSG_MAX - 3] + "..."


def pdf_created(info: dict) -> str | None:
    """The PDF's CreationDate as ISO 8601 (`D:20170706005950+02'00'` -> `2017-07-06T00:59:50`)."""
    m = _PDF_DATE.match(info.get("CreationDate") or "")
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) if g else default for g, default in zip(m.groups(), (0, 1, 1, 0, 0, 0), strict=True))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


def pdf_meta(x: PdfExtract) -> dict:
    """The result's `pdf_meta`: sandcrawler's pdf_meta row fields; no text, no image."""
    meta: dict = {"status": x.status, "sha1hex": x.sha1hex, "has_page0_thumbnail": x.thumbnail is not None}
    if x.error_msg:
        meta["error_msg"] = x.error_msg
    if x.page_count is not None:
        meta["page_count"] = x.page_count
    if x.status == "success":
        meta["word_count"] = len(x.text.split()) if x.text else 0
        for k in ("page0_height", "page0_width", "permanent_id", "pdf_version"):
            if getattr(x, k) is not None:
                meta[k] = getattr(x, k)
        created = pdf_created(x.info)
        if created:
            meta["pdf_created"] = created
        info = {k.lower(): x.info[k] for k in META_KEYS if x.info.get(k)}
        if info:
            meta["metadata"] = info
    return meta


def pdftext_message(x: PdfExtract, file_meta: dict) -> dict:
    """The `pdf-text` topic's message, with the field names sandcrawler's consumers read."""
    extra = None
    if x.status == "success":
        extra = {k: getattr(x, k) for k in
                 ("page_count", "page0_height", "page0_width", "permanent_id", "update_id", "pdf_version")
                 if getattr(x, k) is not None}
    return {
        "key": x.sha1hex,
        "sha1hex": x.sha1hex,
        "status": x.status,
        "error_msg": x.error_msg,
        "file_meta": file_meta,
        "text": x.text,
        "has_page0_thumbnail": x.thumbnail is not None,
        "meta_xml": None,
        "pdf_info": x.info or None,
        "pdf_extra": extra,
        "source": None,
    }


class PdfTextPostProcessor:
    """The ingest worker's text-extraction step: `pdf_meta` on the result, text and JPEG queued."""

    name = "pdf_meta"

    def __init__(self, max_bytes: int = MAX_PDF_BYTES, max_text_chars: int = MAX_TEXT_CHARS):
        self.max_bytes = max_bytes
        self.max_text_chars = max_text_chars

    def process(self, body: bytes, result: dict) -> dict:
        file_meta = result["file_meta"]
        x = extract(body, file_meta["sha1hex"], self.max_bytes, self.max_text_chars)
        attach(result, Message(PDF_TEXT, x.sha1hex, pdftext_message(x, file_meta)))
        if x.thumbnail is not None:
            attach(result, Message(THUMBNAIL, x.sha1hex, x.thumbnail))
        return pdf_meta(x)
