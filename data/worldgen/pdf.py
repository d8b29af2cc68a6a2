"""A tiny PDF writer for the sample world's articles.

Why it exists: the world needs hundreds of distinct, valid, multi-page PDFs
whose bytes (and so SHA-1s) are fully determined by the seed, with real text
content streams so text extraction and page counting have something to do.
No PDF library writes byte-identical output across versions, so we write the
file format ourselves: catalog, page tree, one Type1 font, one page object and
one content stream per page, an Info dictionary, a classic xref table and a
trailer. pypdf opens the result and counts its pages.
"""

from __future__ import annotations

import random

PAGE_WIDTH = 612
PAGE_HEIGHT = 792
LINE_HEIGHT = 14
LINES_PER_PAGE = 46
CHARS_PER_LINE = 88

# A Zipf-ish vocabulary: text compresses like real prose, so the WARCs stay small.
VOCABULARY = (
    "the of and to in a is that for on with as by are this be we from at an which "
    "results data model method analysis study between using based these were has "
    "was not can effect its our than also both two more may each such other been "
    "sample samples measured observed patients network networks temperature growth "
    "protein cells cell species soil water surface energy structure function system "
    "distribution significant increase decrease response population rate rates time "
    "treatment control group groups level levels high low factor factors parameter "
    "estimation regression variance theorem proof lemma algorithm complexity bound "
    "spectral boundary condition conditions equation equations numerical simulation "
    "experimental theoretical framework approach proposed previous recent however "
    "therefore thus although whereas moreover furthermore table figure section"
).split()


def _escape(text: str) -> str:
    """Escape a PDF literal string (backslash and parentheses)."""
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _words(rng: random.Random, n: int) -> list[str]:
    # Zipf-like: index = floor(len * u**2.5) favours the common words at the front.
    size = len(VOCABULARY)
    return [VOCABULARY[int(size * rng.random() ** 2.5)] for _ in range(n)]


def _lines(rng: random.Random, n_chars: int) -> list[str]:
    """Roughly `n_chars` of sentence-like text wrapped at CHARS_PER_LINE."""
    lines: list[str] = []
    line = ""
    total = 0
    while total < n_chars:
        sentence = " ".join(_words(rng, rng.randint(6, 18)))
        sentence = sentence[0].upper() + sentence[1:] + "."
        for word in sentence.split(" "):
            if len(line) + 1 + len(word) > CHARS_PER_LINE:
                lines.append(line)
                total += len(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _content_stream(title: str | None, lines: list[str], page_no: int, n_pages: int) -> bytes:
    ops = ["BT", "/F1 10 Tf", f"{LINE_HEIGHT} TL", f"72 {PAGE_HEIGHT - 72} Td"]
    if title is not None:
        ops += ["/F2 14 Tf", f"({_escape(title)}) Tj", "T* T*", "/F1 10 Tf"]
    for line in lines:
        ops.append(f"({_escape(line)}) '")
    ops += ["ET", "BT", "/F1 8 Tf", f"{PAGE_WIDTH // 2 - 20} 40 Td",
            f"(Page {page_no} of {n_pages}) Tj", "ET"]
    return ("\n".join(ops) + "\n").encode("latin-1")


def make_pdf(rng: random.Random, title: str, pages: int, target_size: int) -> bytes:
    """A valid PDF of `pages` pages whose size is close to `target_size` bytes.

    The text is drawn from `rng`, so the same rng state gives the same bytes.
    Sizes land within a few hundred bytes of the target (never below ~900
    bytes: the fixed objects alone take that much).
    """
    if pages < 1:
        raise ValueError("a PDF needs at least one page")
    overhead = 700 + 260 * pages
    # each text line carries ~6 bytes of operators around its characters
    text_chars = max(40 * pages, int((target_size - overhead) * 0.935))
    all_lines = _lines(rng, text_chars)
    per_page = max(1, -(-len(all_lines) // pages))
    chunks = [all_lines[i * per_page:(i + 1) * per_page] for i in range(pages)]

    # Object numbers: 1 catalog, 2 pages, 3-4 fonts, 5 info, then (page, content) pairs.
    objects: dict[int, bytes] = {}
    kids = []
    for i in range(pages):
        page_num = 6 + 2 * i
        content_num = page_num + 1
        kids.append(f"{page_num} 0 R")
        stream = _content_stream(title if i == 0 else None, chunks[i], i + 1, pages)
        objects[page_num] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_num} 0 R >>"
        ).encode("latin-1")
        objects[content_num] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode("latin-1") + stream + b"endstream"
        )
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode("latin-1")
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman >>"
    objects[4] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Times-Bold >>"
    objects[5] = (
        f"<< /Title ({_escape(title)}) /Producer (filemeta-backfill sample world) >>"
    ).encode("latin-1")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode("latin-1") + objects[num] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n".encode("latin-1")
    out += b"0000000000 65535 f \n"
    for num in range(1, size):
        out += f"{offsets[num]:010d} 00000 n \n".encode("latin-1")
    out += (
        f"trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n"
    ).encode("latin-1")
    return bytes(out)
